"""What a submit asking for a callback gets: HTTPS enforcement, bad URLs and modes, unsupported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from veomock.conformance.command import main
from veomock.contracts import ContractError, load_file

from tests.helpers import shape_diff
from tests.hooks import CHANNEL_IDS, CHANNELS, channel_of, load, mock, request_for

pytestmark = pytest.mark.anyio
HTTPS_ONLY = [(p, c) for p, c in CHANNELS if channel_of(p, c).https_only]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _refusal(provider: str, error: str, body: Any) -> None:
    spec = load(provider).errors[error]
    assert shape_diff(spec.body.render({"message": "x", "job": {}, "retry_after": 1}), body) == []


@pytest.mark.parametrize(("provider", "name"), HTTPS_ONLY, ids=[f"{p}-{c}" for p, c in HTTPS_ONLY])
@pytest.mark.parametrize("url", ["http://example.com/hook", "http://127.0.0.1:9/hook"])
async def test_plain_http_is_refused_at_submit(provider: str, name: str, url: str) -> None:
    channel = channel_of(provider, name)
    assert channel.rejected is not None
    async with mock(provider, allow_http_webhooks=False) as m:
        response = await m.submit(provider, request_for(provider, channel, url))
        assert response.status_code == load(provider).errors[channel.rejected].status
        _refusal(provider, channel.rejected, response.json())
        assert "must be an https:// URL" in response.text
        assert ("--allow-http-webhooks" in response.text) == ("127.0.0.1" in url)
        assert m.state.jobs == {}


@pytest.mark.parametrize(("provider", "name"), HTTPS_ONLY, ids=[f"{p}-{c}" for p, c in HTTPS_ONLY])
async def test_allow_http_webhooks_covers_loopback_only(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    async with mock(provider, allow_http_webhooks=True) as m:
        local = await m.submit(provider, request_for(provider, channel, "http://127.0.0.1:9/hook"))
        assert local.status_code == load(provider).submit.status, local.text
        remote = await m.submit(provider, request_for(provider, channel, "http://example.com/hook"))
        assert remote.status_code != load(provider).submit.status
        assert "--allow-http-webhooks" not in remote.text


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_a_url_that_is_not_absolute_is_refused(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    error = channel.rejected or "invalid_request"
    async with mock(provider) as m:
        response = await m.submit(provider, request_for(provider, channel, "not-a-url"))
        assert response.status_code == load(provider).errors[error].status
        assert "must be an absolute" in response.text and "not-a-url" in response.text


async def test_plain_http_is_accepted_where_the_contract_allows_it() -> None:
    channel = channel_of("aivideoapi", "callback")
    assert not channel.https_only
    async with mock("aivideoapi", allow_http_webhooks=False) as m:
        m.state.webhooks.targets.add(["example.com"])
        response = await m.submit("aivideoapi", request_for("aivideoapi", channel, "http://example.com/hook"))
        assert response.status_code == 200, response.text


async def test_an_unknown_mode_is_refused() -> None:
    channel = channel_of("pixazo", "header")
    async with mock("pixazo") as m:
        request = request_for("pixazo", channel, "https://example.com/h", mode="often")
        response = await m.submit("pixazo", request)
        assert response.status_code == 400
        assert "must be one of terminal, sync" in response.text and "x-webhook-mode" in response.text


async def test_an_unknown_event_filter_is_refused() -> None:
    channel = channel_of("pixazo", "body")
    async with mock("pixazo") as m:
        request = request_for("pixazo", channel, "https://example.com/h", events=["start", "output"])
        response = await m.submit("pixazo", request)
        assert response.status_code == 400 and '"output"' in response.json()["message"]


def _unsupported() -> list[tuple[str, Any]]:
    out = []
    for provider in ("aivideoapi", "apixo", "pixazo", "vtrix"):
        unsupported = load(provider).webhook_unsupported
        for expr in unsupported.detect if unsupported else ():
            out.append((provider, expr))
    return out


UNSUPPORTED = _unsupported()


UNSUPPORTED_IDS = [f"{p}-{str(e.source).strip('{} ')}" for p, e in UNSUPPORTED]


@pytest.mark.parametrize(("provider", "expr"), UNSUPPORTED, ids=UNSUPPORTED_IDS)
async def test_webhook_attempts_are_refused_where_none_is_supported(provider: str, expr: Any) -> None:
    contract = load(provider)
    assert contract.webhook_unsupported is not None and not contract.webhooks["supported"]
    error = contract.errors[contract.webhook_unsupported.rejected]

    class Field:
        url_from, when_from, mode_from, filter_from, models = expr, None, None, None, ()

    async with mock(provider) as m:
        plain = await m.submit(provider, request_for(provider, None, None))
        assert plain.status_code == contract.submit.status, plain.text
        request = request_for(provider, Field(), "https://example.com/hook")  # type: ignore[arg-type]
        response = await m.submit(provider, request)
        assert response.status_code == error.status
        assert response.json() == error.body.render({"message": error.message})
        assert len(m.state.jobs) == 1


def _broken(tmp_path: Path, provider: str, change: Any) -> Path:
    data = yaml.safe_load(load(provider).file.read_text())
    change(data)
    path = tmp_path / f"{provider}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("provider", "change", "message"),
    [
        ("pixazo", lambda d: d["webhooks"]["channels"][1].pop("filters"), "filter_from needs `filters`"),
        ("pixazo", lambda d: d["webhooks"]["channels"][1].update(models=["veo-9"]), "unknown model 'veo-9'"),
        ("apixo", lambda d: d["webhooks"].pop("delivery"), "channels need `delivery`"),
        ("vtrix", lambda d: d["webhooks"]["unsupported"].update(rejected="webhook_nope"), "no error 'webhook_nope'"),
        ("vtrix", lambda d: d["webhooks"]["unsupported"].update(detect=["bdy.url"]), "unknown root 'bdy'"),
    ],
)
def test_a_wrong_webhook_section_fails_at_load_time(tmp_path: Path, provider: str, change: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        load_file(_broken(tmp_path, provider, change))


def test_serve_refuses_a_missing_ca_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["serve", "--webhook-ca", str(tmp_path / "missing.pem")]) == 2
    assert "veomock:" in capsys.readouterr().err

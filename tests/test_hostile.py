"""Hostile bodies and headers get the provider's 400, never a 500: every contract, every field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.contracts import Contract
from veomock.mocks import MockState
from veomock.mocks.validation import validator_for

from tests.conftest import PROVIDERS
from tests.helpers import all_fixtures, auth_headers, operation, strings
from tests.hooks import CHANNEL_IDS, CHANNELS, channel_of, load, mock, request_for

Path = tuple[str | int, ...]


def _leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    """The path of every string in a JSON value."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))


def _put(body: Any, path: Path, value: Any) -> Any:
    body = json.loads(json.dumps(body))
    node = body
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return body


def _name(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _submits() -> list[tuple[str, str, dict[str, Any]]]:
    """The first documented request of each submit operation."""
    out, seen = [], set()
    for provider, name, data in all_fixtures(PROVIDERS, "requests"):
        if operation(load(provider), data["operation"]).kind == "submit" and (provider, data["operation"]) not in seen:
            seen.add((provider, data["operation"]))
            out.append((provider, name, data))
    return out


SUBMITS = _submits()
SUBMIT_IDS = [f"{p}-{n}" for p, n, _ in SUBMITS]
FIRST = {p: (n, d) for p, n, d in reversed(SUBMITS)}  # one documented submit per provider


def _post(client: TestClient, contract: Contract, data: dict[str, Any], content: bytes) -> Any:
    op = operation(contract, data["operation"])
    headers = {k: v for k, v in data.get("headers", {}).items() if "webhook" not in k.lower()}
    headers.update({**auth_headers(contract), "content-type": "application/json"})
    return client.request(op.method, op.path, content=content, headers=headers)


def _refused(state: MockState, contract: Contract, response: Any, needle: str) -> None:
    assert response.status_code == contract.errors["invalid_request"].status, response.text
    assert any(needle in s for s in strings(response.json())), response.text
    assert not state.jobs


@pytest.mark.parametrize(("provider", "fixture", "data"), SUBMITS, ids=SUBMIT_IDS)
def test_a_lone_surrogate_in_any_string_field_is_refused(
    client: TestClient, state: MockState, provider: str, fixture: str, data: dict[str, Any]
) -> None:
    contract = state.contracts[provider]
    paths = list(_leaves(data["body"]))
    assert paths
    for path in paths:
        body = _put(data["body"], path, "a\ud800b")
        response = _post(client, contract, data, json.dumps(body).encode())
        _refused(state, contract, response, f"{_name(path)} holds a lone surrogate")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("where", "make", "needle"),
    [
        ("a key", lambda body: {**body, "\udc00": 1}, "a key of body holds a lone surrogate"),
        ("invalid UTF-8", lambda body: json.dumps(body)[:-1].encode() + b', "x": "\xff"}', "is not UTF-8"),
        ("CESU-8", lambda body: json.dumps(body)[:-1].encode() + b', "x": "\xed\xa0\x80"}', "is not UTF-8"),
        ("UTF-16", lambda body: json.dumps(body).encode("utf-16"), "is not UTF-8"),
        ("NaN", lambda body: json.dumps(body)[:-1].encode() + b', "x": NaN}', "NaN is not JSON"),
    ],
)
def test_a_body_that_is_not_json_text_is_refused(
    client: TestClient, state: MockState, provider: str, where: str, make: Any, needle: str
) -> None:
    contract = state.contracts[provider]
    data = FIRST[provider][1]
    raw = make(data["body"])
    response = _post(client, contract, data, raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    _refused(state, contract, response, needle)


BAD_URLS = [
    "https://[j@0RkeCM8",
    "https://[::1/hook",
    "https://127.0.0.1:99999/hook",
    "https://127.0.0.1:port/hook",
    "https://127.0.0.1:0/hook",
    "https://",
    "https:///hook",
    "https://:443/hook",
    "ftp://127.0.0.1/hook",
    "https://127.0.0.1/a b",
    "https://127.0.0.1/\x01",
    "https://exa mple.com/",
    "https://ex<am>ple.com/",
]


@pytest.mark.anyio
@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_a_malformed_callback_url_is_refused(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    error = load(provider).errors[channel.rejected or "invalid_request"]
    in_header = str(channel.url_from.source).startswith("{{ header.")
    async with mock(provider) as m:
        for url in BAD_URLS:
            if in_header and any(ord(ch) < 0x20 for ch in url):
                continue  # HTTP cannot carry a control character in a header
            response = await m.submit(provider, request_for(provider, channel, url))
            assert response.status_code == error.status, (url, response.text)
            assert "must be an absolute" in response.text, url
            assert m.state.jobs == {}


def _url_rules() -> list[tuple[str, str, dict[str, Any], Path, str]]:
    """(provider, fixture, request, field, message) for each documented field a rule holds to an
    http(s) URL pattern, where the documented request fills that field."""
    out = []
    for provider, name, data in SUBMITS:
        contract = load(provider)
        op = operation(contract, data["operation"])
        for model in [m for m in op.models if validator_for(contract.models[m]).check(data["body"]) is None][:1]:
            for rule in contract.models[model].rules:
                for path in _leaves(data["body"]):
                    node: Any = rule.then
                    for part in path:
                        node = (
                            node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
                        ) or {}
                    if str(node.get("pattern", "")).startswith("^[Hh][Tt][Tt][Pp][Ss]?://"):
                        out.append((provider, name, data, path, rule.message))
    return out


URL_RULES = _url_rules()
NOT_URLS = [
    "https://",
    "https:///x.png",
    "https://host/\x01.png",
    "https://a host/x.png",
    "https://[j@0RkeCM8",
    "x.png",
]


@pytest.mark.parametrize(
    ("provider", "fixture", "data", "path", "message"),
    URL_RULES,
    ids=[f"{p}-{n}-{_name(path)}" for p, n, _, path, _ in URL_RULES],
)
@pytest.mark.parametrize("value", NOT_URLS)
def test_a_field_documented_as_an_http_url_refuses_what_is_none(
    client: TestClient,
    state: MockState,
    provider: str,
    fixture: str,
    data: dict[str, Any],
    path: Path,
    message: str,
    value: str,
) -> None:
    contract = state.contracts[provider]
    good = _post(client, contract, data, json.dumps(data["body"]).encode())
    assert good.status_code == contract.submit.status, good.text
    state.jobs.clear()
    response = _post(client, contract, data, json.dumps(_put(data["body"], path, value)).encode())
    _refused(state, contract, response, message)


def test_there_are_http_url_rules_to_test() -> None:
    assert len({(p, _name(path)) for p, _, _, path, _ in URL_RULES}) >= 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_path_no_route_pattern_matches_gets_a_provider_shaped_answer(client: TestClient, provider: str) -> None:
    """A newline (%0A) in a path matched no route, and Starlette answered a plain-text 404."""
    contract = load(provider)
    path = contract.media_path.replace("{job_id}", "a%0Ab")
    response = client.get(path, headers=auth_headers(contract))
    assert response.headers["content-type"].startswith("application/json"), response.text
    declared = {e.status for e in contract.errors.values()} | {contract.media_expired.status}
    assert response.status_code in declared
    nowhere = client.get("/nowhere%0Aat-all")
    assert nowhere.status_code == 404 and "routes" in nowhere.json()

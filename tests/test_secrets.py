"""API keys in the control API's listings: masked unless asked, and a control API beyond loopback
that has no token does not start."""

from __future__ import annotations

import httpx
import pytest
from veomock.conformance.command import main
from veomock.mocks import MockState
from veomock.mocks.journal import mask_secret

from tests.conftest import PROVIDERS
from tests.hooks import request_for

pytestmark = pytest.mark.anyio
KEY = "sk-live-secret-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_keys_are_masked_in_the_journal_the_har_and_the_job_listings(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    request = request_for(provider, None, None, key=KEY)
    submitted = await request.send(asgi_client)
    assert submitted.status_code == state.contracts[provider].submit.status, submitted.text
    [job] = state.jobs.values()
    shown = mask_secret(KEY)
    assert shown == "sk-l…6789"
    for path in ("/_veomock/journal", "/_veomock/journal.har", "/_veomock/jobs", f"/_veomock/jobs/{job.id}"):
        hidden = await asgi_client.get(path)
        assert hidden.status_code == 200 and KEY not in hidden.text and shown in hidden.text, (path, hidden.text)
        full = await asgi_client.get(path, params={"reveal": "1"})
        assert KEY in full.text, path
    by_key = await asgi_client.get("/_veomock/journal", params={"key": KEY})
    assert len(by_key.json()["entries"]) == 1  # filters still take the full key


@pytest.mark.parametrize(("secret", "shown"), [("sk-veomock-test", "sk-v…test"), ("demo-key", "de…ey"), ("abc", "…")])
def test_a_masked_secret_tells_keys_apart_without_giving_them_away(secret: str, shown: str) -> None:
    assert mask_secret(secret) == shown


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_control_api_beyond_loopback_needs_a_token_or_insecure(capsys: pytest.CaptureFixture[str], host: str) -> None:
    assert main(["serve", "--host", host, "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert "--control-token" in err and "--insecure" in err

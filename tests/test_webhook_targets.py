"""Callback targets: loopback only unless allowed, refused at submit before anything connects."""

from __future__ import annotations

import socket

import pytest
from veomock.conformance.command import main
from veomock.mocks.hosts import Allowlist

from tests.hooks import CHANNEL_IDS, CHANNELS, channel_of, load, mock, request_for

pytestmark = pytest.mark.anyio
OUTSIDE = ["https://169.254.169.254/latest", "https://10.0.0.1/hook", "https://example.com/hook", "https://[fd00::1]/h"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
@pytest.mark.parametrize("url", OUTSIDE)
async def test_a_target_beyond_loopback_gets_the_providers_400_saying_how_to_allow_it(
    provider: str, name: str, url: str
) -> None:
    channel = channel_of(provider, name)
    error = load(provider).errors[channel.rejected or "invalid_request"]
    async with mock(provider) as m:
        response = await m.submit(provider, request_for(provider, channel, url))
        assert response.status_code == error.status, response.text
        assert "--webhook-allow" in response.text and '\\"allow\\"' in response.text
        assert m.state.jobs == {} and m.state.webhooks.outstanding() == []


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_a_refused_target_is_never_connected_to(provider: str, name: str) -> None:
    """A listening socket the allow-list leaves out sees no connection, before or after the clock moves."""
    channel = channel_of(provider, name)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        async with mock(provider) as m:
            m.state.webhooks.targets = Allowlist(["127.0.0.1:1"], defaults=())
            response = await m.submit(provider, request_for(provider, channel, f"http://127.0.0.1:{port}/hook"))
            assert response.status_code == load(provider).errors[channel.rejected or "invalid_request"].status
            assert f"127.0.0.1:{port}" in response.text
            m.state.clock.advance(86_400)
            assert await m.state.webhooks.run_due() == 0
        with pytest.raises(BlockingIOError):
            listener.accept()  # a connection, even one never answered, would be waiting here


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_the_control_api_allows_more_targets(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    async with mock(provider) as m:
        bad = await m.client.post("/_veomock/webhooks", json={"allow": ["10.0.0.0/8", "not a host"]})
        assert bad.status_code == 400 and "not HOST[:PORT] or a CIDR" in bad.json()["error"]
        assert "10.0.0.0/8" not in (await m.client.get("/_veomock/webhooks")).json()["allowed_targets"]
        ok = await m.client.post("/_veomock/webhooks", json={"allow": ["10.0.0.0/8"]})
        assert ok.status_code == 200 and "10.0.0.0/8" in ok.json()["allowed_targets"]
        response = await m.submit(provider, request_for(provider, channel, "https://10.1.2.3/hook"))
        assert response.status_code == load(provider).submit.status, response.text
        await m.client.post("/_veomock/reset")
        assert "10.0.0.0/8" in (await m.client.get("/_veomock/webhooks")).json()["allowed_targets"]


def test_serve_refuses_a_malformed_webhook_allow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--webhook-allow", "10.0.0.0/8", "--webhook-allow", "receiver:port"]) == 2
    assert "webhook target 'receiver:port' is not HOST[:PORT] or a CIDR" in capsys.readouterr().err

"""The Host header behind every URL the mock hands out, and the callback targets it may call."""

from __future__ import annotations

import re

import pytest
from veomock.mocks.hosts import Allowlist, parse_target, request_host
from veomock.mocks.receiver import Receiver

from tests.hooks import CHANNEL_IDS, CHANNELS, channel_of, load, mock, request_for

SERVER = ("127.0.0.1", 8000)
HOSTILE = ['a"b<c>@evil/x?', "evil.test/path", "evil.test:99999", "evil.test:80:81", "[evil.test]", "evil test", ""]


@pytest.mark.parametrize("header", ["mock.test", "mock.test:9000", "127.0.0.1:8000", "[::1]:8000", "a-b.c_d.test."])
def test_a_host_and_port_is_kept(header: str) -> None:
    assert request_host(header, SERVER) == header


@pytest.mark.parametrize("header", [*HOSTILE, None])
def test_anything_else_falls_back_to_the_servers_own_address(header: str | None) -> None:
    assert request_host(header, SERVER) == "127.0.0.1:8000"
    assert request_host(header, ("::1", 9)) == "[::1]:9"
    assert request_host(header, None) == "127.0.0.1:80"


@pytest.mark.anyio
@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
@pytest.mark.parametrize("host", HOSTILE[:3])
async def test_a_hostile_host_header_reaches_no_url(provider: str, name: str, host: str) -> None:
    """Submit, poll and the webhook body all build their URLs on the server's own address."""
    channel = channel_of(provider, name)
    async with mock(provider) as m, Receiver() as hook:
        request = request_for(provider, channel, hook.url("/done"))
        request.headers["Host"] = host
        submitted = await m.submit(provider, request)
        assert submitted.status_code == load(provider).submit.status, submitted.text
        job = list(m.state.jobs.values())[-1]
        m.finish(job)
        m.client.headers["Host"] = host
        polled = await m.status(job)
        assert await m.state.webhooks.run_due() >= 1
        texts = [submitted.text, polled.text, *(r.body.decode() for r in hook.received)]
        assert not [t for t in texts if "evil" in t]
        urls = re.findall(r"https?://[^\"\\\s]+", polled.text)
        assert urls and all(u.startswith("http://127.0.0.1:8000/") for u in urls), urls


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9/hook", True),
        ("https://127.200.0.1/hook", True),
        ("http://localhost:6379/", True),
        ("https://LOCALHOST./hook", True),
        ("https://[::1]:8443/hook", True),
        ("https://[::ffff:127.0.0.1]/hook", True),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://10.0.0.1/hook", False),
        ("https://192.168.1.1/hook", False),
        ("https://[fd00::1]/hook", False),
        ("https://[::ffff:10.0.0.1]/hook", False),
        ("https://example.com/hook", False),
        ("https://localhost.example.com/hook", False),
        ("https://2130706433/hook", False),  # 127.0.0.1 as one number: a name, and not a listed one
    ],
)
def test_only_loopback_is_allowed_by_default(url: str, allowed: bool) -> None:
    assert Allowlist().allows(parse_target(url)) is allowed


def test_added_entries_allow_a_host_a_port_or_a_network() -> None:
    targets = Allowlist(["receiver:8080", "hooks.test", "10.0.0.0/8", "[fd00::5]:9000", "192.0.2.7"])
    assert targets.allows(parse_target("http://receiver:8080/h"))
    assert not targets.allows(parse_target("http://receiver:8081/h"))
    assert targets.allows(parse_target("https://HOOKS.test:1234/h"))
    assert targets.allows(parse_target("https://10.200.3.4/h"))
    assert not targets.allows(parse_target("https://11.0.0.1/h"))
    assert targets.allows(parse_target("http://[fd00::5]:9000/h"))
    assert not targets.allows(parse_target("http://[fd00::5]:9001/h"))
    assert targets.allows(parse_target("https://192.0.2.7:1/h"))
    assert "127.0.0.0/8" in targets.entries() and "receiver:8080" in targets.entries()


@pytest.mark.parametrize("entry", ["a:b", "[::1", "[::1]x", "two words", "10.0.0.0/33", "host:70000", "host:0", ""])
def test_a_malformed_entry_is_refused_and_adds_nothing(entry: str) -> None:
    targets = Allowlist()
    before = targets.entries()
    with pytest.raises(ValueError, match="is not HOST\\[:PORT\\] or a CIDR; use HOST"):
        targets.add(["10.0.0.0/8", entry])
    assert targets.entries() == before

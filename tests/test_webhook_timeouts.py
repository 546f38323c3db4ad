"""Callback timeouts: the contract's timeout in provider time, a floor a loaded machine meets, and
retries that a late answer made duplicates, flagged in the journal."""

from __future__ import annotations

import asyncio

import pytest
from veomock.mocks.receiver import Received, Receiver

from tests.hooks import CHANNELS, channel_of, load, mock

pytestmark = pytest.mark.anyio
FIRST_CHANNELS = [(p, c) for p, c in CHANNELS if c == next(n for q, n in CHANNELS if q == p)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_receiver_that_takes_a_second_is_not_timed_out_at_a_high_speed() -> None:
    """At 600x the contract's 5 s is 8 ms of real time; the floor gives a loaded machine seconds."""
    provider, name = next((p, c) for p, c in CHANNELS if load(p).webhook_delivery and p == "pixazo")
    channel = channel_of(provider, name)

    async def slow(_: Received) -> int:
        await asyncio.sleep(1.2)  # the receiver is slow; nothing waits on this to synchronise
        return 200

    async with mock(provider) as m, Receiver(slow) as hook:
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        m.state.clock.set_speed(600)
        await m.state.webhooks.run_due()
        [entry] = m.outbound(job)
        assert entry["outcome"] == "delivered" and entry["error"] is None, entry
        assert m.state.webhooks.timeout_floor >= 5


def _hold_first(release: asyncio.Event) -> object:
    """Answer the first request only once ``release`` is set; any later one at once."""
    seen = 0

    async def answer(_: Received) -> int:
        nonlocal seen
        seen += 1
        if seen == 1:
            await release.wait()
        else:
            release.set()
        return 200

    return answer


@pytest.mark.parametrize(("provider", "name"), FIRST_CHANNELS, ids=[p for p, _ in FIRST_CHANNELS])
async def test_a_retry_sent_after_a_late_answer_is_flagged_a_duplicate(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    release = asyncio.Event()
    async with mock(provider) as m, Receiver(_hold_first(release)) as hook:  # type: ignore[arg-type]
        m.state.webhooks.timeout_cap = 0.2  # the contract's timeout, cut short for the test
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [first] = m.outbound(job)
        assert first["outcome"] == "retry" and first["duplicate"] is False
        release.set()  # the receiver answers the timed-out attempt after all
        await m.state.webhooks.answers_after_timeout()
        late = m.outbound(job)[-1]
        assert late["outcome"] == "answered_late" and late["attempt"] == 1 and late["duplicate"] is False
        m.state.webhooks.timeout_cap = 30.0  # the retry has all the time a loaded machine needs
        m.state.clock.advance(first["next_attempt_at"] - m.state.now())
        await m.state.webhooks.run_due()
        retry = m.outbound(job)[-1]
        assert retry["attempt"] == 2 and retry["outcome"] == "delivered" and retry["duplicate"] is True
        assert len(hook.received) == 2 and m.state.webhooks.counts["answered_late"] == 1


@pytest.mark.parametrize(("provider", "name"), FIRST_CHANNELS, ids=[p for p, _ in FIRST_CHANNELS])
async def test_a_late_answer_after_the_retry_is_flagged_a_duplicate(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    release = asyncio.Event()
    async with mock(provider) as m, Receiver(_hold_first(release)) as hook:  # type: ignore[arg-type]
        m.state.webhooks.timeout_cap = 0.2
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [first] = m.outbound(job)
        m.state.webhooks.timeout_cap = 30.0  # the retry has all the time a loaded machine needs
        m.state.clock.advance(first["next_attempt_at"] - m.state.now())
        await m.state.webhooks.run_due()  # the retry arrives, and the receiver answers both
        await m.state.webhooks.answers_after_timeout()
        [late] = [e for e in m.outbound(job) if e["outcome"] == "answered_late"]
        assert late["attempt"] == 1 and late["duplicate"] is True  # the retry had gone out already
        assert [e["outcome"] for e in m.outbound(job) if e["outcome"] != "answered_late"] == ["retry", "delivered"]

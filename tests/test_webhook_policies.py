"""Adversarial delivery on demand: duplicate, reorder, delay, drop, late; per job, per key, by rule."""

from __future__ import annotations

import pytest
from veomock.mocks.receiver import Receiver
from veomock.mocks.webhooks import DEFAULT_DELAY, Policy

from tests.helpers import API_KEY
from tests.hooks import channel_of, load, mock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_duplicate_sends_the_same_callback_twice() -> None:
    channel = channel_of("pixazo", "header")
    async with mock("pixazo") as m, Receiver() as hook:
        job = await m.job_for("pixazo", channel, hook.url())
        m.state.webhooks.set_policy(Policy("duplicate"), job=job.id)
        m.finish(job)
        assert await m.state.webhooks.run_due() == 2
        first, second = hook.received
        assert first.body == second.body and first.headers == second.headers
        assert [(e["copy"], e["policy"], e["outcome"]) for e in m.outbound(job)] == [
            (1, "duplicate", "delivered"),
            (2, "duplicate", "delivered"),
        ]


async def test_reorder_delivers_later_states_first() -> None:
    channel = channel_of("pixazo", "header")
    names = load("pixazo").states
    async with mock("pixazo") as m, Receiver() as hook:
        m.state.webhooks.set_policy(Policy("reorder"), key=API_KEY)
        job = await m.job_for("pixazo", channel, hook.url(), mode="sync")
        for start, _ in job.timeline[:-1]:
            m.advance_to(start)
            assert await m.state.webhooks.run_due() == 0, "reorder holds the early states back"
        m.finish(job)
        assert await m.state.webhooks.run_due() == 3
        order = [names[s] for s in ("succeeded", "running", "queued")]
        assert [r.json()["status"] for r in hook.received] == order
        status = (await m.status(job)).json()
        assert hook.received[0].json() == status


async def test_delay_holds_each_callback_back() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        job = await m.job_for("aivideoapi", channel, hook.url())
        m.state.webhooks.set_policy(Policy("delay", 120), job=job.id)
        end = m.finish(job)
        assert await m.state.webhooks.run_due() == 0
        m.state.clock.advance(119)
        assert await m.state.webhooks.run_due() == 0
        m.state.clock.advance(1)
        assert await m.state.webhooks.run_due() == 1
        [entry] = m.outbound(job)
        assert entry["time"] == end + 120 and entry["policy"] == "delay"
        assert hook.received[0].json() == (await m.status(job)).json()


async def test_drop_never_sends_and_says_so() -> None:
    channel = channel_of("apixo", "callback")
    async with mock("apixo") as m, Receiver() as hook:
        job = await m.job_for("apixo", channel, hook.url())
        m.state.webhooks.set_policy(Policy("drop"), job=job.id)
        m.finish(job)
        assert await m.state.webhooks.run_due() == 0
        m.state.clock.advance(86_400)
        assert await m.state.webhooks.run_due() == 0
        assert hook.received == []
        [entry] = m.outbound(job)
        assert entry["outcome"] == "dropped" and entry["status"] is None and entry["attempt"] == 0
        assert "dropped" in entry["error"]
        assert m.state.webhooks.idle()


async def test_late_waits_until_a_poll_has_seen_the_terminal_state() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        job = await m.job_for("aivideoapi", channel, hook.url())
        m.state.webhooks.set_policy(Policy("late"), job=job.id)
        await m.status(job)  # a poll before the end releases nothing
        end = m.finish(job)
        assert await m.state.webhooks.run_due() == 0
        [waiting] = m.state.webhooks.outstanding()
        assert waiting["waiting_for_poll"] is True
        m.state.clock.advance(5)
        polled = (await m.status(job)).json()
        assert await m.state.webhooks.run_due() == 1
        assert hook.received[0].json() == polled
        [entry] = m.outbound(job)
        assert entry["time"] == end + 5
        journal = list(m.state.journal)
        polls = [i for i, e in enumerate(journal) if e["direction"] == "inbound" and e.get("job") == job.id]
        assert journal.index(entry) > max(polls)


async def test_a_key_policy_covers_every_job_of_that_key_and_clears() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        m.state.webhooks.set_policy(Policy("drop"), key="sk-dropped")
        dropped = await m.job_for("aivideoapi", channel, hook.url("/a"), key="sk-dropped")
        kept = await m.job_for("aivideoapi", channel, hook.url("/b"))
        m.advance_to(max(dropped.terminal_at() or 0, kept.terminal_at() or 0))
        await m.state.webhooks.run_due()
        assert [r.path for r in hook.received] == ["/b"]
        m.state.webhooks.set_policy(None, key="sk-dropped")
        assert m.state.webhooks.policies() == {"jobs": {}, "keys": {}}


def test_policy_from_a_scenario_action() -> None:
    assert Policy.from_action({"webhook": "delay", "seconds": 30}) == Policy("delay", 30)
    assert Policy.from_action({"webhook": "delay"}) == Policy("delay", DEFAULT_DELAY)
    assert Policy.from_action({"webhook": "late"}) == Policy("late")
    with pytest.raises(ValueError, match="use one of duplicate, reorder, delay, drop, late"):
        Policy.from_action({"webhook": "later"})


async def test_a_scenario_rule_drives_the_policy() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        rule = {"provider": "aivideoapi", "action": {"webhook": "duplicate"}}
        assert (await m.client.post("/_veomock/scenarios", json=rule)).status_code < 300
        job = await m.job_for("aivideoapi", channel, hook.url())
        m.finish(job)
        assert await m.state.webhooks.run_due() == 2
        assert len(hook.received) == 2


async def test_control_api_sets_policies_and_flushes() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        bad = await m.client.post("/_veomock/webhooks", json={"policy": {"mode": "lose", "key": API_KEY}})
        assert bad.status_code == 400 and "use one of" in bad.json()["error"]
        both = await m.client.post("/_veomock/webhooks", json={"policy": {"mode": "drop"}})
        assert both.status_code == 400 and 'exactly one "job" or "key"' in both.json()["error"]
        policy = {"mode": "delay", "seconds": 10, "key": API_KEY}
        ok = await m.client.post("/_veomock/webhooks", json={"policy": policy})
        assert ok.status_code == 200
        assert ok.json()["policies"]["keys"] == {API_KEY: {"mode": "delay", "seconds": 10}}
        job = await m.job_for("aivideoapi", channel, hook.url())
        m.finish(job)
        flushed = await m.client.post("/_veomock/webhooks/flush")
        assert flushed.json() == {"attempts": 0, "outstanding": 1}
        overview = (await m.client.get("/_veomock/webhooks")).json()
        assert overview["outstanding"][0]["job"] == job.id and overview["outstanding"][0]["policy"] == "delay"
        moved = await m.client.post("/_veomock/clock", json={"advance": 10})
        assert moved.json()["webhook_attempts"] == 1, "moving the clock delivers what it made due"
        flushed = await m.client.post("/_veomock/webhooks/flush")
        assert flushed.json() == {"attempts": 0, "outstanding": 0}
        assert len(hook.received) == 1


async def test_a_namespaced_reset_forgets_that_keys_callbacks_only() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        m.state.webhooks.set_policy(Policy("delay", 5), key="sk-gone")
        gone = await m.job_for("aivideoapi", channel, hook.url("/gone"), key="sk-gone")
        kept = await m.job_for("aivideoapi", channel, hook.url("/kept"))
        assert (await m.client.post("/_veomock/reset", params={"key": "sk-gone"})).status_code == 200
        assert m.state.webhooks.policies()["keys"] == {}
        m.advance_to(max(gone.terminal_at() or 0, kept.terminal_at() or 0) + 5)
        await m.state.webhooks.run_due()
        assert [r.path for r in hook.received] == ["/kept"]

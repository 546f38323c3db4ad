"""The webhook schedule shared through Redis, against a real redis-server and real receivers on
127.0.0.1: a job's callbacks live in Redis from its submit on, so whichever worker's pass comes
first turns its state changes into deliveries and delivers them, each attempt once across workers;
a delivery whose claimer died comes due again for the others; policies, polls and forced states on
one worker shape what another delivers."""

from __future__ import annotations

import asyncio

import pytest
from veomock.contracts import load_all
from veomock.mocks import Clock
from veomock.mocks.lifecycle import Job
from veomock.mocks.receiver import Receiver, failing
from veomock.mocks.store_redis import RedisState
from veomock.mocks.webhooks import Policy, Schedule

from tests.hooks import channel_of, finish, outbound, serve

pytestmark = pytest.mark.anyio
START = 1_800_000_000.0
CONTRACTS = load_all()
PROVIDER = "apixo"


@pytest.fixture
def workers(store: str) -> tuple[RedisState, RedisState]:
    made = [
        RedisState(
            contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=store, allow_http_webhooks=True
        )
        for _ in range(2)
    ]
    return made[0], made[1]


async def _submit(worker: RedisState, url: str) -> Job:
    """Submit on ``worker`` over HTTP, asking for a callback to ``url``; the job, as any worker sees it."""
    async with serve(worker) as m:
        return await m.job_for(PROVIDER, CONTRACTS[PROVIDER].webhook_channels[0], url)


def _schedule(worker: RedisState) -> Schedule:
    schedule = worker.webhooks.schedule
    assert schedule is not None
    return schedule


async def _ended(worker: RedisState, hook: Receiver) -> Job:
    """A job submitted on ``worker`` with a callback to ``hook``, the clock moved to its end."""
    job = await _submit(worker, hook.url())
    finish(worker, job)
    return job


async def test_a_callback_submitted_on_one_worker_is_delivered_once_by_the_other(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    async with Receiver() as hook:
        job = await _submit(one, hook.url())
        finish(two, job)  # the clock is shared: either worker moves it for both
        assert hook.received == []
        assert await two.webhooks.run_due() == 1
        assert await one.webhooks.run_due() == 0  # claimed and finished: nothing left for one
        assert await two.webhooks.run_due() == 0
        [got] = hook.received
        [entry] = outbound(one)  # the journal is shared too
        assert entry["job"] == job.id and entry["outcome"] == "delivered" and entry["attempt"] == 1
        assert job.id in got.body.decode() and got.json() == entry["body"]
        assert one.webhooks.idle() and two.webhooks.idle()


async def test_a_claim_whose_worker_died_is_delivered_by_another_once_its_lease_ends(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    schedule = _schedule(one)
    async with Receiver() as hook:
        job = await _ended(one, hook)
        one.webhooks.outstanding()  # the pass over its watch turns the end into a delivery
        [(_, payload)] = schedule.claim(job.key, one.now(), lease=10.0)  # then the claimer dies
        assert payload["job"] == job.id
        assert await two.webhooks.run_due() == 0  # the lease still holds
        two.clock.advance(9.5)
        assert await two.webhooks.run_due() == 0
        two.clock.advance(0.5)
        assert await two.webhooks.run_due() == 1
        assert await one.webhooks.run_due() == 0
        assert len(hook.received) == 1
        assert [e["outcome"] for e in outbound(two)] == ["delivered"]
        assert schedule.waiting() == []


async def test_workers_passing_at_once_attempt_each_callback_once(workers: tuple[RedisState, RedisState]) -> None:
    one, two = workers
    async with Receiver() as hook:
        jobs = [await _submit(w, hook.url(f"/{i}")) for i, w in enumerate([one, two] * 10)]
        finish(one, max(jobs, key=lambda j: j.terminal_at() or 0.0))
        made = await asyncio.gather(one.webhooks.run_due(), two.webhooks.run_due(), one.webhooks.run_due())
        assert sum(made) == 20
        assert sorted(r.path for r in hook.received) == sorted(f"/{i}" for i in range(20))
        assert sorted(e["job"] for e in outbound(one)) == sorted(j.id for j in jobs)


async def test_a_retry_one_worker_schedules_is_made_by_the_other(workers: tuple[RedisState, RedisState]) -> None:
    one, two = workers
    delivery = CONTRACTS[PROVIDER].webhook_delivery
    assert delivery is not None and delivery.retry_delays
    async with Receiver(failing(1)) as hook:
        job = await _submit(one, hook.url())
        finish(one, job)
        assert await two.webhooks.run_due() == 1
        one.clock.advance(delivery.retry_delays[0])
        assert await one.webhooks.run_due() == 1
        assert await two.webhooks.run_due() == 0
        assert [r.answered for r in hook.received] == [500, 200]
        assert [(e["attempt"], e["outcome"]) for e in outbound(one)] == [(1, "retry"), (2, "delivered")]


async def test_the_states_a_job_reaches_after_its_worker_is_gone_are_delivered_once(
    workers: tuple[RedisState, RedisState], store: str
) -> None:
    one, two = workers
    provider, channel = "pixazo", channel_of("pixazo", "header")  # "sync": a callback at every state
    async with serve(one) as first, Receiver() as hook:
        job = await first.job_for(provider, channel, hook.url(), mode="sync")
        # From here on the worker that took the job never runs again: the other delivers all.
        assert await two.webhooks.run_due() == 1
        [(running, _), _] = job.timeline[1:]
        two.clock.advance(running - two.now())
        assert await two.webhooks.run_due() == 1
        finish(two, job)
        assert await two.webhooks.run_due() == 1
        restarted = RedisState(contracts=CONTRACTS, store=store, allow_http_webhooks=True)
        assert await restarted.webhooks.run_due() == 0 and await two.webhooks.run_due() == 0
        assert restarted.webhooks.idle() and restarted.webhooks.outstanding() == []
    assert [r.json()["status"] for r in hook.received] == ["QUEUED", "PROCESSING", "COMPLETED"]
    assert [e["event"] for e in outbound(two)] == ["queued", "running", "succeeded"]


async def test_a_policy_a_poll_and_a_forced_state_on_one_worker_shape_what_the_other_delivers(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    channel = CONTRACTS[PROVIDER].webhook_channels[0]
    async with serve(one) as first, Receiver() as hook:
        late = await first.job_for(PROVIDER, channel, hook.url("/late"))
        delayed = await first.job_for(PROVIDER, channel, hook.url("/delayed"))
        forced = await first.job_for(PROVIDER, channel, hook.url("/forced"))
        one.webhooks.set_policy(Policy("late"), job=late.id)
        one.webhooks.set_policy(Policy("delay", 30), job=delayed.id)
        assert two.webhooks.policies()["jobs"] == {
            late.id: {"mode": "late", "seconds": 0.0},
            delayed.id: {"mode": "delay", "seconds": 30.0},
        }
        one.force(forced, "failed", None, one.now())  # forced on one: the other delivers the failure
        assert await two.webhooks.run_due() == 1
        finish(two, max((late, delayed), key=lambda j: j.terminal_at() or 0.0))
        assert await two.webhooks.run_due() == 0  # late waits for a poll, delayed for 30 s
        waiting = {d["job"]: d for d in two.webhooks.outstanding()}
        assert waiting[late.id]["waiting_for_poll"] is True
        assert waiting[delayed.id]["due"] == delayed.terminal_at() + 30
        assert (await first.status(late)).status_code == 200  # the poll is on one
        assert await two.webhooks.run_due() == 1
        two.clock.advance(30)
        assert await two.webhooks.run_due() == 1
        assert await one.webhooks.run_due() == 0 and two.webhooks.idle()
    assert [r.path for r in hook.received] == ["/forced", "/late", "/delayed"]
    assert [(e["job"], e["policy"]) for e in outbound(one)] == [
        (forced.id, None),
        (late.id, "late"),
        (delayed.id, "delay"),
    ]


async def test_a_pass_over_a_watch_lands_once_when_its_stalled_claimer_comes_back(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    schedule = _schedule(one)
    async with Receiver() as hook:
        job = await _ended(one, hook)
        [(ident, raw, record)] = schedule.claim_watches(job.key, one.now(), lease=10.0)  # then one stalls
        assert await two.webhooks.run_due() == 0  # the lease holds
        two.clock.advance(10)
        assert await two.webhooks.run_due() == 1  # the lease ended: two made the pass and delivered
        now = one.now()
        stale = {**record, "ended": True}
        assert not schedule.commit(job.key, ident, raw, stale, now, [(now, {"job": job.id})], now)
        assert await one.webhooks.run_due() == 0 and await two.webhooks.run_due() == 0
        assert len(hook.received) == 1 and schedule.waiting() == []


async def test_the_overview_on_any_worker_lists_what_every_worker_scheduled(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    async with serve(two) as second, Receiver(failing(1)) as hook:
        job = await _ended(one, hook)
        assert await one.webhooks.run_due() == 1  # the first attempt fails: a retry waits in Redis
        overview = (await second.client.get("/_veomock/webhooks")).json()
    delivery = CONTRACTS[PROVIDER].webhook_delivery
    assert delivery is not None
    end = job.terminal_at()
    assert end is not None
    assert overview["outstanding"] == [
        {
            "job": job.id,
            "provider": PROVIDER,
            "url": hook.url(),
            "event": job.states[-1],
            "due": end + delivery.retry_delays[0],
            "attempts": 1,
            "copy": 1,
            "policy": None,
            "waiting_for_poll": False,
        }
    ]
    assert overview["counts"] == {"delivered": 0, "gave_up": 0, "dropped": 0, "attempts": 1, "answered_late": 0}

"""The webhook schedule shared through Redis, against a real redis-server and real receivers on
127.0.0.1: a callback one worker schedules is delivered by whichever worker's pass claims it, each
attempt once across workers, and a delivery whose claimer died comes due again for the others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis
from veomock.contracts import load_all
from veomock.mocks import Clock, build_app
from veomock.mocks.lifecycle import Job
from veomock.mocks.receiver import Receiver, failing
from veomock.mocks.store_redis import RedisState

from tests.hooks import channel_of, request_for
from tests.redis_server import redis_server

pytestmark = pytest.mark.anyio
START = 1_800_000_000.0
CONTRACTS = load_all()
PROVIDER = "apixo"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def workers(redis_url: str) -> tuple[RedisState, RedisState]:
    redis.Redis.from_url(redis_url).flushdb()
    made = [
        RedisState(
            contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=redis_url, allow_http_webhooks=True
        )
        for _ in range(2)
    ]
    return made[0], made[1]


async def _submit(worker: RedisState, url: str) -> Job:
    """Submit on ``worker`` over HTTP, asking for a callback to ``url``; the job, as any worker sees it."""
    request = request_for(PROVIDER, channel_of(PROVIDER, CONTRACTS[PROVIDER].webhook_channels[0].name), url)
    transport = httpx.ASGITransport(app=build_app(worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        op = request.op
        response = await client.request(
            op.method, op.path, json=request.body, headers=request.headers, params=request.query
        )
    assert response.status_code == CONTRACTS[PROVIDER].submit.status, response.text
    return list(worker.jobs.values())[-1]


def _finish(worker: RedisState, job: Job) -> None:
    end = job.terminal_at()
    assert end is not None
    worker.clock.advance(end - worker.now())


def _outbound(worker: RedisState) -> list[dict[str, object]]:
    return [e for e in worker.journal if e.get("direction") == "outbound"]


async def test_a_callback_submitted_on_one_worker_is_delivered_once_by_the_other(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    async with Receiver() as hook:
        job = await _submit(one, hook.url())
        _finish(two, job)  # the clock is shared: either worker moves it for both
        one.webhooks.outstanding()  # one's watch turns the terminal state into a shared delivery
        assert hook.received == []
        assert await two.webhooks.run_due() == 1
        assert await one.webhooks.run_due() == 0  # claimed and finished: nothing left for one
        assert await two.webhooks.run_due() == 0
        [got] = hook.received
        [entry] = _outbound(one)  # the journal is shared too
        assert entry["job"] == job.id and entry["outcome"] == "delivered" and entry["attempt"] == 1
        assert job.id in got.body.decode() and got.json() == entry["body"]
        assert one.webhooks.idle() and two.webhooks.idle()


async def test_a_claim_whose_worker_died_is_delivered_by_another_once_its_lease_ends(
    workers: tuple[RedisState, RedisState],
) -> None:
    one, two = workers
    schedule = one.webhooks.schedule
    assert schedule is not None
    async with Receiver() as hook:
        job = await _submit(one, hook.url())
        _finish(one, job)
        one.webhooks.outstanding()
        [(_, payload)] = schedule.claim(job.key, one.now(), lease=10.0)  # then the claimer dies
        assert payload["job"] == job.id
        assert await two.webhooks.run_due() == 0  # the lease still holds
        two.clock.advance(9.5)
        assert await two.webhooks.run_due() == 0
        two.clock.advance(0.5)
        assert await two.webhooks.run_due() == 1
        assert await one.webhooks.run_due() == 0
        assert len(hook.received) == 1
        assert [e["outcome"] for e in _outbound(two)] == ["delivered"]
        assert schedule.waiting() == []


async def test_workers_passing_at_once_attempt_each_callback_once(workers: tuple[RedisState, RedisState]) -> None:
    one, two = workers
    async with Receiver() as hook:
        jobs = [await _submit(w, hook.url(f"/{i}")) for i, w in enumerate([one, two] * 10)]
        _finish(one, max(jobs, key=lambda j: j.terminal_at() or 0.0))
        for worker in (one, two):  # each turns its own watches into shared deliveries
            worker.webhooks.outstanding()
        made = await asyncio.gather(one.webhooks.run_due(), two.webhooks.run_due(), one.webhooks.run_due())
        assert sum(made) == 20
        assert sorted(r.path for r in hook.received) == sorted(f"/{i}" for i in range(20))
        assert sorted(e["job"] for e in _outbound(one)) == sorted(j.id for j in jobs)


async def test_a_retry_one_worker_schedules_is_made_by_the_other(workers: tuple[RedisState, RedisState]) -> None:
    one, two = workers
    delivery = CONTRACTS[PROVIDER].webhook_delivery
    assert delivery is not None and delivery.retry_delays
    async with Receiver(failing(1)) as hook:
        job = await _submit(one, hook.url())
        _finish(one, job)
        one.webhooks.outstanding()
        assert await two.webhooks.run_due() == 1
        one.clock.advance(delivery.retry_delays[0])
        assert await one.webhooks.run_due() == 1
        assert await two.webhooks.run_due() == 0
        assert [r.answered for r in hook.received] == [500, 200]
        assert [(e["attempt"], e["outcome"]) for e in _outbound(one)] == [(1, "retry"), (2, "delivered")]

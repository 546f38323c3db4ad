"""The webhook schedule lives in Redis from the submit on: two ``veomock serve`` processes on one
real redis-server, a real receiver on 127.0.0.1, ``kill -9`` of the worker that took the jobs, then
of the whole mock, and a fresh start on the same Redis. Every callback arrives, each exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from veomock.mocks.receiver import Receiver

from tests.hooks import channel_of, load, request_for
from tests.store_serving import kill, listening, serve, start

pytestmark = pytest.mark.anyio
PROVIDER, CHANNEL, MODE = "pixazo", "header", "sync"  # a callback at every state: queued, running, succeeded


async def _submit(base: str, url: str) -> str:
    request = request_for(PROVIDER, channel_of(PROVIDER, CHANNEL), url, mode=MODE)
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await request.send(client)
    assert response.status_code == load(PROVIDER).submit.status, response.text
    return str(response.json()["request_id"])


async def _control(base: str, method: str, path: str, **data: object) -> dict[str, object]:
    """A control call: ``data`` is the body of a POST, the query of a GET."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        if method == "GET":
            response = await client.get(f"/_veomock/{path}", params=data)  # type: ignore[arg-type]
        else:
            response = await client.post(f"/_veomock/{path}", json=data)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def _arrived(hook: Receiver, count: int) -> None:
    async with asyncio.timeout(30):  # a deadline, not a pause: it returns as soon as they are in
        await hook.wait_for(count, answered=True)


async def test_a_kill_9_of_the_worker_then_of_the_whole_mock_loses_no_callback_and_repeats_none(
    store: str,
) -> None:
    flags = ("--allow-http-webhooks",)
    one, two = start(store, *flags), start(store, *flags)  # both start at once
    first, second = listening(one), listening(two)
    try:
        async with Receiver() as hook:
            jobs = [await _submit(first, hook.url(f"/{i}")) for i in range(3)]
            # Nothing is due until the clock moves: the frozen clock moves only through the control API.
            await _control(second, "POST", "webhooks/flush")
            await _arrived(hook, 3)  # every job's "queued", delivered by the worker that did not take it
            kill(one)
            await _control(second, "POST", "clock", advance=10)  # each job is running by now
            await _arrived(hook, 6)
            kill(two)  # the whole mock is gone; what it had scheduled is in Redis
            three, third = serve(store, *flags)
            try:
                moved = await _control(third, "POST", "clock", advance=1000)  # each job has ended
                await _arrived(hook, 9)
                assert moved["webhook_attempts"] == 3
                assert (await _control(third, "POST", "webhooks/flush"))["attempts"] == 0
                overview = await _control(third, "GET", "webhooks")
                journal = await _control(third, "GET", "journal", direction="outbound")
            finally:
                kill(three)
    finally:
        for proc in (one, two):
            if proc.returncode is None:
                kill(proc)
    assert overview["outstanding"] == []
    assert Counter(r.path for r in hook.received) == {f"/{i}": 3 for i in range(3)}
    assert all(r.answered == 200 for r in hook.received)
    entries = journal["entries"]
    assert isinstance(entries, list)
    made = Counter((e["job"], e["event"], e["outcome"]) for e in entries)
    events = ("queued", "running", "succeeded")
    assert made == {(job, event, "delivered"): 1 for job in jobs for event in events}

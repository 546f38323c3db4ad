"""The Redis store: ``veomock serve --store redis://...`` with one worker against two.

A fresh ``redis-server`` (loopback, no persistence) per run; the mock as a user starts it (fast
profile, clock running), limits and the balance lifted through the control API (which every
worker shares through the store). APIXO's submit and status, wrk -t1 -c32. Beside the rates, the
round trips to Redis one submit and one status make, counted in-process on the same app: a figure
the machine's load does not move.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis
from veomock.contracts import load_all
from veomock.mocks import build_app, create_state

from benchmarks.http import KEY, _prepare, _wrk, status_path, submit_request
from benchmarks.procs import free_port, serve_command, start, stop
from tests.redis_server import redis_server

__all__ = ["main"]


def round_trips(url: str, provider: str, requests: int = 50) -> dict[str, float]:
    """Round trips to Redis per submit and per status (limits and balance lifted, as served)."""
    return asyncio.run(_round_trips(url, provider, requests))


async def _round_trips(url: str, provider: str, requests: int) -> dict[str, float]:
    redis.Redis.from_url(url).flushdb()
    state = create_state([provider], profile="fast", store=url)
    transport = httpx.ASGITransport(app=build_app(state))  # no lifespan: no background pass
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        contract = state.contracts[provider]
        lifted = {"provider": provider, "requests_per_minute": None, "concurrent_jobs": None}
        await client.post("/_veomock/limits", json=lifted)
        await client.post("/_veomock/balances", json={"key": KEY, "balance": 1e15, "provider": provider})
        path, headers, body = submit_request(contract)
        raw = json.dumps(body).encode()
        await client.post(path, content=raw, headers=headers)
        (job,) = (await client.get("/_veomock/jobs", params={"provider": provider, "key": KEY})).json()["jobs"]
        await client.post(f"/_veomock/jobs/{job['id']}", json={"state": "succeeded"})
        poll = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        status = status_path(contract, job["model"], job["id"])
        calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "submit": lambda: client.post(path, content=raw, headers=headers),
            "status": lambda: client.get(status, headers=poll),
        }
        out = {}
        for kind, call in calls.items():
            await call()  # the first poll of an ended job says so once; the rest is the steady state
            out[kind] = await _counted(call, requests) / requests
    return out


async def _counted(call: Callable[[], Awaitable[httpx.Response]], times: int) -> int:
    """How many commands (or pipelines) ``times`` calls send to Redis."""
    connection = redis.connection.Connection
    original = connection.send_packed_command
    sent = 0

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        original(self, command, check_health)

    connection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        for _ in range(times):
            assert (await call()).status_code < 300
    finally:
        connection.send_packed_command = original  # type: ignore[method-assign]
    return sent


def main(seconds: int = 4, warmup: int = 1, provider: str = "apixo") -> None:
    contracts = {provider: load_all()[provider]}
    print(f"{'workers':<9}{'case':<9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'load1':>7}")
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as url:
        trips = round_trips(url, provider)
        rates: dict[tuple[int, str], float] = {}
        for workers in (1, 2):
            redis.Redis.from_url(url).flushdb()
            port = free_port()
            flags = ("--store", url, "--workers", str(workers), "--provider", provider, "--log-level", "warning")
            proc, base = start(serve_command(port, *flags), port, "/_veomock/health")
            try:
                cases = [c for c in _prepare(base, contracts) if not c.bare]
                for case in cases:
                    _wrk(base + case.url, case, warmup, 32)
                    r = _wrk(base + case.url, case, seconds, 32)
                    kind = case.name.split()[-1]
                    rates[(workers, kind)] = r["rps"]
                    print(
                        f"{workers:<9}{kind:<9}{r['rps']:>8.0f}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
                        f"{r['errors']:>8.0f}{os.getloadavg()[0]:>7.2f}"
                    )
            finally:
                stop(proc)
    for kind in ("status", "submit"):
        print(f"{kind}: 2 workers over 1: {rates[(2, kind)] / rates[(1, kind)]:.2f}x", end="   ")
    print(f"({os.cpu_count()} cores, shared with wrk and redis-server)")
    print(f"round trips to Redis: submit {trips['submit']:.1f}, status {trips['status']:.1f} (counted, one worker)")


if __name__ == "__main__":
    main()

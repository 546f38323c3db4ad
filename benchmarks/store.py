"""The Redis store: ``veomock serve --store redis://...`` with one worker against two.

A fresh ``redis-server`` (loopback, no persistence) per run; the mock as a user starts it (fast
profile, clock running), limits and the balance lifted through the control API (which every
worker shares through the store). APIXO's submit and status, wrk -t1 -c32.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import redis
from veomock.contracts import load_all

from benchmarks.http import _prepare, _wrk
from benchmarks.procs import free_port, serve_command, start, stop
from tests.redis_server import redis_server

__all__ = ["main"]


def main(seconds: int = 4, warmup: int = 1, provider: str = "apixo") -> None:
    contracts = {provider: load_all()[provider]}
    print(f"{'workers':<9}{'case':<9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'load1':>7}")
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as url:
        rates: dict[tuple[int, str], float] = {}
        for workers in (1, 2):
            redis.Redis.from_url(url).flushdb()
            port = free_port()
            flags = ("--store", url, "--workers", str(workers), "--provider", provider, "--log-level", "warning")
            proc, base = start(serve_command(port, *flags), port, "/_veomock/health")
            try:
                cases = [c for c in _prepare(base, contracts) if c.baseline != c.name]
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


if __name__ == "__main__":
    main()

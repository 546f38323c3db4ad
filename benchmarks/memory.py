"""A million jobs: what one costs to submit as jobs pile up, and what they take in memory.

The mock runs in this process as ``veomock serve`` runs it (fast profile: its clock running at
60x; the start-up heap frozen out of the collector's sight), with limits and the balance lifted.
Each job is one documented submit sent straight to the ASGI app (no sockets), so every part of a
submit runs: parse, validate, price, balance, job, journal. The report gives the cost of a submit
per block of jobs (flat is the target), then moves the clock on until every job has finished,
reads a balance (which settles them all) and gives the process's resident memory.

    python -m benchmarks.memory [--jobs 1000000] [--provider apixo]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time

from veomock.mocks import create_state

from benchmarks.http import KEY
from benchmarks.inprocess import Submitter
from benchmarks.procs import ROOT

__all__ = ["main", "rss_bytes"]


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def _measure(jobs: int, provider: str, blocks: int) -> None:
    state = create_state([provider])
    submitter = Submitter(state, provider)
    gc.collect()
    gc.freeze()  # as veomock serve does
    before = rss_bytes()
    size = jobs // blocks
    print(f"{provider}: {jobs:,} submits in-process, clock at {state.clock.speed:g}x; CPU us per submit, per block")
    costs = []
    for block in range(blocks):
        start = time.process_time()
        for _ in range(size):
            status = await submitter.submit()
            if status != 200:
                raise RuntimeError(f"a submit was answered {status}")
        costs.append((time.process_time() - start) / size * 1e6)
        print(f"  jobs {block * size:>9,} - {(block + 1) * size:>9,}: {costs[-1]:6.1f} us")
    print(f"  last block over first: {costs[-1] / costs[0]:.2f}x")
    state.clock.advance(24 * 3600)
    state.runtime(provider).ledger.remaining(KEY, state.now())  # settles every job
    gc.collect()
    held = len(state.jobs)
    after = rss_bytes()
    finished = sum(1 for job in state.jobs.values() if job.terminal_at() is not None)
    print(
        f"  {held:,} jobs held ({finished:,} finished): RSS {after / 2**20:,.0f} MiB "
        f"({(after - before) / held:,.0f} bytes a job over the {before / 2**20:,.0f} MiB before); target < 1 GiB"
    )


def main(argv: list[str] | None = None) -> None:
    """Runs the measurement in a fresh process, so its resident memory is the jobs' alone."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--provider", default="apixo")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--here", action="store_true", help="measure in this process")
    args = parser.parse_args(argv if argv is not None else [])
    if args.here:
        asyncio.run(_measure(args.jobs, args.provider, args.blocks))
        return
    command = [sys.executable, "-m", "benchmarks.memory", "--here", "--jobs", str(args.jobs)]
    subprocess.run([*command, "--provider", args.provider, "--blocks", str(args.blocks)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main(sys.argv[1:])

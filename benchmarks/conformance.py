"""Conformance figures: a check's start-up, and scenarios per second in-process and as subprocesses.

Start-up is a fresh ``python`` that imports the command, loads a contract and builds its
catalogue, with the example requests already in the cache (the median of five). Throughput runs
each provider's reference client through its success, job-failure and transient scenarios: the
in-process adapter calls the client function, which waits on the suite's clock (and, for
comparison, the same function waiting through the clock URL as a program does); the subprocess
adapter starts it as a program, one scenario at a time and then ``-j`` at once (each on its own
mock, as its own tenant).
Beside the rate, the CPU that each scenario cost (runner, mock and client): on a shared machine
the rate follows the load, the CPU much less.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from veomock.conformance.protocol import Capabilities
from veomock.conformance.runner import Adapter, CommandAdapter, PythonAdapter, Runner, load_python
from veomock.conformance.scenarios import catalogue
from veomock.contracts import available, load

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("success", "job-failure", "transient")
STARTUP = (
    "import time; t, c = time.perf_counter(), time.process_time(); "
    "from veomock.conformance.cli import run_check; from veomock.conformance.scenarios import catalogue; "
    "from veomock.contracts import load; catalogue(load({provider!r})); "
    "print(time.perf_counter() - t, time.process_time() - c)"
)


def startup(provider: str, runs: int = 5) -> tuple[float, float]:
    """Median (wall, CPU) seconds from the interpreter's first import to a built catalogue; the
    first run fills the example cache."""
    command = [sys.executable, "-c", STARTUP.format(provider=provider)]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    walls, cpus = [], []
    for _ in range(runs):
        done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        wall, cpu = done.stdout.split()
        walls.append(float(wall))
        cpus.append(float(cpu))
    return statistics.median(walls), statistics.median(cpus)


def _cpu() -> float:
    """CPU seconds so far of this process (every thread) and of the clients it has waited for."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _adapter(provider: str, how: str) -> Adapter:
    """The reference client as a program, as a function that takes the suite's clock, or as a
    function that waits through the clock URL as a program does."""
    module = f"examples.clients.{provider}"
    if how == "program":
        return CommandAdapter([sys.executable, "-m", module], cwd=str(ROOT))
    generate = load_python(f"{module}:generate")
    if how == "clock":
        return PythonAdapter(generate, module)

    def by_url(job: dict[str, Any], env: Mapping[str, str]) -> Mapping[str, Any]:
        return generate(job, env)

    return PythonAdapter(by_url, module)


def _rate(provider: str, how: str, per_kind: int, jobs: int = 1) -> tuple[int, float, float]:
    """(scenarios, wall seconds, CPU seconds) of one provider's reference client."""
    contract = load(provider)
    chosen = [s for s in catalogue(contract, Capabilities()) if s.kind in KINDS and not s.variants]
    picked = [s for kind in KINDS for s in [x for x in chosen if x.kind == kind][:per_kind]]
    adapter = _adapter(provider, how)
    with Runner(provider, adapter, jobs=jobs) as runner:
        start, cpu = time.perf_counter(), _cpu()
        results = runner.run_all(picked)
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    assert all(not r.failures for r in results), f"{provider}: the reference client failed a check"
    return len(picked), seconds, cpu


def main(per_kind: int = 3) -> None:
    providers = sorted(available())
    print(f"{'check start-up, median of 5':<30}" + "".join(f"{p:>16}" for p in providers))
    figures = [startup(p) for p in providers]
    print(f"{'  seconds (wall / CPU)':<30}" + "".join(f"{f'{w:.3f} / {c:.3f}':>16}" for w, c in figures))
    jobs = max(2, os.cpu_count() or 2)
    print(f"{'adapter':<18}{'provider':<12}{'scenarios':>10}{'seconds':>9}{'per s':>8}{'CPU ms each':>13}")
    for name, how, j in (
        ("in-process", "clock", 1),
        ("  by clock URL", "url", 1),
        ("subprocess", "program", 1),
        (f"subprocess -j{jobs}", "program", jobs),
    ):
        total, spent, used = 0, 0.0, 0.0
        for provider in providers:
            count, seconds, cpu = _rate(provider, how, per_kind, j)
            total, spent, used = total + count, spent + seconds, used + cpu
            each = cpu / count * 1000
            print(f"{name:<18}{provider:<12}{count:>10}{seconds:>9.2f}{count / seconds:>8.1f}{each:>13.1f}")
        print(f"{'':<18}{'all':<12}{total:>10}{spent:>9.2f}{total / spent:>8.1f}{used / total * 1000:>13.1f}")
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores; CPU: the runner, its mock and the clients)")


if __name__ == "__main__":
    main()

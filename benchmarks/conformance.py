"""Conformance scenarios per second, for the in-process and the subprocess adapter.

Each provider's reference client runs its success, job-failure and transient scenarios; the
in-process adapter calls the client function, the subprocess adapter starts it as a program.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from veomock.conformance.protocol import Capabilities
from veomock.conformance.runner import CommandAdapter, PythonAdapter, Runner, load_python
from veomock.conformance.scenarios import catalogue
from veomock.contracts import available, load

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("success", "job-failure", "transient")


def _rate(provider: str, subprocess: bool, per_kind: int) -> tuple[int, float]:
    contract = load(provider)
    chosen = [s for s in catalogue(contract, Capabilities()) if s.kind in KINDS and not s.variants]
    picked = [s for kind in KINDS for s in [x for x in chosen if x.kind == kind][:per_kind]]
    module = f"examples.clients.{provider}"
    adapter = (
        CommandAdapter([sys.executable, "-m", module], cwd=str(ROOT))
        if subprocess
        else PythonAdapter(load_python(f"{module}:generate"), module)
    )
    with Runner(provider, adapter) as runner:
        start = time.perf_counter()
        results = runner.run_all(picked)
        seconds = time.perf_counter() - start
    assert all(not r.failures for r in results), f"{provider}: the reference client failed a check"
    return len(picked), seconds


def main(per_kind: int = 3) -> None:
    print(f"{'adapter':<12}{'provider':<12}{'scenarios':>10}{'seconds':>9}{'per s':>8}")
    for subprocess in (False, True):
        total, spent = 0, 0.0
        for provider in sorted(available()):
            count, seconds = _rate(provider, subprocess, per_kind)
            total, spent = total + count, spent + seconds
            name = "subprocess" if subprocess else "in-process"
            print(f"{name:<12}{provider:<12}{count:>10}{seconds:>9.2f}{count / seconds:>8.1f}")
        print(f"{'':<12}{'all':<12}{total:>10}{spent:>9.2f}{total / spent:>8.1f}")


if __name__ == "__main__":
    main()

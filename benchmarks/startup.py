"""Start-up to the first answer: ``veomock serve`` (all providers) against bare Starlette.

Each run starts the server process and polls it every 5 ms until it answers anything. The mock
runs with the contract cache warm (as on every start but the first), and cold (an empty cache
directory: the contracts are parsed and checked).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from benchmarks.procs import ROOT, bare_command, free_port, serve_command, stop, wait_for_answer

__all__ = ["first_answer", "main"]


def first_answer(command: Callable[[int], list[str]], env: dict[str, str] | None = None) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_answer(f"http://127.0.0.1:{port}", "/", proc)
        return time.perf_counter() - start
    finally:
        stop(proc)


def main(runs: int = 5) -> None:
    print(f"{'server':<34}{'median s':>9}{'min s':>7}   every run")
    with tempfile.TemporaryDirectory() as cold_dir:
        cold = {**os.environ, "VEOMOCK_CACHE_DIR": cold_dir}
        first_answer(serve_command)  # fills the default cache
        cases: list[tuple[str, Callable[[int], list[str]], Callable[[], dict[str, str] | None]]] = [
            ("bare Starlette", bare_command, lambda: None),
            ("veomock serve, contract cache warm", serve_command, lambda: None),
            ("veomock serve, contract cache cold", serve_command, lambda: _emptied(cold, cold_dir)),
        ]
        for name, command, env in cases:
            times = [first_answer(command, env()) for _ in range(runs)]
            every = " ".join(f"{t:.2f}" for t in times)
            print(f"{name:<34}{statistics.median(times):>9.2f}{min(times):>7.2f}   {every}")
    print("target: veomock serve (every provider) answers within 0.5 s")


def _emptied(env: dict[str, str], directory: str) -> dict[str, str]:
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    return env


if __name__ == "__main__":
    main()

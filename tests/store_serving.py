"""``veomock serve --store`` as processes of their own, for the tests that kill -9 a mock on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.helpers import ROOT
from tests.processes import free_port


def start(store: str, *flags: str) -> subprocess.Popen[str]:
    """Start ``veomock serve`` on ``store`` with a frozen clock; :func:`listening` waits for it."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "veomock.conformance.command",
            "serve",
            "--port",
            str(free_port()),
            "--store",
            store,
            *flags,
            "--speed",
            "0",
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers die with it
    )


def listening(proc: subprocess.Popen[str], workers: int = 1) -> str:
    """The base URL of ``proc`` once uvicorn listens and each worker is up (it says so: no polling)."""
    assert proc.stderr is not None
    base, started = None, 0
    for line in proc.stderr:
        if "Uvicorn running on" in line:
            base = line.split("Uvicorn running on ")[1].split()[0]
        started += "Application startup complete" in line
        if base and started == workers:
            return base
    raise AssertionError(f"veomock serve exited with {proc.wait()}")


def serve(store: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    proc = start(store, *flags)
    workers = int(flags[flags.index("--workers") + 1]) if "--workers" in flags else 1
    return proc, listening(proc, workers)


def kill(proc: subprocess.Popen[str]) -> None:
    """``kill -9`` of the whole process group: nothing gets to shut down."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.stderr is not None
    proc.stderr.close()

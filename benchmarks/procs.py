"""Server processes for the benchmarks: start one, wait for its first answer, read its CPU time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int, *extra: str) -> list[str]:
    """``veomock serve`` as a user starts it (fast profile, clock running), on ``port``."""
    return [sys.executable, "-m", "veomock.conformance.command", "serve", "--port", str(port), *extra]


def bare_command(port: int) -> list[str]:
    """The bare Starlette app under uvicorn, with the loop and parser ``veomock serve`` gets (auto)."""
    return [sys.executable, "-m", "uvicorn", "benchmarks.bare:app", "--port", str(port), "--log-level", "warning"]


def wait_for_answer(base: str, path: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    """Seconds until ``base + path`` gives any HTTP answer (polled every 5 ms)."""
    start = time.perf_counter()
    with httpx.Client(timeout=1.0) as client:
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before answering")
            try:
                client.get(base + path)
                return time.perf_counter() - start
            except httpx.TransportError:
                time.sleep(0.005)
    proc.kill()
    raise RuntimeError(f"{base}{path} gave no answer within {timeout} s")


def start(
    command: Sequence[str], port: int, probe: str = "/", env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server and wait until it answers; its output is discarded."""
    proc = subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for_answer(base, probe, proc)
    return proc, base


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` and its waited-for children, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # After the command name: state is field 3, so utime (14), stime (15), cutime (16), cstime (17).
    return sum(int(v) for v in fields[11:15]) / _TICK


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes) and its core count."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"

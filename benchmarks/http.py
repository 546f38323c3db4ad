"""Requests per second and p99 for submit and status, next to bare Starlette, in the same passes.

Each server runs in its own process with one uvicorn worker (uvloop, httptools); wrk loads it
from another process over loopback. Figures swing between runs on shared machines, so each pass
starts both servers afresh and measures all four cases, a ratio is taken within the pass, and the
report gives the medians over the passes (3 by default) next to every pass's ratio.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SUBMIT_BODY = {
    "request_type": "async",
    "input": {
        "mode": "fast",
        "prompt": "a cinematic flyover of a futuristic city at sunrise",
        "generationType": "TEXT_2_VIDEO",
        "aspect_ratio": "16:9",
    },
}
AUTH = "Bearer sk-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(app: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/", timeout=0.5)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def _wrk(url: str, seconds: int, connections: int, method: str = "GET", body: Any = None) -> dict[str, float]:
    script = (
        f'wrk.method = "{method}"\n'
        f'wrk.headers["Authorization"] = "{AUTH}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    if body is not None:
        script += f"wrk.body = {json.dumps(json.dumps(body))}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


CASES = ("bare GET", "bare POST", "mock status", "mock submit")
BASELINE = {"bare GET": "bare GET", "bare POST": "bare POST", "mock status": "bare GET", "mock submit": "bare POST"}


def run_pass(seconds: int = 5, connections: int = 32, warmup: int = 2) -> dict[str, dict[str, float]]:
    """One pass: fresh bare and mock servers, each case warmed up then measured once."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    results: dict[str, dict[str, float]] = {}
    bare, bare_url = _start("benchmarks.bare:app")
    mock, mock_url = _start("benchmarks.serve_mock:app")
    try:
        job = httpx.post(
            mock_url + "/api/v1/generateTask/veo-3-1", json=SUBMIT_BODY, headers={"Authorization": AUTH}
        ).json()["data"]["taskId"]
        urls = {
            "bare GET": (bare_url + "/status", "GET", None),
            "bare POST": (bare_url + "/submit", "POST", SUBMIT_BODY),
            "mock status": (f"{mock_url}/api/v1/statusTask/veo-3-1?taskId={job}", "GET", None),
            "mock submit": (mock_url + "/api/v1/generateTask/veo-3-1", "POST", SUBMIT_BODY),
        }
        for name in CASES:
            url, method, body = urls[name]
            _wrk(url, warmup, connections, method, body)
            results[name] = _wrk(url, seconds, connections, method, body)
    finally:
        for proc in (bare, mock):
            proc.terminate()
            proc.wait()
    for name, r in results.items():
        r["ratio"] = r["rps"] / results[BASELINE[name]]["rps"]
    return results


def run(seconds: int = 5, connections: int = 32, warmup: int = 2, passes: int = 3) -> list[dict[str, dict[str, float]]]:
    """``passes`` passes. On a shared 2-core machine one pass can swing by 20%, and the bare app
    swings more than the mock, so a ratio is taken within each pass and the report gives medians."""
    return [run_pass(seconds, connections, warmup) for _ in range(passes)]


def report(passes: list[dict[str, dict[str, float]]]) -> str:
    lines = [f"{'case':<14}{'req/s':>10}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}   ratio per pass"]
    for name in CASES:
        runs = [p[name] for p in passes]
        rps, p99 = statistics.median(r["rps"] for r in runs), statistics.median(r["p99_ms"] for r in runs)
        errors = sum(r["errors"] for r in runs)
        ratio = statistics.median(r["ratio"] for r in runs)
        each = " ".join(f"{r['ratio']:.2f}" for r in runs)
        lines.append(f"{name:<14}{rps:>10.0f}{p99:>9.2f}{errors:>9.0f}{ratio:>8.2f}   {each}")
    lines.append(f"medians of {len(passes)} passes; ratio: mock over bare in the same pass")
    lines.append("targets: mock status >= 0.70 of bare GET; mock submit (validated) >= 0.60 of bare POST")
    return "\n".join(lines)

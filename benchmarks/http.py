"""Requests per second and p99 for submit and status, next to bare Starlette, in one run.

Each server runs in its own process with one uvicorn worker (uvloop, httptools); wrk loads it
from another process over loopback. Figures swing between runs on shared machines, so the
report gives ratios to the bare Starlette app measured in the same run.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
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


def run(seconds: int = 5, connections: int = 32, warmup: int = 2) -> dict[str, dict[str, float]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    results: dict[str, dict[str, float]] = {}
    bare, bare_url = _start("benchmarks.bare:app")
    mock, mock_url = _start("benchmarks.serve_mock:app")
    try:
        job = httpx.post(
            mock_url + "/api/v1/generateTask/veo-3-1", json=SUBMIT_BODY, headers={"Authorization": AUTH}
        ).json()["data"]["taskId"]
        cases = [
            ("bare GET", bare_url + "/status", "GET", None),
            ("bare POST", bare_url + "/submit", "POST", SUBMIT_BODY),
            ("mock status", f"{mock_url}/api/v1/statusTask/veo-3-1?taskId={job}", "GET", None),
            ("mock submit", mock_url + "/api/v1/generateTask/veo-3-1", "POST", SUBMIT_BODY),
        ]
        for name, url, method, body in cases:
            _wrk(url, warmup, connections, method, body)
            results[name] = _wrk(url, seconds, connections, method, body)
    finally:
        for proc in (bare, mock):
            proc.terminate()
            proc.wait()
    return results


def report(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'case':<14}{'req/s':>10}{'p99 ms':>9}{'non-2xx':>9}{'ratio':>8}"]
    pairs = {"bare GET": "bare GET", "bare POST": "bare POST", "mock status": "bare GET", "mock submit": "bare POST"}
    for name, r in results.items():
        ratio = r["rps"] / results[pairs[name]]["rps"]
        lines.append(f"{name:<14}{r['rps']:>10.0f}{r['p99_ms']:>9.2f}{r['errors']:>9.0f}{ratio:>8.2f}")
    lines.append("targets: mock status >= 0.70 of bare GET; mock submit (validated) >= 0.60 of bare POST")
    return "\n".join(lines)

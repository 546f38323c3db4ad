"""Every provider's submit and status through ``veomock serve``, next to a bare Starlette app.

Like for like: the bare app answers static bytes without reading the body; the mock is
``veomock serve`` as a user starts it (fast profile, its clock running), with the rate limits and
the balance of the benchmark's key lifted through the control API, since the load is one key
hammering one route. Each server is one process (uvicorn, the loop and parser it picks: uvloop
and httptools); wrk loads it from another process over loopback. Each case gets a warm-up, then
one measurement: requests/s, p50 and p99 from wrk, and the server's CPU time per request from
``/proc/PID/stat``. Two calibration cases run the bare app with a few microseconds of busy work
per request: on a loopback benchmark, throughput falls off steeply with the first microseconds a
handler spends, and these show how far. The bare cases are measured first and again last, and their mean is the
baseline. The machine's load is read after each case: on a shared machine throughput swings
with it, CPU time per request much less.

A submit body is each provider's first documented request (fixtures/) for its first submit
operation; a status poll asks for a job of that model that has been put in ``succeeded``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import httpx
from veomock.contracts import Contract, load_all

from benchmarks.procs import ROOT, bare_command, cpu_seconds, free_port, serve_command, start, stop

KEY = "sk-bench"
# Microseconds of busy work in the bare app's calibration cases: what a handler may spend per
# request and still keep a ratio (on this machine, about 4 us for 0.7 and 8 us for 0.6).
WORK_US = (4, 8)
FIXTURES = ROOT / "fixtures"


@dataclass(frozen=True)
class Case:
    name: str
    url: str
    method: str
    headers: dict[str, str]
    body: bytes | None
    baseline: str  # the bare case it is compared with
    bare: bool = False  # served by the bare app (the baselines and the calibration), not the mock


def _auth(contract: Contract) -> dict[str, str]:
    auth = contract.auth
    return {auth.header: f"Bearer {KEY}" if auth.scheme == "bearer" else KEY}


def submit_request(contract: Contract) -> tuple[str, dict[str, str], Any]:
    """The first submit operation's path, and its first documented request without callbacks."""
    op = next(op for op in contract.operations if op.kind == "submit")
    for path in sorted((FIXTURES / contract.provider / "requests").glob("*.json")):
        text = path.read_text()
        data = json.loads(text)
        if data["operation"] == op.name and "webhook" not in text.lower() and "callback" not in text.lower():
            headers = {**data.get("headers", {}), "Content-Type": "application/json", **_auth(contract)}
            return op.path, headers, data["body"]
    raise ValueError(f"{contract.provider}: no request fixture for {op.name}")


def status_path(contract: Contract, model: str, job_id: str) -> str:
    """The status URL of ``job_id`` (its path and query, as the contract locates a job)."""
    op = next(op for op in contract.operations if op.kind == "status" and model in op.models)
    path, query = op.locate(job_id)
    return path + "".join(f"{'&' if i else '?'}{k}={v}" for i, (k, v) in enumerate(query.items()))


def _prepare(base: str, contracts: dict[str, Contract]) -> list[Case]:
    """Lift limits and balances, make one finished job per provider: the cases to measure."""
    bare = {"bare GET": ("/status", "GET", None), "bare POST": ("/submit", "POST", b"{}")}
    cases = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for name, contract in contracts.items():
            client.post(
                "/_veomock/limits", json={"provider": name, "requests_per_minute": None, "concurrent_jobs": None}
            )
            client.post("/_veomock/balances", json={"key": KEY, "balance": 1e15, "provider": name})
            path, headers, body = submit_request(contract)
            raw = json.dumps(body).encode()
            answer = client.post(path, content=raw, headers=headers)
            if answer.status_code >= 300:
                raise RuntimeError(f"{name}: the benchmark's submit was refused: {answer.status_code} {answer.text}")
            (job,) = client.get("/_veomock/jobs", params={"provider": name, "key": KEY}).json()["jobs"]
            client.post(f"/_veomock/jobs/{job['id']}", json={"state": "succeeded"})
            poll = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            cases.append(
                Case(f"{name} status", status_path(contract, job["model"], job["id"]), "GET", poll, None, "bare GET")
            )
            cases.append(Case(f"{name} submit", path, "POST", headers, raw, "bare POST"))
    calibration = [Case(f"bare GET +{us} us", f"/work/{us}", "GET", {}, None, "bare GET", True) for us in WORK_US]
    return [Case(n, p, m, {"Content-Type": "application/json"}, b, n, True) for n, (p, m, b) in bare.items()] + [
        *calibration,
        *cases,
    ]


def _wrk(url: str, case: Case, seconds: int, connections: int) -> dict[str, float]:
    script = f"wrk.method = {json.dumps(case.method)}\n"
    for name, value in case.headers.items():
        script += f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
    if case.body is not None:
        script += f"wrk.body = {json.dumps(case.body.decode())}\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def percentile(p: str) -> float:
        found = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        return float(found.group(1)) * scale[found.group(2)] if found else float("nan")

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _measure(
    proc: subprocess.Popen[bytes], url: str, case: Case, seconds: int, connections: int, warmup: int
) -> dict[str, float]:
    if warmup:
        _wrk(url, case, warmup, connections)
    before = cpu_seconds(proc.pid)
    result = _wrk(url, case, seconds, connections)
    result["cpu_us"] = (cpu_seconds(proc.pid) - before) * 1e6 / max(result["requests"], 1.0)
    result["load1"] = os.getloadavg()[0]
    return result


def run_pass(seconds: int = 5, connections: int = 32, warmup: int = 1) -> dict[str, dict[str, float]]:
    """One pass: fresh bare and mock servers; every case warmed up, then measured once."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does this)")
    contracts = load_all()
    bare_port, mock_port = free_port(), free_port()
    bare, bare_url = start(bare_command(bare_port), bare_port)
    mock, mock_url = start(serve_command(mock_port, "--log-level", "warning"), mock_port, "/_veomock/health")
    results: dict[str, dict[str, float]] = {}
    try:
        cases = _prepare(mock_url, contracts)
        bare_cases = [case for case in cases if case.baseline == case.name]
        for case in cases:
            proc, base = (bare, bare_url) if case.bare else (mock, mock_url)
            results[case.name] = _measure(proc, base + case.url, case, seconds, connections, warmup)
        for case in bare_cases:  # measured again at the end: the baseline is the mean of both
            again = _measure(bare, bare_url + case.url, case, seconds, connections, warmup)
            results[case.name] = {k: (v + again[k]) / 2 for k, v in results[case.name].items()}
    finally:
        stop(bare)
        stop(mock)
    for case in cases:
        r, b = results[case.name], results[case.baseline]
        r["ratio"] = r["rps"] / b["rps"]
        r["cpu_ratio"] = r["cpu_us"] / b["cpu_us"] if b["cpu_us"] else float("nan")
    return results


def run(seconds: int = 5, connections: int = 32, warmup: int = 1, passes: int = 1) -> list[dict[str, dict[str, float]]]:
    """``passes`` passes; with more than one, the report gives medians and every pass's ratio."""
    return [run_pass(seconds, connections, warmup) for _ in range(passes)]


def report(passes: list[dict[str, dict[str, float]]]) -> str:
    columns = (("req/s", 8), ("p50 ms", 8), ("p99 ms", 8), ("CPU us", 8), ("non-2xx", 8), ("ratio", 7), ("CPU x", 7))
    header = f"{'case':<19}" + "".join(f"{name:>{width}}" for name, width in columns) + f"{'load1':>7}"
    lines = [header + ("   ratio per pass" if len(passes) > 1 else "")]
    for name in passes[0]:
        runs = [p[name] for p in passes]
        med = {field: statistics.median(r[field] for r in runs) for field in runs[0]}
        errors = sum(r["errors"] for r in runs)
        line = (
            f"{name:<19}{med['rps']:>8.0f}{med['p50_ms']:>8.2f}{med['p99_ms']:>8.2f}{med['cpu_us']:>8.0f}"
            f"{errors:>8.0f}{med['ratio']:>7.2f}{med['cpu_ratio']:>7.2f}{med['load1']:>7.2f}"
        )
        if len(passes) > 1:
            line += "   " + " ".join(f"{r['ratio']:.2f}" for r in runs)
        lines.append(line)
    lines.append(
        "ratio: req/s over the bare app's in the same pass; CPU x: server CPU per request over the bare app's;"
    )
    lines.append("bare GET +N us: the bare app after N us of busy work per request (what any handler's work costs)")
    lines.append("targets: submit >= 0.60, status >= 0.70, p99 < 5 ms at 32 connections")
    return "\n".join(lines)


__all__ = ["Case", "report", "run", "run_pass", "status_path", "submit_request"]

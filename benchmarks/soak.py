"""Memory under a long mixed load: the RSS of a ``veomock serve`` process stays flat after warm-up.

The server runs as a user runs it (``veomock serve --speed 600 --max-jobs 2000``) with the
documented rate limits and balances lifted through the control API; a seeded client sends mixed
traffic (:mod:`benchmarks.traffic`) over loopback and reads the server's resident set size from
``/proc`` every ``every`` requests. Warm-up fills the journal (10,000 entries, about 64 MiB at most)
and the job store (2,000 jobs); past that, the figures should not climb.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.traffic import Call, Traffic, job_id
from benchmarks.wire import Answer, Connection, Dropped

__all__ = ["Server", "Soak", "main", "rss_mib", "soak"]


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """``veomock serve`` in a subprocess on a free loopback port, until the block ends."""

    def __init__(self, *flags: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.flags = flags
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "veomock.conformance.command", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*command, *self.flags, "--log-level", "info"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            raise RuntimeError(f"veomock serve exited with {self.proc.wait()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@dataclass
class Soak:
    """What a soak saw."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    dropped: int = 0  # connections closed or reset without an answer
    rss: list[tuple[int, float]] = field(default_factory=list)  # (requests sent, MiB)
    seconds: float = 0.0
    refused_targets: int = 0
    server_errors: list[str] = field(default_factory=list)  # a few 5xx answers, to read
    off_shape: int = 0  # answers not in their operation's documented shape (when shapes are checked)
    off_shape_examples: list[str] = field(default_factory=list)


async def prepare(connection: Connection, traffic: Traffic) -> None:
    """Lift the documented rate limits and balances: the soak measures holding, not refusing."""

    async def post(path: str, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        answer = await connection.request("POST", path, {"content-type": "application/json"}, body)
        assert answer.status < 300, answer.text

    for provider in traffic.contracts:
        await post("/_veomock/limits", {"provider": provider, "requests_per_minute": None, "concurrent_jobs": None})
        for key in traffic.keys:
            await post("/_veomock/balances", {"key": key, "balance": 1e12, "provider": provider})


async def soak(
    server: Server, requests: int, every: int, concurrency: int = 16, seed: int = 0, shapes: Any = None
) -> Soak:
    """Send ``requests`` mixed requests; ``shapes`` (a ``benchmarks.fuzz.Shapes``) checks every answer."""
    traffic = Traffic(list(_providers()), seed=seed)
    result = Soak()
    jobs: dict[str, list[Any]] = {}
    connections = [Connection("127.0.0.1", server.port) for _ in range(concurrency)]
    await prepare(connections[0], traffic)
    result.rss.append((0, rss_mib(server.proc.pid)))
    queue: asyncio.Queue[tuple[str, Call] | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.perf_counter()

    async def worker(connection: Connection) -> None:
        while (item := await queue.get()) is not None:
            provider, call = item
            await _send(connection, traffic, provider, call, jobs, result, shapes)

    workers = [asyncio.create_task(worker(c)) for c in connections]
    for i in range(1, requests + 1):
        await queue.put(traffic.draw(jobs))
        if i % every == 0:
            result.rss.append((i, rss_mib(server.proc.pid)))
    for _ in workers:
        await queue.put(None)
    await asyncio.gather(*workers)
    result.seconds = time.perf_counter() - started
    result.rss.append((requests, rss_mib(server.proc.pid)))
    for connection in connections:
        await connection.close()
    return result


async def _send(
    connection: Connection,
    traffic: Traffic,
    provider: str,
    call: Call,
    jobs: dict[str, list[Any]],
    result: Soak,
    shapes: Any = None,
) -> None:
    result.sent += 1
    result.kinds[call.kind] += 1
    try:
        response = await connection.request(call.method, call.path, call.headers, call.body, call.params)
    except Dropped:
        result.dropped += 1
        return
    result.statuses[response.status] += 1
    if shapes is not None and (problem := shapes.problem(provider, call.operation, response.status, response.body)):
        result.off_shape += 1
        if len(result.off_shape_examples) < 5:
            result.off_shape_examples.append(problem)
    if response.status >= 500 and len(result.server_errors) < 5:
        result.server_errors.append(f"{call.method} {call.path} -> {response.status} {response.text[:200]}")
    if call.kind == "target" and 400 <= response.status < 500:
        result.refused_targets += 1
    if call.kind == "submit" and call.submit is not None and response.status < 300:
        found = job_id(traffic.contracts[provider], _json(response))
        if found:
            known = jobs.setdefault(provider, [])
            known.append((call.submit, found, _key(traffic, provider, call)))
            del known[:-200]  # poll recent jobs; older ones may be evicted (--max-jobs)


def _json(response: Answer) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _key(traffic: Traffic, provider: str, call: Call) -> str:
    header = call.headers[traffic.contracts[provider].auth.header]
    return header.split()[-1]


def _providers() -> list[str]:
    from veomock.contracts import available

    return list(available())


def report(result: Soak) -> str:
    lines = [f"{result.sent} requests in {result.seconds:.1f} s ({result.sent / max(result.seconds, 1e-9):.0f}/s)"]
    lines.append("  requests sent   RSS MiB")
    lines += [f"  {sent:>13,}   {mib:7.1f}" for sent, mib in result.rss]
    warm = [mib for sent, mib in result.rss if sent >= result.sent // 2]
    if len(warm) >= 2:
        lines.append(f"  second half: {min(warm):.1f} to {max(warm):.1f} MiB (spread {max(warm) - min(warm):.1f})")
    fivexx = sum(n for s, n in result.statuses.items() if s >= 500)
    lines.append(f"  5xx answers: {fivexx}; dropped connections: {result.dropped}")
    lines.append(f"  callback targets beyond loopback refused: {result.refused_targets} of {result.kinds['target']}")
    lines.append(f"  statuses: {dict(sorted(result.statuses.items()))}")
    lines += [f"  5xx: {text}" for text in result.server_errors]
    lines += [f"  off shape: {text}" for text in result.off_shape_examples]
    return "\n".join(lines)


def main(requests: int | None = None, every: int | None = None) -> None:
    requests = requests or int(os.environ.get("VEOMOCK_SOAK_REQUESTS", "40000"))
    every = every or max(requests // 8, 1)
    with Server("--speed", "600", "--max-jobs", "2000") as server:
        result = asyncio.run(soak(server, requests, every))
    print(f"soak: veomock serve --speed 600 --max-jobs 2000, mixed traffic, {len(_providers())} providers")
    print(report(result))


if __name__ == "__main__":
    main()

"""Webhook delivery under load: N concurrent jobs with callbacks to one local receiver.

The receiver fails the first attempt of a given fraction of the jobs, so the retry schedule does
real work. Everything runs in one process on 127.0.0.1. ``delivered`` counts jobs whose callback
was answered with success at least once, ``lost`` the jobs never delivered, ``duplicated`` the
jobs delivered successfully more than once. With ``speed=0`` (the default) the clock is frozen
and driven by hand: submit, jump to the next due time, ``run_due``, repeat; ``seconds`` is then
pure delivery time. With ``speed > 0`` the clock runs and the background deliverer does the work.

    python -m benchmarks.webhooks --jobs 1000 --fail-first 0.5 [--speed 600] [--provider NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from veomock.contracts import Contract
from veomock.contracts.model import WebhookChannel
from veomock.mocks import Clock, build_app, create_state
from veomock.mocks.receiver import Received, Receiver

__all__ = ["deliver_many", "main"]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
START = 1_767_965_610.0


def _where(expr: Any) -> tuple[str, str]:
    """``{{ header.x-webhook-url | default('') }}`` -> ("header", "x-webhook-url")."""
    root, _, name = str(expr.source).strip("{} ").split("|")[0].strip().partition(".")
    return root, name


def _name(expr: Any) -> str:
    return _where(expr)[1].lower()


def _place(target: dict[str, Any], expr: Any, value: Any) -> None:
    root, name = _where(expr)
    target.setdefault(root, {})[name] = value


def _request(contract: Contract, channel: WebhookChannel, url: str) -> tuple[Any, dict[str, Any]]:
    """A documented submit (from fixtures/) for a model the channel serves, calling back to ``url``."""
    ops = {op.name: op for op in contract.operations}
    for path in sorted((FIXTURES / contract.provider / "requests").glob("*.json")):
        data = json.loads(path.read_text())
        op = ops[data["operation"]]
        if op.kind != "submit" or (channel.models and not set(channel.models) & set(op.models)):
            continue
        names = {
            _name(e)
            for c in contract.webhook_channels
            for e in (c.url_from, c.mode_from, c.filter_from, c.when_from)
            if e is not None
        }
        body = {k: v for k, v in copy.deepcopy(data["body"]).items() if k.lower() not in names}
        headers = {k: v for k, v in data.get("headers", {}).items() if k.lower() not in names}
        parts: dict[str, Any] = {"body": body, "header": headers}
        _place(parts, channel.url_from, url)
        if channel.when_from is not None:
            _place(parts, channel.when_from, channel.when_in[0])
        return op, parts
    raise ValueError(f"{contract.provider} has no request fixture for channel {channel.name}")


async def deliver_many(
    n_jobs: int = 1000,
    fail_first_fraction: float = 0.5,
    *,
    provider: str = "apixo",
    speed: float = 0.0,
    deadline: float = 300.0,
) -> dict[str, Any]:
    """Run ``n_jobs`` jobs with callbacks; count delivered, lost and duplicated callbacks."""
    state = create_state([provider], seed=0, clock=Clock(speed=speed, start=START), allow_http_webhooks=True)
    contract = state.contracts[provider]
    channel, rules = contract.webhook_channels[0], contract.webhook_delivery
    assert rules is not None, f"{provider} declares no webhook delivery"
    first_seen: dict[str, int] = {}

    def answer(got: Received) -> int:
        if got.path in first_seen:
            return 200
        k = first_seen[got.path] = len(first_seen)
        return 500 if math.floor((k + 1) * fail_first_fraction) > math.floor(k * fail_first_fraction) else 200

    async with (
        Receiver(answer) as hook,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(state)), base_url="http://127.0.0.1:8000"
        ) as client,
    ):
        auth = contract.auth

        async def submit(i: int) -> None:
            op, parts = _request(contract, channel, hook.url(f"/job/{i}"))
            key = f"sk-bench-{i:05d}"
            headers = {**parts["header"], auth.header: f"Bearer {key}" if auth.scheme == "bearer" else key}
            response = await client.request(
                op.method, op.path, json=parts["body"], headers=headers, params=parts.get("query")
            )
            if response.status_code != contract.submit.status:
                raise RuntimeError(f"submit {i} failed: {response.status_code} {response.text}")

        hooks = state.webhooks
        began = time.perf_counter()
        if speed > 0:
            async with hooks.lifespan():
                await asyncio.gather(*(submit(i) for i in range(n_jobs)))
                while not hooks.idle() and time.perf_counter() - began < deadline:
                    await asyncio.sleep(0.01)  # a benchmark's progress check, not a test's synchronisation
            submit_seconds = None
        else:
            await asyncio.gather(*(submit(i) for i in range(n_jobs)))
            submit_seconds = time.perf_counter() - began
            began = time.perf_counter()
            ends = [job.terminal_at() or 0.0 for job in state.jobs.values()]
            # Every job done, so every first attempt is due at once; then step from one due time to the next.
            state.clock.advance(max(0.0, max(ends, default=0.0) - state.now()))
            while not hooks.idle():
                due = hooks.next_due()
                if due is None:
                    break
                if due > state.now():
                    state.clock.advance(due - state.now())
                await hooks.run_due()
        seconds = time.perf_counter() - began
        ok = Counter(r.path for r in hook.received if r.answered is not None and rules.succeeded(r.answered))
    delivered = sum(1 for i in range(n_jobs) if ok[f"/job/{i}"] >= 1)
    attempts = hooks.counts["attempts"]
    return {
        "provider": provider,
        "jobs": n_jobs,
        "fail_first_fraction": fail_first_fraction,
        "clock_speed": speed,
        "delivered": delivered,
        "lost": n_jobs - delivered,
        "duplicated": sum(1 for n in ok.values() if n > 1),
        "attempts": attempts,
        "gave_up": hooks.counts["gave_up"],
        "seconds": round(seconds, 3),
        "attempts_per_second": round(attempts / seconds, 1) if seconds else None,
        "submit_seconds": round(submit_seconds, 3) if submit_seconds is not None else None,
    }


def report(result: dict[str, Any]) -> str:
    speed = result["clock_speed"]
    clock = f"clock at {speed:g}x" if speed else "frozen clock, driven by hand"
    return (
        f"{result['jobs']} jobs on {result['provider']} ({clock}), receiver failing "
        f"{result['fail_first_fraction']:.0%} of first attempts: delivered {result['delivered']} / "
        f"lost {result['lost']} / duplicated {result['duplicated']}; {result['attempts']} attempts in "
        f"{result['seconds']} s ({result['attempts_per_second']} deliveries/s)"
    )


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhooks")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--fail-first", type=float, default=0.5, help="fraction of first attempts to fail")
    parser.add_argument("--provider", default="apixo")
    parser.add_argument("--speed", type=float, default=0.0, help="0: a frozen clock driven by hand")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv if argv is not None else [])
    result = await deliver_many(args.jobs, args.fail_first, provider=args.provider, speed=args.speed)
    print(json.dumps(result) if args.json else report(result))
    return result


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))

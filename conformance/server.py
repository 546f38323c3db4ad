"""The mock as the suite runs it: a real socket on 127.0.0.1, a recorder, and the scenario driver.

:class:`Harness` wraps the generic mock app (``mocks.build_app``) in one ASGI layer that

- records every exchange (request headers and body, response status, headers and body) next to
  the mock's own journal entry, so checks can read what went over the wire;
- applies the scenario: the planned timeline and outcome of the job the client creates, webhook
  policies, and fault rules (``{"operation", "times", "action": {"error", "retry_after"}}``,
  the JSON shape of mock scenario rules) answered in the provider's own error envelope;
- runs due webhook deliveries after every clock advance (virtual time: the mock's clock is
  frozen and moves only when the client waits, through ``POST /_veomock/clock``);
- keeps a client that never waits from spinning forever: past a budget of requests without a
  clock advance, each request moves provider time on by one poll interval.

:class:`ServerThread` serves any ASGI app with uvicorn on a socket bound before the thread
starts, so clients can connect at once (the kernel queues them) with no readiness polling.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.routing import compile_path

from contracts import Contract, Operation
from mocks import CONTROL_PREFIX, MockState, build_app, create_state
from mocks.clock import Clock
from mocks.lifecycle import Job, Outcome
from mocks.responses import error_response, resolve_error

__all__ = ["Exchange", "Harness", "ServerThread"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: every scenario starts at the same provider time
SPIN_BUDGET = 40  # requests without a clock advance before the harness moves time itself
REQUEST_CAP = 3000  # requests in one scenario before the harness answers 503 to everything


@dataclass
class Exchange:
    """One request to the mock's provider routes and its response, with the mock's journal entry."""

    seq: int
    time: float  # provider time when the request arrived
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, else text, else None
    raw_body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: Any = None
    response_bytes: int = 0
    operation: str | None = None  # contract operation name, "media", or None (no route)
    kind: str | None = None  # submit, status, balance, media
    job: str | None = None
    state: str | None = None  # canonical state the response reported (status polls)
    injected: str | None = None  # the error name a fault rule answered with
    entry: dict[str, Any] | None = None  # the mock's journal entry

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "response_headers": self.response_headers,
            "response_body": self.response_body,
            "response_bytes": self.response_bytes,
            "operation": self.operation,
            "kind": self.kind,
            "job": self.job,
            "state": self.state,
            "injected": self.injected,
        }


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    if content_type.startswith("text/") or "json" in content_type or "xml" in content_type:
        return raw.decode("utf-8", "replace")
    return None


class _Rule:
    def __init__(self, rule: dict[str, Any]) -> None:
        self.operation = rule.get("operation")
        self.times = int(rule.get("times", 1 << 30))
        self.action = dict(rule["action"])
        self.match = dict(rule.get("match") or {})
        self.used = 0

    def applies(self, kind: str | None, name: str | None) -> bool:
        if self.used >= self.times:
            return False
        return self.operation is None or self.operation in (kind, name)


class Harness:
    """One mock (a provider with chosen variants) wrapped for the suite. See the module doc."""

    def __init__(self, provider: str, variants: dict[str, str] | None = None, seed: int = 0) -> None:
        self.provider = provider
        self.variants = dict(variants or {})
        self.clock = Clock(speed=0, start=START)
        self.state: MockState = create_state(
            [provider],
            seed=seed,
            clock=self.clock,
            variants={provider: self.variants} if self.variants else None,
            allow_http_webhooks=True,
        )
        self.contract: Contract = self.state.contracts[provider]
        self.app = build_app(self.state)
        self._routes = [
            (op, compile_path(op.path)[0]) for op in self.contract.operations
        ]
        self._media = compile_path(self.contract.media_path)[0]
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self.begin({})

    # -- scenario --------------------------------------------------------------------------------

    def begin(self, plan: dict[str, Any]) -> None:
        """Reset the mock and arm a plan: ``timing`` (queued, running), ``outcome`` (state, code),
        ``rules`` (fault rules), ``webhook`` (a delivery policy action)."""
        self.state.reset()
        self.exchanges = []
        self.plan = plan
        self.rules = [_Rule(r) for r in plan.get("rules", [])]
        self.spin = 0
        self.started_at = self.state.now()
        self.jobs: list[Job] = []

    def _arm_job(self, job: Job) -> None:
        plan = self.plan
        created = job.created_at
        outcome = job.outcome
        wanted = plan.get("outcome")
        if wanted:
            state = wanted.get("state", "succeeded")
            code = wanted.get("code")
            message = None
            if code is not None:
                failure = self.contract.failure(code)
                message = failure.message if failure else None
            outcome = Outcome(state, code, message)
        if "timing" in plan:
            queued, running = plan["timing"]
            job.timeline = [(created, "queued"), (created + queued, "running"), (created + queued + running, outcome.state)]
        else:
            job.timeline = [*job.timeline[:-1], (job.timeline[-1][0], outcome.state)]
        job.outcome = outcome
        if plan.get("webhook"):
            from mocks.webhooks import Policy

            self.state.webhooks.set_policy(Policy.from_action(plan["webhook"]), job=job.id)
        self.jobs.append(job)

    # -- ASGI ------------------------------------------------------------------------------------

    def _classify(self, method: str, path: str, query: dict[str, str]) -> tuple[Operation | None, str | None]:
        for op, regex in self._routes:
            match = regex.match(path)
            if match and op.method == method:
                job_id = None
                if op.id_from is not None:
                    value = op.id_from.render({"path": match.groupdict(), "query": query})
                    job_id = None if value is None else str(value)
                return op, job_id
        return None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            if path == f"{CONTROL_PREFIX}/clock" and scope["method"] == "POST":
                self.spin = 0
                await self.state.webhooks.run_due()
            return
        await self._provider_call(scope, receive, send)

    async def _provider_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query_text = scope.get("query_string", b"").decode("latin-1")
        query = dict(parse_qsl(query_text))
        method, path = scope["method"], scope["path"]
        self.spin += 1
        if self.spin > SPIN_BUDGET:
            interval = self.contract.poll_interval or 1.0
            self.clock.advance(max(1.0, interval))
            await self.state.webhooks.run_due()
        op, job_id = self._classify(method, path, query)
        exchange = Exchange(
            seq=len(self.exchanges),
            time=self.state.now(),
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=_decode(raw, headers.get("content-type", "application/json")),
            raw_body=raw,
            operation=op.name if op else ("media" if self._media.match(path) else None),
            kind=op.kind if op else ("media" if self._media.match(path) else None),
            job=job_id,
        )
        self.exchanges.append(exchange)
        if len(self.exchanges) > REQUEST_CAP:
            await self._answer(exchange, send, 503, {"content-type": "text/plain"}, b"conformance: request cap")
            return
        rule = next((r for r in self.rules if r.applies(exchange.kind, exchange.operation)), None)
        if rule is not None and "error" in rule.action:
            rule.used += 1
            await self._inject(exchange, rule.action, send)
            return
        before = len(self.state.journal)

        async def replay() -> Message:
            return {"type": "http.request", "body": raw, "more_body": False}

        captured: dict[str, Any] = {"status": 0, "headers": {}, "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, capture)
        body = b"".join(captured["body"])
        exchange.status = captured["status"]
        exchange.response_headers = captured["headers"]
        exchange.response_bytes = len(body)
        exchange.response_body = _decode(body, exchange.response_headers.get("content-type", ""))
        entries = list(self.state.journal)[before:]
        inbound = [e for e in entries if e.get("direction") == "inbound"]
        if inbound:
            exchange.entry = inbound[0]
            exchange.job = exchange.job or inbound[0].get("job")
            exchange.state = inbound[0].get("state")
        if exchange.kind == "submit" and exchange.job:
            try:
                job = self.state.job(self.provider, exchange.job)
            except KeyError:
                return
            self._arm_job(job)

    async def _inject(self, exchange: Exchange, action: dict[str, Any], send: Send) -> None:
        name = str(action["error"])
        spec = resolve_error(self.contract, name)
        retry_after = action.get("retry_after")
        ctx = {"retry_after": retry_after if retry_after is not None else 1}
        response = error_response(self.contract, name, None, ctx)
        headers = {k.lower(): v for k, v in response.headers.items()}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        else:
            headers.pop("retry-after", None)
        exchange.injected = spec.name
        self.state.record(
            {
                "direction": "inbound",
                "provider": self.provider,
                "operation": exchange.operation,
                "method": exchange.method,
                "path": exchange.path,
                "status": spec.status,
                "key": None,
                "injected": spec.name,
            }
        )
        exchange.entry = self.state.journal[-1]
        await self._answer(exchange, send, spec.status, headers, bytes(response.body))

    async def _answer(self, exchange: Exchange, send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
        headers = {**headers, "content-length": str(len(body))}
        exchange.status = status
        exchange.response_headers = headers
        exchange.response_bytes = len(body)
        exchange.response_body = _decode(body, headers.get("content-type", ""))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _Switch:
    """The ASGI app a server runs: forwards to whichever harness is current."""

    def __init__(self) -> None:
        self.current: Harness | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.current is None:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"no scenario running"})
            return
        await self.current(scope, receive, send)


class ServerThread:
    """Uvicorn on 127.0.0.1 (port 0: the kernel picks), in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.switch = _Switch()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(self.switch, log_level="error", access_log=False, lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="veomock-conformance", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.server.serve(sockets=[self.sock]))
        finally:
            loop.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use(self, harness: Harness | None) -> None:
        self.switch.current = harness

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


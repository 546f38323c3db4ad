"""The mock as the suite runs it: a real socket on 127.0.0.1, virtual time, and the journal.

:class:`Harness` is one mock (``mocks.build_app`` for a provider and its variants) in one thin
ASGI layer. A scenario is armed through the mock's own scenario rules (``state.scenarios``):
fault rules first, then how the job ends, how long it takes and how its webhooks are delivered.
In exact mode (the default) time is virtual: the mock's clock is frozen and moves only when the
client waits, through ``POST /_veomock/clock`` (or, in-process, :meth:`Harness.wait`), after which
the layer runs the webhook deliveries that fell due. A client that never waits would spin forever
on a frozen clock, so past a budget of requests without a clock advance each request moves
provider time on by one poll interval. In real-time mode (``begin(plan, speed=X)``) the clock
runs X times faster than real time while the client runs, webhooks are delivered in the
background as ``veomock serve`` does, and :meth:`Harness.end` freezes the clock again for grading.
Checks read what happened from the mock's journal (:meth:`Harness.exchanges`).

The harness is served by ``mocks.serving.ServerThread``: uvicorn on a socket bound before the
thread starts, so clients can connect at once (the kernel queues them) with no readiness polling.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from veomock.contracts import Contract
from veomock.mocks import CONTROL_PREFIX, MockState, build_app, create_state
from veomock.mocks.clock import Clock, check_seconds
from veomock.mocks.lifecycle import Job
from veomock.mocks.serving import ServerThread

__all__ = ["Exchange", "Harness", "ServerThread"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: every scenario starts at the same provider time
SPIN_BUDGET = 40  # requests without a clock advance before the harness moves time itself
REQUEST_CAP = 3000  # requests in one scenario before the harness answers 503 to everything
# Real seconds a hung answer holds the connection before the mock drops it (a reset). A client's
# own timeout is seconds or more, so it sees the same dropped connection at any cap this short;
# the cap is the scenario's only wait, and a full catalogue holds a few dozen hangs.
HANG_CAP = 0.05


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
    fault: str | None = None  # the transport fault the answer met (reset, hang, truncate, malformed)
    entry: dict[str, Any] | None = None  # the mock's journal entry

    @property
    def failed(self) -> bool:
        """The client got no usable answer: an HTTP error, or a transport fault."""
        return self.status >= 400 or self.fault is not None

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
            "fault": self.fault,
        }


def _headers(pairs: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (pairs or [])}


def _parse(text: Any, content_type: str) -> Any:
    if text is None or text == "":
        return None
    if "json" in content_type:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, TypeError):
            pass
    return text


class Harness:
    """One mock (a provider with chosen variants) wrapped for the suite. See the module doc."""

    def __init__(
        self, provider: str, variants: dict[str, str] | None = None, seed: int = 0, webhook_ca: str | None = None
    ) -> None:
        self.provider = provider
        self.variants = dict(variants or {})
        self.clock = Clock(speed=0, start=START)
        self.state: MockState = create_state(
            [provider],
            seed=seed,
            clock=self.clock,
            variants={provider: self.variants} if self.variants else None,
            allow_http_webhooks=True,
            webhook_ca=webhook_ca,
        )
        self.contract: Contract = self.state.contracts[provider]
        self.app = build_app(self.state)
        self._kinds = {op.name: op.kind for op in self.contract.operations}
        self._kinds["media"] = "media"
        self.requests = 0
        self.speed = 0.0
        self._background: asyncio.Task[None] | None = None
        self.begin({})

    # -- scenario --------------------------------------------------------------------------------

    def begin(self, plan: dict[str, Any], speed: float = 0.0) -> None:
        """Reset the mock and arm a plan through its scenario rules: ``rules`` (faults, in order),
        then how the job ends (``outcome``), how long it takes (``timing``) and how its webhooks
        are delivered (``webhook``). ``speed`` > 0 runs the clock in real time at that factor
        (real-time mode) until :meth:`end`; 0 keeps it frozen (exact mode)."""
        self.state.reset()
        self.state.scenarios.clear()
        self.spin = 0
        self.requests = 0
        self.speed = float(speed)
        self.clock.set_speed(self.speed)
        # A hang holds the answer until the client gives up, or HANG_CAP real seconds pass.
        self.state.scenarios.hang_cap = HANG_CAP
        self.expire_media = bool(plan.get("expire_media"))
        for rule in plan.get("rules", []):
            self.state.scenarios.add({**rule, "provider": self.provider})
        action: dict[str, Any] = {}
        outcome = plan.get("outcome") or {}
        if outcome.get("code") is not None:
            action["fail"] = outcome["code"]
        else:  # explicit even for a success: a job built on an earlier one then needs none
            action["state"] = outcome.get("state", "succeeded")
        if "timing" in plan:
            queued, running = plan["timing"]
            action["timing"] = {"queued": float(queued), "running": float(running)}
        if action:
            self.state.scenarios.add({"provider": self.provider, "operation": "submit", "action": action})
        if plan.get("webhook"):
            self.state.scenarios.add({"provider": self.provider, "operation": "submit", "action": plan["webhook"]})

    def _expire_results(self) -> None:
        """Once a job has succeeded, move time past its results' expiry (before any download)."""
        after = self.contract.media_expires_after
        now = self.clock.now()
        for job in self.state.jobs.values():
            done = job.terminal_at()
            if after is not None and done is not None and done <= now and job.state_at(now) == "succeeded":
                self.clock.advance(done + after + 1.0 - now)
                self.expire_media = False
                return

    def end(self) -> None:
        """The client is done: freeze the clock, so that grading reads one instant."""
        self.clock.set_speed(0)

    def jobs(self) -> list[Job]:
        return list(self.state.jobs.values())

    def exchanges(self) -> list[Exchange]:
        """The provider calls in the mock's journal, as checks read them."""
        out: list[Exchange] = []
        for entry in self.state.journal:
            if entry.get("direction") != "inbound":
                continue
            request, response = entry.get("request") or {}, entry.get("response") or {}
            headers, answer = _headers(request.get("headers")), _headers(response.get("headers"))
            body_text = request.get("body")
            raw = body_text.encode() if isinstance(body_text, str) else b""
            reply = response.get("body")
            size = len(reply.encode()) if isinstance(reply, str) else int(answer.get("content-length", 0) or 0)
            operation = entry.get("operation")
            action = entry.get("action") or {}
            fault = entry.get("fault") or {}
            out.append(
                Exchange(
                    seq=len(out),
                    time=float(entry["time"]),
                    method=str(entry.get("method")),
                    path=str(entry.get("path")),
                    query=dict(parse_qsl(urlsplit(str(entry.get("url", ""))).query)),
                    headers=headers,
                    body=_parse(body_text, headers.get("content-type", "")),
                    raw_body=raw,
                    status=int(entry.get("status") or 0),
                    response_headers=answer,
                    response_body=_parse(reply, answer.get("content-type", "")),
                    response_bytes=size,
                    operation=operation,
                    kind=self._kinds.get(operation) if operation else None,
                    job=entry.get("job"),
                    state=entry.get("state"),
                    injected=action.get("error") if isinstance(action, dict) else None,
                    fault=fault.get("fault") if isinstance(fault, dict) else None,
                    entry=entry,
                )
            )
        return out

    def journal(self) -> list[dict[str, Any]]:
        return list(self.state.journal)

    async def _deliver(self) -> None:
        """Attempt the webhook deliveries now due (none to look at is the common, cheap case)."""
        if not self.state.webhooks.idle():
            await self.state.webhooks.run_due()

    async def wait(self, seconds: float) -> None:
        """The client waits ``seconds`` of provider time, as ``POST /_veomock/clock {"advance": s}``
        does: the clock moves on, then the callbacks that fell due are delivered. Run it on the
        server's loop. A wait the clock refuses (negative, NaN, past the year 9999) raises
        :class:`ValueError` and moves nothing."""
        self.clock.advance(check_seconds("a wait", seconds, self.clock.now()))
        self.spin = 0
        await self._deliver()

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == f"{CONTROL_PREFIX}/clock" and scope["method"] == "POST":
            # Hold the answer until the callbacks that fell due are delivered: when the client's
            # wait returns, everything that happened during it has happened.
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            self.spin = 0
            await self._deliver()
            for message in held:
                await send(message)
            return
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.speed > 0 and self._background is None:
            # Real time: deliver callbacks as they fall due, on the server's loop, for good.
            self._background = asyncio.get_running_loop().create_task(self.state.webhooks.run_forever())
        self.spin += 1
        self.requests += 1
        if self.requests > REQUEST_CAP:
            body = b"veomock conformance: request cap reached; the client never stopped"
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        if self.spin > SPIN_BUDGET and self.speed == 0:
            # A client that never waits would spin forever on a frozen clock: let time pass.
            self.clock.advance(max(1.0, self.contract.poll_interval or 1.0))
            await self._deliver()
        await self.app(scope, receive, send)
        if self.expire_media:
            self._expire_results()

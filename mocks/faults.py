"""What a request gets: scenarios (rules, magic inputs, chaos), rate limits and transport faults.

:func:`screen` runs in every provider handler once the request is understood (key, model,
prompt, job) and before it is answered. Its :class:`Verdict` says what to answer instead (a
contract error), how a new job ends (outcome, timing), and which transport fault strikes
whatever the handler answers: a delay, a hang until the client gives up (bounded by
``Scenarios.hang_cap``), a reset, a truncated body or a malformed one. The handler's response is
wrapped in a :class:`FaultyResponse`, which delays it or holds it back; the outermost ASGI layer,
:class:`TransportFaults`, then sends a held response with its fault on the server's own ``send``.
Transport faults strike after the mock has done its work, as a network fault after a real server
committed: a submit whose answer was reset still created its job.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from veomock.contracts import TERMINAL_STATES, Contract
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.limits import Refusal
from veomock.mocks.responses import error_response
from veomock.mocks.scenarios import Action, Facts, outcome_for

if TYPE_CHECKING:
    from veomock.mocks.state import MockState

__all__ = [
    "FAULT_KEY",
    "FaultyResponse",
    "MockApp",
    "TransportFault",
    "TransportFaults",
    "Verdict",
    "error_for",
    "screen",
    "with_fault",
]

FAULT_KEY = "veomock.fault"


@dataclass(frozen=True)
class TransportFault:
    delay: float | None
    fault: str | None
    cap: float


@dataclass(slots=True)
class Verdict:
    facts: Facts | None  # None: no scenario or magic input applied to this request
    response: Response | None = None
    outcome: Outcome | None = None
    timing: dict[str, tuple[float, float]] | None = None
    note: dict[str, Any] = field(default_factory=dict)

    def created(self, state: MockState, job: Job, callbacks: bool) -> None:
        """After a submit created ``job``: adversarial webhook delivery, if a scenario asks for it."""
        if self.facts is None or not callbacks:
            return
        action = state.scenarios.webhook_action(replace(self.facts, job=job.id))
        if action is not None:
            from veomock.mocks.webhooks import Policy

            state.webhooks.set_policy(Policy.from_action(action.to_json()), job=job.id)
            self.note["webhook"] = action.to_json()


def _retry_header(contract: Contract, response: Response, seconds: int, explicit: bool) -> Response:
    if explicit or (contract.rate_limits.get("retry_after") is not None and response.status_code == 429):
        response.headers.setdefault("Retry-After", str(seconds))
    return response


def error_for(contract: Contract, action: Action) -> Response:
    """The contract error an ``{"error": ...}`` action answers with (Retry-After as the contract says)."""
    declared = contract.rate_limits.get("retry_after")
    seconds = action.retry_after if action.retry_after is not None else declared
    ctx = {"retry_after": seconds} if seconds is not None else None
    response = error_response(contract, str(action.error), action.message, ctx)
    if seconds is None:
        return response
    return _retry_header(contract, response, seconds, action.retry_after is not None)


def _refuse(contract: Contract, refusal: Refusal) -> Response:
    response = error_response(contract, refusal.error, refusal.message, {"retry_after": refusal.retry_after})
    return _retry_header(contract, response, refusal.retry_after, False)


def _carry_out(
    state: MockState,
    contract: Contract,
    request: Request,
    verdict: Verdict,
    action: Action,
    job: Job | None,
    now: float,
) -> None:
    if action.error is not None:
        verdict.response = error_for(contract, action)
    elif action.fail is not None or action.state is not None:
        outcome = outcome_for(contract, action)
        if verdict.facts is not None and verdict.facts.kind == "submit":
            verdict.outcome = outcome
        elif job is not None and outcome is not None and job.state_at(now) not in TERMINAL_STATES:
            state.force(job, outcome.state, outcome, now)
    if action.timing is not None:
        verdict.timing = {k: (v, v) for k, v in action.timing.items()}
    if action.delay is not None or action.fault is not None:
        request.scope[FAULT_KEY] = TransportFault(action.delay, action.fault, state.scenarios.hang_cap)


def screen(
    state: MockState,
    contract: Contract,
    request: Request,
    kind: str,
    operation: str,
    key: str | None,
    now: float,
    *,
    prompt: str | None = None,
    model: str | None = None,
    job: Job | None = None,
) -> Verdict:
    """Consult scenarios, magic inputs, chaos and rate limits for one request answered at ``now``."""
    if job is not None:
        prompt = prompt if prompt is not None else job.params.get("prompt")
        model = model or job.model
    text = prompt if isinstance(prompt, str) else None
    scenarios = state.scenarios
    if not (scenarios.active or "veomock" in (text or "") or "veomock" in (key or "")):
        verdict = Verdict(None)  # the common case: only the limits can still refuse
    else:
        facts = Facts(contract.provider, kind, operation, key, text, model, job.id if job else None)
        verdict = Verdict(facts)
        decision = scenarios.consult(facts)
        if decision.problem is not None:
            verdict.response = error_response(contract, "invalid_request", decision.problem)
            verdict.note = {"scenario": "magic", "problem": decision.problem}
        elif decision.action is not None:
            verdict.note = {"scenario": decision.origin, "action": decision.action.to_json()}
            _carry_out(state, contract, request, verdict, decision.action, job, now)
    if verdict.response is None and key is not None and kind != "media":
        provider, limits = contract.provider, state.limits
        effective = limits.effective(provider, key)
        capped = kind == "submit" and effective.concurrent_jobs is not None
        if effective.requests_per_minute is None and not capped:
            return verdict  # no limit applies (the common case when limits are lifted)
        refusal = limits.admit(provider, key, now)
        if refusal is None and capped:
            ledger = state.runtime(provider).ledger
            running = ledger.open_count(key, now)
            refusal = limits.concurrency(provider, key, running, ledger.next_end(key, now), now)
        if refusal is not None:
            verdict.response = _refuse(contract, refusal)
            verdict.note = {**verdict.note, "limit": refusal.error}
    return verdict


def _transport(send: Send) -> asyncio.Transport | None:
    """The connection under a server's ``send`` (uvicorn exposes it, asyncio or uvloop), if any."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    needed = ("abort", "close", "get_extra_info")
    return transport if all(callable(getattr(transport, n, None)) for n in needed) else None


def _abort(transport: asyncio.Transport) -> None:
    """Close the connection with a TCP reset rather than an orderly shutdown."""
    with suppress(OSError, AttributeError, TypeError, ValueError):
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Held:
    """A response held back from the client so that a transport fault can be applied to it."""

    def __init__(self, fault: TransportFault) -> None:
        self.fault = fault
        self.start: Message | None = None
        self.body = bytearray()

    async def collect(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        elif message["type"] == "http.response.pathsend":
            self.body += await anyio.Path(message["path"]).read_bytes()

    async def _disconnected(self, receive: Receive, cap: float) -> bool:
        with anyio.move_on_after(cap):
            while (await receive())["type"] != "http.disconnect":
                pass
            return True
        return False

    async def finish(self, receive: Receive, send: Send) -> None:
        """Send what was held, faulted, on the server's own ``send`` (outside every other layer)."""
        if self.start is None:
            return
        kind, body, transport = self.fault.fault, bytes(self.body), _transport(send)
        if kind == "malformed":
            garbled = body[: len(body) // 2] or b"{"
            headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(garbled)).encode()))
            await send({**self.start, "headers": headers})
            await send({"type": "http.response.body", "body": garbled})
        elif kind == "truncate":
            await send(self.start)
            more = transport is not None
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": more})
            if transport is not None:
                transport.close()
                await self._disconnected(receive, 1.0)
        elif kind == "reset":
            if transport is None:
                raise ConnectionResetError("veomock: connection reset (transport fault)")
            _abort(transport)
            await self._disconnected(receive, 1.0)
        elif kind == "hang":
            if await self._disconnected(receive, self.fault.cap):
                return
            if transport is None:
                raise TimeoutError(f"veomock: hung for {self.fault.cap:g} s (transport fault)")
            _abort(transport)
            await self._disconnected(receive, 1.0)


class FaultyResponse(Response):
    """A handler's response under a transport fault: delayed, or held back for :class:`TransportFaults`."""

    def __init__(self, inner: Response, fault: TransportFault) -> None:
        self.inner, self.fault = inner, fault
        self.status_code, self.raw_headers, self.background = inner.status_code, inner.raw_headers, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fault.delay:
            await anyio.sleep(self.fault.delay)
        if self.fault.fault is None:
            await self.inner(scope, receive, send)
            return
        held = _Held(self.fault)
        await self.inner(scope, receive, held.collect)
        scope[_HELD_KEY] = held


_HELD_KEY = "veomock.held"


def with_fault(request: Request, response: Response) -> Response:
    """``response``, under the transport fault a scenario put on this request, if any."""
    fault = request.scope.get(FAULT_KEY)
    return response if fault is None else FaultyResponse(response, fault)


class TransportFaults:
    """Outermost ASGI layer: sends a held response with its fault, on the server's raw ``send``.

    Only a request a scenario faulted has a held response; every other request passes through
    untouched, with no wrapper around its messages.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            await self.finish(scope, receive, send)

    @staticmethod
    async def finish(scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response held for this request's fault, if one was held."""
        held = scope.get(_HELD_KEY)
        if held is not None:
            await held.finish(receive, send)


class MockApp(Starlette):
    """Starlette with :class:`TransportFaults` outside every other layer (it needs the raw send)."""

    def build_middleware_stack(self) -> ASGIApp:
        return TransportFaults(super().build_middleware_stack())

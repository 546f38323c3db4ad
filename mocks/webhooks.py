"""Webhook delivery on the mock clock: who asked for a callback, when it is due, every attempt.

At submit, :func:`requested` reads the contract's channels over the request (URL, mode, event
filter, models, ``when``) and refuses what the contract refuses: a plain-http URL on an
``https_only`` channel, or any webhook where the contract declares none (``unsupported``).
:meth:`Dispatcher.watch` then follows the job. A job's state is a function of its timeline and the
time, so nothing fires by itself: each :meth:`Dispatcher.run_due` turns the timeline entries that
now lie in the past into deliveries and attempts every delivery whose time has come, following
the contract's ``delivery`` (timeout, retry delays, success). The Starlette lifespan calls it every
few milliseconds while a clock runs; moving a clock on through the control API (or
``Control.clock``) calls it at once, and ``POST /_veomock/webhooks/flush`` on demand. Each job's
time is its key's clock (tenants may have their own). A retry is due ``retry_delays[n]`` provider
seconds after the attempt that failed, so advancing the clock by that much makes it due. Every
attempt lands in the journal.

With a shared :class:`Schedule` (the Redis store), watches, deliveries and policies live there
instead, from the submit on: whichever worker passes first turns a job's state changes into
deliveries and attempts them, each once across workers, and a worker (or the whole mock) may die
and start again without losing a callback to come.

Adversarial delivery comes from a :class:`Policy` set per job or per API key: through the control
API (``POST /_veomock/webhooks {"policy": {...}}``) or by a scenario rule, whose action
``{"webhook": "delay", "seconds": 30}`` becomes ``Policy.from_action(action)``; the rule engine
calls ``state.webhooks.set_policy(policy, job=job.id)`` (or ``key=``) when the rule matches.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import certifi
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from veomock.contracts import CANONICAL_STATES, TERMINAL_STATES, Contract
from veomock.contracts.model import WebhookChannel, WebhookDelivery
from veomock.mocks.hosts import Allowlist, is_loopback, parse_target
from veomock.mocks.jsontext import finite, json_text, loads
from veomock.mocks.lifecycle import Job

if TYPE_CHECKING:
    import httpx
    from veomock.mocks.state import MockState

__all__ = ["MODES", "Callback", "Dispatcher", "Policy", "Schedule", "WebhookRefused", "control_routes", "requested"]

MODES = ("duplicate", "reorder", "delay", "drop", "late")
DEFAULT_DELAY = 60.0  # provider seconds a "delay" policy holds a callback back when not told
EVENTS = {"terminal": frozenset(TERMINAL_STATES), "every_state": frozenset(CANONICAL_STATES)}


class WebhookRefused(Exception):
    """A submit the contract refuses because of its webhook: the error to answer, and why."""

    def __init__(self, error: str, message: str | None) -> None:
        super().__init__(message or error)
        self.error, self.message = error, message


@dataclass(frozen=True)
class Callback:
    """What one request asked for on one channel: where to post, at which canonical states."""

    channel: WebhookChannel
    url: str
    states: frozenset[str]


@dataclass(frozen=True)
class Policy:
    """Adversarial delivery: duplicate, reorder, delay (``seconds`` of provider time), drop, late."""

    mode: str
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown webhook policy {json_text(self.mode)}; use one of {', '.join(MODES)}")
        if finite("seconds", self.seconds) < 0:
            raise ValueError(f"a webhook delay cannot be negative, got {json_text(self.seconds)}")

    @classmethod
    def from_action(cls, action: Mapping[str, Any]) -> Policy:
        """``{"webhook": "delay", "seconds": 30}`` (a scenario rule's action) -> a policy.

        A delay without ``seconds`` holds each callback back for :data:`DEFAULT_DELAY`."""
        mode = action.get("webhook", action.get("mode"))
        default = DEFAULT_DELAY if mode == "delay" else 0.0
        return cls(mode, finite("seconds", action.get("seconds", default)))

    def to_json(self) -> dict[str, Any]:
        """The policy as the control API shows it and the shared schedule keeps it."""
        return {"mode": self.mode, "seconds": self.seconds}


def _label(channel_expr: Any) -> str:
    """``{{ header.x-webhook-url }}`` -> "the x-webhook-url header", for messages."""
    text = str(channel_expr.source).strip("{} ").split("|")[0].strip()
    root, _, name = text.partition(".")
    return {"header": f"the {name} header", "query": f"query parameter {name}"}.get(root, name or text)


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def requested(
    contract: Contract,
    model: str,
    ctx: Mapping[str, Any],
    allow_http: bool = False,
    targets: Allowlist | None = None,
) -> list[Callback]:
    """The callbacks a submit asks for; raises :class:`WebhookRefused` for what the contract refuses,
    and for a target ``targets`` (default: loopback only) does not allow."""
    targets = targets or Allowlist()
    unsupported = contract.webhook_unsupported
    if unsupported is not None and any(_present(expr.render(ctx)) for expr in unsupported.detect):
        raise WebhookRefused(unsupported.rejected, None)
    out = []
    for channel in contract.webhook_channels:
        if channel.models and model not in channel.models:
            continue
        if channel.when_from is not None and channel.when_from.render(ctx) not in channel.when_in:
            continue
        url = channel.url_from.render(ctx)
        if not isinstance(url, str) or not url.strip():
            continue  # absent, or a type error the request schema reports
        error, label = channel.rejected or "invalid_request", _label(channel.url_from)
        wanted = "https://" if channel.https_only else "http(s)://"
        try:
            target = parse_target(url.strip())
        except ValueError as exc:
            shown = json.dumps(url if len(url) <= 200 else url[:199] + "…", ensure_ascii=False)
            message = f"{label} must be an absolute {wanted} URL such as https://example.com/hook, not {shown}: {exc}"
            raise WebhookRefused(error, message) from None
        if channel.https_only and target.scheme == "http":
            local = is_loopback(target.host)
            if not (allow_http and local):
                hint = " (for a receiver on this machine, run veomock with --allow-http-webhooks)"
                hint = hint if local else ""
                message = f"{label} must be an https:// URL; plain http:// is rejected{hint}"
                raise WebhookRefused(error, message)
        events = channel.events
        if channel.mode_from is not None:
            mode = channel.mode_from.render(ctx)
            if mode not in channel.modes:
                known = ", ".join(channel.modes)
                message = f"{_label(channel.mode_from)} must be one of {known}, not {json_text(mode)}"
                raise WebhookRefused(error, message)
            events = channel.modes[mode]
        states = EVENTS[events]
        chosen = channel.filter_from.render(ctx) if channel.filter_from is not None else None
        if isinstance(chosen, list) and chosen:
            unknown = [name for name in chosen if name not in channel.filters]
            if unknown:
                known = ", ".join(channel.filters)
                message = f"{_label(channel.filter_from)} may hold {known}, not {json_text(unknown[0])}"
                raise WebhookRefused(error, message)
            states = frozenset(s for name in chosen for s in channel.filters[name])
        if not targets.allows(target):
            raise WebhookRefused(error, _not_allowed(label, target.authority))
        out.append(Callback(channel, url.strip(), states))
    return out


def _not_allowed(label: str, authority: str) -> str:
    allow = f'veomock serve --webhook-allow {authority}, or POST /_veomock/webhooks {{"allow": ["{authority}"]}}'
    return f"{label} points at {authority}; veomock calls back to loopback only unless told ({allow})"


class Schedule(Protocol):
    """Where watches and deliveries wait when several workers deliver them (the Redis store).
    Without one, each stays with the worker that scheduled it.

    A watch is a job's callback as a record: what it has turned into deliveries so far, due when
    its job next changes state. ``claim`` (deliveries) and ``claim_watches`` hand each due entry
    to one caller only, until ``lease`` provider seconds have passed: then it is due again, for
    anyone. ``commit`` lands a pass over a watch, the deliveries it made with it, only if no other
    worker has made that pass meanwhile; so each state change becomes its deliveries once."""

    def watch(self, key: str, entries: list[tuple[str, float, dict[str, Any]]]) -> None: ...
    def waiting(self) -> list[str]: ...  # the API keys with watches or deliveries waiting
    def claim(self, key: str, now: float, lease: float) -> list[tuple[str, dict[str, Any]]]: ...
    def claim_watches(self, key: str, now: float, lease: float) -> list[tuple[str, bytes, dict[str, Any]]]: ...
    def claim_due(
        self, key: str, now: float, lease: float
    ) -> tuple[list[tuple[str, bytes, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]: ...
    def commit(
        self,
        key: str,
        ident: str,
        claimed: bytes,
        record: dict[str, Any] | None,
        upcoming: float,
        deliveries: list[tuple[float, dict[str, Any]]],
        now: float,
    ) -> bool: ...
    def seen_at(self, key: str, ident: str) -> float | None: ...
    def mark(self, key: str, idents: list[str], what: str, now: float) -> None: ...  # "seen" or "poke"
    def entries(self, key: str) -> list[tuple[float, dict[str, Any]]]: ...
    def next_due(self) -> float | None: ...
    def retry(self, ident: str, key: str, due: float, payload: dict[str, Any]) -> None: ...
    def done(self, ident: str, key: str) -> None: ...
    def set_policy(self, name: str, policy: dict[str, Any] | None) -> None: ...
    def policy(self, *names: str) -> dict[str, Any] | None: ...
    def policies(self) -> dict[str, dict[str, Any]]: ...
    def count(self, names: list[str]) -> None: ...
    def counts(self) -> dict[str, int]: ...
    def forget(self, key: str) -> None: ...


def _outstanding(p: Mapping[str, Any], waiting_for_poll: bool) -> dict[str, Any]:
    """A delivery still to come, from its packed form (``Dispatcher._pack``), as
    :meth:`Dispatcher.outstanding` lists it."""
    return {
        "job": p["job"],
        "provider": p["provider"],
        "url": p["url"],
        "event": p["event"],
        "due": p["due"],
        "attempts": p["attempts"],
        "copy": p["copy"],
        "policy": p["policy"],
        "waiting_for_poll": waiting_for_poll,
    }


def watch_ident(provider: str, job: str, channel: str) -> str:
    """The name of a job's watch on one channel in a shared schedule."""
    return json.dumps(["w", provider, job, channel], separators=(",", ":"), ensure_ascii=False)


@dataclass
class _Batch:
    """What a pass over a shared watch made: deliveries to schedule, and drops to journal once it lands."""

    deliveries: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    dropped: list[_Delivery] = field(default_factory=list)


@dataclass(eq=False)
class _Delivery:
    seq: int
    watch: _Watch
    event: str  # the canonical state this callback reports
    at: float  # provider time the job entered that state
    body: Any
    content: bytes
    headers: dict[str, str]
    due: float
    copy: int = 1
    policy: str | None = None
    attempts: int = 0
    until_seen: bool = False  # "late": wait until a status poll has seen the terminal state
    outcome: str = "pending"  # then delivered, gave_up or dropped
    taken: list[int] = field(default_factory=list)  # attempts that timed out but were answered 2xx later


@dataclass(eq=False)
class _Watch:
    job: Job
    callback: Callback
    ctx: dict[str, Any]  # the submit request, as templates see it
    emitted: set[tuple[float, str]] = field(default_factory=set)
    pending: list[_Delivery] = field(default_factory=list)
    held: list[tuple[str, float]] = field(default_factory=list)  # "reorder": events kept back
    ended: bool = False
    busy: bool = False
    seen_terminal: float | None = None
    checked: tuple[Any, ...] = ()  # the timeline as last read, and the time of its next entry


@functools.lru_cache(maxsize=16)
def _trust(ca_file: str | None) -> ssl.SSLContext:
    """One TLS context per CA file for every dispatcher and client of the process: building one
    costs tens of milliseconds, and most mocks never deliver a callback."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


@dataclass
class _Session:
    client: httpx.AsyncClient
    gate: asyncio.Semaphore
    after_timeout: set[asyncio.Task[None]] = field(default_factory=set)  # attempts still awaited


class Dispatcher:
    """Delivers the callbacks of one :class:`~mocks.state.MockState`, on its clock."""

    def __init__(self, state: MockState, ca_file: str | None = None, concurrency: int = 64) -> None:
        self.state = state
        # Attempts in flight at once, and idle connections kept: httpx's pool slows down as it grows,
        # and about 64 gives the best throughput to one local receiver.
        self.concurrency = concurrency
        self.keepalive = 8
        # An attempt gets the contract's timeout in provider time, turned into real seconds at the
        # clock's speed: at least timeout_floor (receivers do not run on the mock's clock, and a
        # loaded machine may take seconds to answer), at most timeout_cap (also when frozen).
        self.timeout_cap = 30.0
        self.timeout_floor = 5.0
        # A timed-out attempt is still awaited this long (real seconds): if the receiver answers 2xx
        # after all, the journal says so, and flags the retries it then got as duplicates.
        self.answer_window = 60.0
        self.tick = 0.01  # real seconds between background passes while the clock runs
        self.ca_file = ca_file
        if ca_file:
            _trust(ca_file)  # a CA file that cannot be read is refused now, not at the first delivery
        self._background: tuple[asyncio.AbstractEventLoop, _Session] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # clients kept open for attempts still awaited
        # Where callbacks may go (loopback unless told): configuration, so a reset keeps it.
        self.targets = Allowlist()
        self._woken: set[asyncio.Task[int]] = set()  # runs started by wake() inside a running loop
        self.schedule: Schedule | None = None  # shared by workers, or None: deliveries stay here
        self._batch: _Batch | None = None  # while a pass over a shared watch runs
        self._observed: set[tuple[str, str, float]] = set()  # jobs whose end a poll here has reported
        self.reset()

    @property
    def verify(self) -> ssl.SSLContext:
        """The TLS context of every client, built at the first delivery (see :func:`_trust`)."""
        return _trust(self.ca_file)

    def reset(self) -> None:
        """Forget every watch, delivery and policy."""
        self._watches: list[_Watch] = []
        self._by_job: dict[tuple[str, str], list[_Watch]] = {}
        self._job_policies: dict[str, Policy] = {}
        self._key_policies: dict[str, Policy] = {}
        self._seq = 0
        self._observed = set()
        self.counts = {"delivered": 0, "gave_up": 0, "dropped": 0, "attempts": 0, "answered_late": 0}

    def forget(self, key: str) -> None:
        """Forget one API key's watches, deliveries and policies (a namespaced reset)."""
        gone = {id(w) for w in self._watches if w.job.key == key}
        self._watches = [w for w in self._watches if id(w) not in gone]
        for ident in [i for i, ws in self._by_job.items() if any(id(w) in gone for w in ws)]:
            self._job_policies.pop(ident[1], None)
            del self._by_job[ident]
        self._key_policies.pop(key, None)
        if self.schedule is not None:
            self.schedule.forget(key)

    # -- what the app calls ------------------------------------------------------------------

    def requested(self, contract: Contract, model: str, ctx: Mapping[str, Any]) -> list[Callback]:
        return requested(contract, model, ctx, allow_http=self.state.allow_http_webhooks, targets=self.targets)

    def watch(self, job: Job, callbacks: list[Callback], base_url: str, ctx: Mapping[str, Any]) -> None:
        """Follow ``job`` and post ``callbacks`` as its timeline unfolds."""
        request = {k: ctx.get(k) for k in ("body", "header", "query")}
        if self.schedule is not None:
            request["header"] = dict(request["header"] or {})  # a record of its own, as JSON
        watches = [_Watch(job, c, {**request, "path": {}, "request": {"base_url": base_url}}) for c in callbacks]
        if self.schedule is not None:
            entries = [
                (watch_ident(job.provider, job.id, w.callback.channel.name), job.created_at, self._pack_watch(w))
                for w in watches
            ]
            self.schedule.watch(job.key, entries)
            return
        for watch in watches:
            self._watches.append(watch)
            self._by_job.setdefault((job.provider, job.id), []).append(watch)

    def observed(self, job: Job, canonical: str, now: float) -> None:
        """A client's status poll saw ``job`` in ``canonical`` at ``now``; releases "late" callbacks."""
        if canonical not in TERMINAL_STATES:
            return
        if self.schedule is not None:
            ident = (job.provider, job.id, job.created_at)
            if ident not in self._observed and self.state.contracts[job.provider].webhook_channels:
                if len(self._observed) >= 100_000:  # bounded: forgetting one costs a round trip only
                    self._observed.clear()
                self._observed.add(ident)
                self.schedule.mark(job.key, self._idents(job), "seen", now)
            return
        if not self._by_job:  # no job asked for callbacks: nothing to release (the common poll)
            return
        for watch in self._by_job.get((job.provider, job.id), []):
            if watch.seen_terminal is None:
                watch.seen_terminal = now

    def touched(self, job: Job) -> None:
        """``job``'s timeline changed (a forced state): its shared watches look again at once."""
        if self.schedule is not None and self.state.contracts[job.provider].webhook_channels:
            self.schedule.mark(job.key, self._idents(job), "poke", 0.0)

    def _idents(self, job: Job) -> list[str]:
        channels = self.state.contracts[job.provider].webhook_channels
        return [watch_ident(job.provider, job.id, c.name) for c in channels]

    def set_policy(self, policy: Policy | None, *, job: str | None = None, key: str | None = None) -> None:
        """Deliver the callbacks of one job (or of every job of one API key) adversarially."""
        if (job is None) == (key is None):
            raise ValueError("name exactly one of job or key")
        table, name = (self._job_policies, job) if job is not None else (self._key_policies, key)
        assert name is not None
        if self.schedule is not None:
            shown = None if policy is None else policy.to_json()
            self.schedule.set_policy(f"{'job' if job is not None else 'key'}:{name}", shown)
            return
        if policy is None:
            table.pop(name, None)
        else:
            table[name] = policy

    def policies(self) -> dict[str, dict[str, dict[str, Any]]]:
        def show(table: dict[str, Policy]) -> dict[str, dict[str, Any]]:
            return {k: p.to_json() for k, p in table.items()}

        if self.schedule is not None:
            shared = sorted(self.schedule.policies().items())
            return {
                kind + "s": {name.partition(":")[2]: p for name, p in shared if name.startswith(kind + ":")}
                for kind in ("job", "key")
            }
        return {"jobs": show(self._job_policies), "keys": show(self._key_policies)}

    def outstanding(self) -> list[dict[str, Any]]:
        """Deliveries still to be attempted (or held back), for the control API and for tests:
        every state change that has come about on its job's clock, whether or not it is due yet."""
        if self.schedule is not None:
            return self._outstanding_shared()
        for w in self._watches:
            self._emit(w, self.state.now(w.job.key))
        return [
            _outstanding(self._pack(d), d.until_seen and d.watch.seen_terminal is None)
            for w in self._watches
            for d in w.pending
        ]

    def next_due(self) -> float | None:
        """When something is next due (a delivery, or a state change someone listens for), or None."""
        if self.schedule is not None:
            return self.schedule.next_due()
        times = []
        for w in self._watches:
            self._emit(w, self.state.now(w.job.key))
            times += [d.due for d in w.pending if not d.until_seen or w.seen_terminal is not None]
            if not w.ended and w.checked and w.checked[3] < float("inf"):
                times.append(w.checked[3])
        return min(times, default=None)

    def idle(self) -> bool:
        """No job still to reach a state someone listens for, and nothing left to deliver."""
        schedule_idle = self.schedule is None or not self.schedule.waiting()
        return schedule_idle and all(w.ended and not w.pending and not w.busy for w in self._watches)

    # -- scheduling ----------------------------------------------------------------------------

    def _policy(self, job: Job) -> Policy | None:
        if self.schedule is not None:
            shared = self.schedule.policy(f"job:{job.id}", f"key:{job.key}")
            return None if shared is None else Policy.from_action(shared)
        return self._job_policies.get(job.id) or self._key_policies.get(job.key)

    def _render(self, watch: _Watch, event: str, at: float) -> tuple[Any, bytes, dict[str, str]]:
        job = watch.job
        contract = self.state.contracts[job.provider]
        view = self.state.view(job, watch.ctx["request"]["base_url"], at=at)
        ctx = {**watch.ctx, "job": view}
        body = contract.status[event].body.render(ctx)
        content = body.encode() if isinstance(body, str) else bytes(JSONResponse(body).body)
        delivery = contract.webhook_delivery
        headers = {k: str(t.render(ctx)) for k, t in (delivery.headers if delivery else {}).items()}
        headers.update({k: str(t.render(ctx)) for k, t in watch.callback.channel.headers.items()})
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return body, content, headers

    def _schedule(self, watch: _Watch, event: str, at: float, due: float, policy: Policy | None) -> None:
        body, content, headers = self._render(watch, event, at)
        copies = 2 if policy and policy.mode == "duplicate" else 1
        for copy in range(1, copies + 1):
            self._seq += 1
            late = bool(policy and policy.mode == "late" and event in TERMINAL_STATES)
            mode = policy.mode if policy else None
            delivery = _Delivery(self._seq, watch, event, at, body, content, headers, due, copy, mode)
            delivery.until_seen = late
            batch = self._batch
            if policy and policy.mode == "drop":
                if batch is not None:  # journaled once the pass lands
                    batch.dropped.append(delivery)
                    continue
                self._drop(delivery)
                continue
            if batch is not None and not late:  # "late" waits in its watch's record for a poll
                batch.deliveries.append((due, self._pack(delivery)))
                continue
            watch.pending.append(delivery)

    def _count(self, names: list[str]) -> None:
        for name in names:
            self.counts[name] += 1
        if self.schedule is not None and names:
            self.schedule.count(names)

    def tally(self) -> dict[str, int]:
        """The attempts and their outcomes so far: this process's, or every worker's with a shared schedule."""
        if self.schedule is None:
            return dict(self.counts)
        return {name: 0 for name in self.counts} | self.schedule.counts()

    def _drop(self, d: _Delivery) -> None:
        self._finish(d, "dropped", None, "dropped by the webhook policy; never sent", None, {})

    def _emit(self, watch: _Watch, now: float) -> None:
        """Turn the timeline entries of ``watch``'s job that lie before ``now`` into deliveries."""
        times = watch.job.times  # a new tuple whenever the timeline changes
        mark = (times, len(times), times[-1])
        unchanged = watch.checked[:3] == mark and watch.checked[0] is times
        if watch.ended or (unchanged and now < watch.checked[3]):
            return
        timeline = watch.job.timeline
        upcoming = float("inf")
        for i, (start, event) in enumerate(timeline):
            if start > now:
                upcoming = min(upcoming, start)
                continue
            if (start, event) in watch.emitted:
                continue
            watch.emitted.add((start, event))
            if i + 1 < len(timeline) and timeline[i + 1][0] == start:
                continue  # replaced at the same instant (a forced state): never observable
            terminal = event in TERMINAL_STATES
            watch.ended = watch.ended or terminal
            if event not in watch.callback.states:
                continue
            policy = self._policy(watch.job)
            if policy and policy.mode == "reorder" and not terminal:
                watch.held.append((event, start))
                continue
            due = start + (policy.seconds if policy and policy.mode == "delay" else 0.0)
            self._schedule(watch, event, start, due, policy)
            if terminal and watch.held:  # reorder: the terminal callback first, then the rest, newest first
                for held_event, held_at in reversed(watch.held):
                    self._schedule(watch, held_event, held_at, due, policy)
                watch.held.clear()
        watch.checked = (*mark, upcoming)

    def _next(self, watch: _Watch, now: float) -> _Delivery | None:
        best = None
        for d in watch.pending:
            if d.until_seen:
                if watch.seen_terminal is None:
                    continue
                d.due, d.until_seen = max(d.due, watch.seen_terminal), False
            if d.due <= now and (best is None or (d.due, d.seq) < (best.due, best.seq)):
                best = d
        return best

    def _collect(self) -> Iterator[_Watch]:
        now_of, nows = self.state.now, dict[str, float]()
        for watch in self._watches:
            key = watch.job.key
            now = nows.get(key)
            if now is None:
                now = nows[key] = now_of(key)  # one instant per tenant clock for the whole pass
            self._emit(watch, now)
            if not watch.busy and self._next(watch, now) is not None:
                watch.busy = True
                yield watch
        if any(w.ended and not w.pending and not w.busy for w in self._watches):
            self._prune()

    def _prune(self) -> None:
        done = [w for w in self._watches if w.ended and not w.pending and not w.busy and not w.held]
        for watch in done:
            key = (watch.job.provider, watch.job.id)
            others = [w for w in self._by_job.get(key, []) if w is not watch]
            if others:
                self._by_job[key] = others
            else:
                self._by_job.pop(key, None)
        ids = {id(w) for w in done}
        self._watches = [w for w in self._watches if id(w) not in ids]

    # -- the shared schedule -------------------------------------------------------------------

    @staticmethod
    def _pack(d: _Delivery) -> dict[str, Any]:
        job = d.watch.job
        return {
            "provider": job.provider,
            "job": job.id,
            "channel": d.watch.callback.channel.name,
            "url": d.watch.callback.url,
            "event": d.event,
            "at": d.at,
            "body": d.body,
            "content": d.content.decode("latin-1"),
            "headers": d.headers,
            "copy": d.copy,
            "policy": d.policy,
            "attempts": d.attempts,
            "taken": d.taken,
            "due": d.due,
        }

    def _pack_watch(self, w: _Watch) -> dict[str, Any]:
        """A watch as the shared schedule keeps it (``late``: its callbacks waiting for a poll)."""
        job = w.job
        return {
            "watch": True,
            "provider": job.provider,
            "job": job.id,
            "channel": w.callback.channel.name,
            "url": w.callback.url,
            "states": sorted(w.callback.states),
            "ctx": w.ctx,
            "emitted": sorted(w.emitted),
            "held": w.held,
            "ended": w.ended,
            "late": [self._pack(d) for d in w.pending],
        }

    def _found(self, p: dict[str, Any]) -> tuple[Job, WebhookChannel] | None:
        """The job and the channel a shared entry names, or None when its job is gone."""
        job = self.state.jobs.get((p["provider"], p["job"]))
        contract = self.state.contracts.get(p["provider"])
        channels = [c for c in contract.webhook_channels if c.name == p["channel"]] if contract else []
        return None if job is None or not channels else (job, channels[0])

    @staticmethod
    def _delivery(watch: _Watch, p: dict[str, Any]) -> _Delivery:
        d = _Delivery(0, watch, p["event"], p["at"], p["body"], p["content"].encode("latin-1"), p["headers"], p["due"])
        d.copy, d.policy, d.attempts, d.taken = p["copy"], p["policy"], p["attempts"], p["taken"]
        watch.pending.append(d)
        return d

    def _unpack(self, p: dict[str, Any]) -> _Delivery | None:
        """A delivery claimed from the schedule, or None when its job is gone."""
        found = self._found(p)
        if found is None:
            return None
        job, channel = found
        return self._delivery(_Watch(job, Callback(channel, p["url"], frozenset()), {}), p)

    def _unpack_watch(self, p: dict[str, Any]) -> _Watch | None:
        found = self._found(p)
        if found is None:
            return None
        job, channel = found
        watch = _Watch(job, Callback(channel, p["url"], frozenset(p["states"])), p["ctx"])
        watch.emitted = {(at, event) for at, event in p["emitted"]}
        watch.held = [(event, at) for event, at in p["held"]]
        watch.ended = p["ended"]
        for late in p["late"]:
            self._delivery(watch, late).until_seen = True
        return watch

    def _lease(self, speed: float) -> float:
        """Provider seconds a claim holds at ``speed``: longer than any attempt lasts (its timeout, in real time)."""
        real = self.timeout_cap + self.timeout_floor
        return real * speed if speed else real

    def _pass_watch(self, key: str, ident: str, raw: bytes, p: dict[str, Any], now: float) -> None:
        """Turn what a shared watch's job has come to by ``now`` into shared deliveries, once: the
        pass lands only if no other worker has made it meanwhile."""
        assert self.schedule is not None
        watch = self._unpack_watch(p)
        if watch is None:
            self.schedule.done(ident, key)
            return
        watch.seen_terminal = self.schedule.seen_at(key, ident) if watch.pending or not watch.ended else None
        batch = self._batch = _Batch()
        try:
            self._emit(watch, now)
        finally:
            self._batch = None
        if watch.seen_terminal is not None:  # "late": a poll saw the end, so they are due
            for d in watch.pending:
                d.due = max(d.due, watch.seen_terminal)
                batch.deliveries.append((d.due, self._pack(d)))
            watch.pending.clear()
        over = watch.ended and not watch.pending and not watch.held
        record = None if over else self._pack_watch(watch)
        upcoming = watch.checked[3] if watch.checked and not watch.ended else math.inf
        if self.schedule.commit(key, ident, raw, record, upcoming, batch.deliveries, now):
            for d in batch.dropped:
                self._drop(d)

    def _pass_watches(self, key: str, now: float, lease: float) -> None:
        """Pass over every shared watch of ``key`` that is due at ``now``."""
        assert self.schedule is not None
        for _ in range(64):  # a claim takes a batch at most: a few more are rarely due
            claimed = self.schedule.claim_watches(key, now, lease)
            for ident, raw, payload in claimed:
                self._pass_watch(key, ident, raw, payload, now)
            if not claimed:
                return

    async def _deliver_shared(self, key: str, group: list[tuple[str, _Delivery]], session: _Session) -> int:
        """Attempt the claimed deliveries of one callback one after another, in order."""
        assert self.schedule is not None
        for ident, d in group:
            await self._attempt(d, session)
            if d in d.watch.pending:
                self.schedule.retry(ident, key, d.due, self._pack(d))
            else:
                self.schedule.done(ident, key)
        return len(group)

    async def _run_shared(self, session: _Session) -> int:
        """Pass over the shared watches due now, then claim the deliveries due and attempt each;
        the number of attempts."""
        if self.schedule is None:
            return 0
        tasks = []
        for key in self.schedule.waiting():
            now, speed = self.state.clocks.now_and_speed(key)
            lease = self._lease(speed)
            passes, claimed = self.schedule.claim_due(key, now, lease)  # one round trip when nothing is due
            if passes:
                for ident, raw, payload in passes:
                    self._pass_watch(key, ident, raw, payload, now)
                self._pass_watches(key, now, lease)
                claimed += self.schedule.claim(key, now, lease)  # what the passes made due
            groups: dict[tuple[str, str, str, str], list[tuple[str, _Delivery]]] = {}
            for ident, payload in claimed:
                d = self._unpack(payload)
                if d is None:
                    self.schedule.done(ident, key)
                    continue
                callback = (payload["provider"], payload["job"], payload["channel"], payload["url"])
                groups.setdefault(callback, []).append((ident, d))
            tasks += [asyncio.create_task(self._deliver_shared(key, group, session)) for group in groups.values()]
        return sum(await asyncio.gather(*tasks))

    def _outstanding_shared(self) -> list[dict[str, Any]]:
        assert self.schedule is not None
        out = []
        for key in self.schedule.waiting():
            now, speed = self.state.clocks.now_and_speed(key)
            self._pass_watches(key, now, self._lease(speed))
            for _, p in self.schedule.entries(key):
                listed = [(d, True) for d in p["late"]] if p.get("watch") else [(p, False)]
                out += [_outstanding(d, late) for d, late in listed]
        return sorted(out, key=lambda d: (d["due"], d["job"]))

    # -- delivery ------------------------------------------------------------------------------

    def _real_timeout(self, provider_seconds: float, key: str) -> float:
        speed = self.state.clocks.now_and_speed(key)[1]
        seconds = provider_seconds if speed == 0 else provider_seconds / speed
        return min(self.timeout_cap, max(self.timeout_floor, seconds))

    async def _drain(self, watch: _Watch, session: _Session) -> int:
        """Send ``watch``'s due deliveries one after another, in order; returns how many attempts."""
        made = 0
        try:
            while (delivery := self._next(watch, self.state.now(watch.job.key))) is not None:
                await self._attempt(delivery, session)
                made += 1
        finally:
            watch.busy = False
        return made

    async def _attempt(self, d: _Delivery, session: _Session) -> None:
        contract = self.state.contracts[d.watch.job.provider]
        rules = contract.webhook_delivery or WebhookDelivery(30.0, (), "2xx", {}, "")
        status: int | None = None
        error: str | None = None
        d.attempts += 1
        key = d.watch.job.key
        started, url = self.state.now(key), d.watch.callback.url
        async with session.gate:
            begin = time.perf_counter()
            request = asyncio.ensure_future(session.client.post(url, content=d.content, headers=d.headers))
            try:
                done, _ = await asyncio.wait({request}, timeout=self._real_timeout(rules.timeout, key))
                if not done:
                    raise TimeoutError
                status = request.result().status_code
            except TimeoutError:
                error = f"no answer within {rules.timeout:g} s (provider time)"
                self._await_answer(d, d.attempts, request, session, rules)
            except asyncio.CancelledError:
                request.cancel()
                d.attempts -= 1  # shutting down: the attempt never happened; it stays due
                raise
            except Exception as exc:  # any failure is a failed attempt, never a lost delivery
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            latency = round((time.perf_counter() - begin) * 1000, 3)
        if status is not None and rules.succeeded(status):
            outcome = "delivered"
        else:
            if status is not None:
                error = f"HTTP {status}; success is {'exactly 200' if rules.success == '200' else 'any 2xx'}"
            if d.attempts <= len(rules.retry_delays):
                outcome = "retry"
                d.due = self.state.now(key) + rules.retry_delays[d.attempts - 1]
            else:
                outcome = "gave_up"
        self._finish(d, outcome, status, error, latency, {"time": started})

    def _await_answer(
        self, d: _Delivery, attempt: int, request: asyncio.Future[httpx.Response], session: _Session, rules: Any
    ) -> None:
        """Keep waiting for a timed-out attempt: a 2xx after all means the receiver has the callback,
        so every retry it got (or gets) is a duplicate, and the journal says so."""

        async def wait() -> None:
            try:
                async with asyncio.timeout(self.answer_window):
                    response = await request
            except Exception:  # no answer after all (or the receiver closed): nothing to report
                request.cancel()
                return
            if not rules.succeeded(response.status_code):
                return
            d.taken.append(attempt)
            self._count(["answered_late"])
            entry = self._outbound(d, attempt, response.status_code, None, "answered_late")
            entry["duplicate"] = d.attempts > attempt  # a retry had gone out already
            self.state.record(entry)

        task = asyncio.create_task(wait())
        session.after_timeout.add(task)
        task.add_done_callback(session.after_timeout.discard)

    async def answers_after_timeout(self) -> None:
        """Wait until every timed-out attempt still awaited has been answered or given up on."""
        sessions = [self._background[1]] if self._background is not None else []
        waiting = {t for s in sessions for t in s.after_timeout} | set(self._closing)
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)

    def _outbound(
        self, d: _Delivery, attempt: int, status: int | None, error: str | None, outcome: str
    ) -> dict[str, Any]:
        """The journal entry of one attempt of ``d`` (or of its late answer)."""
        job = d.watch.job
        return {
            "direction": "outbound",
            "method": "POST",
            "provider": job.provider,
            "job": job.id,
            "key": job.key,
            "channel": d.watch.callback.channel.name,
            "event": d.event,
            "url": d.watch.callback.url,
            "attempt": attempt,
            "status": status,
            "error": error,
            "outcome": outcome,
            "copy": d.copy,
        }

    def _finish(
        self,
        d: _Delivery,
        outcome: str,
        status: int | None,
        error: str | None,
        latency: float | None,
        extra: dict[str, Any],
    ) -> None:
        if outcome != "retry" and d in d.watch.pending:
            d.watch.pending.remove(d)
        counted = [outcome] if outcome in self.counts else []
        self._count(counted if outcome == "dropped" else [*counted, "attempts"])
        entry = {
            **self._outbound(d, d.attempts, status, error, outcome),
            "latency_ms": latency,
            "headers": dict(d.headers),
            "body": d.body,
            "policy": d.policy,
            # the receiver had already answered an earlier, timed-out attempt with a 2xx
            "duplicate": bool(d.taken) and outcome != "dropped",
            **extra,
        }
        if outcome == "retry":
            entry["next_attempt_at"] = d.due
        self.state.record(entry)

    # -- drivers -------------------------------------------------------------------------------

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[_Session]:
        loop = asyncio.get_running_loop()
        if self._background is not None and self._background[0] is loop:
            yield self._background[1]
            return
        import httpx  # on the first delivery: serving and checking start without it

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.keepalive)
        client = httpx.AsyncClient(verify=self.verify, timeout=None, limits=limits, trust_env=False)
        session = _Session(client, asyncio.Semaphore(self.concurrency))
        try:
            yield session
        finally:
            if session.after_timeout:  # the client closes once the attempts still awaited are done
                closing = asyncio.create_task(self._close_after(session))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            else:
                await client.aclose()

    async def _close_after(self, session: _Session) -> None:
        try:
            await asyncio.gather(*session.after_timeout, return_exceptions=True)
        finally:
            await session.client.aclose()

    async def run_due(self) -> int:
        """Attempt every delivery due now and return once all are tried; the number of attempts."""
        if not self._watches and self.schedule is None:
            return 0
        made = 0
        async with self._session() as session:
            while True:
                tasks = [asyncio.create_task(self._drain(w, session)) for w in list(self._collect())]
                shared = await self._run_shared(session)
                if not tasks and not shared:
                    return made
                made += sum(await asyncio.gather(*tasks)) + shared

    def wake(self) -> None:
        """After the clock moved: attempt what has come due. From code without an event loop this
        returns once every due delivery is tried (on the app's loop when it runs in another
        thread); from inside a running loop the attempts start as soon as the caller awaits."""
        if not self._watches and self.schedule is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            task = running.create_task(self.run_due())
            self._woken.add(task)
            task.add_done_callback(self._woken.discard)
        elif self._background is not None:
            asyncio.run_coroutine_threadsafe(self.run_due(), self._background[0]).result()
        else:
            asyncio.run(self.run_due())

    async def run_forever(self) -> None:
        """Deliver in the background while the clock runs (a frozen clock waits for run_due)."""
        tasks: set[asyncio.Task[int]] = set()
        sharing: asyncio.Task[int] | None = None  # one pass over the shared schedule at a time
        async with self._session() as session:
            self._background = (asyncio.get_running_loop(), session)
            try:
                while True:
                    if self.state.clocks.running():
                        for watch in list(self._collect()):
                            task = asyncio.create_task(self._drain(watch, session))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                        if self.schedule is not None and (sharing is None or sharing.done()):
                            sharing = asyncio.create_task(self._run_shared(session))
                            tasks.add(sharing)
                            sharing.add_done_callback(tasks.discard)
                    await asyncio.sleep(self.tick)
            finally:
                self._background = None
                for pending in [*tasks, *session.after_timeout]:
                    pending.cancel()
                await asyncio.gather(*tasks, *session.after_timeout, return_exceptions=True)

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """A Starlette lifespan: the background deliverer runs as long as the app does."""
        task = asyncio.create_task(self.run_forever())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


def control_routes(state: MockState) -> list[BaseRoute]:
    """``/webhooks`` (GET: outstanding deliveries, policies and allowed targets; POST: set or clear a
    policy, allow more targets) and ``/webhooks/flush`` (POST: attempt everything due now)."""

    def _apply(hooks: Dispatcher, data: Any) -> None:
        if not isinstance(data, dict) or not ({"policy", "allow"} & data.keys()):
            raise ValueError("name a policy or targets to allow")
        allow = data.get("allow", [])
        if not isinstance(allow, list) or not all(isinstance(x, str) for x in allow):
            raise ValueError("allow is an array of strings")
        checked = Allowlist(allow, defaults=())  # validate everything, then apply
        spec = data.get("policy")
        if spec is not None:
            if not isinstance(spec, dict):
                raise ValueError("a policy is an object")
            job, key = spec.get("job"), spec.get("key")
            if not all(isinstance(name, str | None) for name in (job, key)) or (job is None) == (key is None):
                raise ValueError('name exactly one "job" or "key" (a string)')
            policy = None if spec.get("mode") in (None, "none") else Policy.from_action(spec)
            hooks.set_policy(policy, job=job, key=key)
        hooks.targets.add(checked.entries())

    async def overview(request: Request) -> Response:
        hooks = state.webhooks
        if request.method == "POST":
            try:
                data = loads(await request.body() or b"{}")
                state.configure(lambda: _apply(hooks, data))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                example = '{"policy": {"mode": "delay", "seconds": 30, "job": "JOB_ID"}}'
                allow = '{"allow": ["receiver:8080", "10.0.0.0/8"]}'
                return JSONResponse({"error": f'{exc}; send {example} (or "key" instead of "job"), or {allow}'}, 400)
        return JSONResponse(
            {
                "outstanding": hooks.outstanding(),
                "policies": hooks.policies(),
                "counts": hooks.tally(),
                "allowed_targets": state.read_settings(hooks.targets.entries),
            }
        )

    async def flush(request: Request) -> Response:
        attempts = await state.webhooks.run_due()
        return JSONResponse({"attempts": attempts, "outstanding": len(state.webhooks.outstanding())})

    return [
        Route("/webhooks", overview, methods=["GET", "POST"]),
        Route("/webhooks/flush", flush, methods=["POST"]),
    ]

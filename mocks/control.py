"""The control API under ``/_veomock``, and :class:`Control`, the same operations in Python.

    GET  /_veomock/health                 providers and their variants
    POST /_veomock/reset[?key=]           forget everything (or one API key's namespace)
    GET  /_veomock/clock[?key=]           {"now", "speed", "tenants"} (or one key's clock)
    POST /_veomock/clock                  {"advance": seconds} and/or {"speed": x}[, "key": K];
                                          a move delivers the webhooks it made due
    GET  /_veomock/tenants[?reveal=1]     every API key seen (masked), its jobs and its balances
    POST /_veomock/playback[?provider=]   a HAR session becomes scenario rules (mocks.playback)
    GET  /_veomock/jobs[?provider=&key=&timeline=1]  every job, with its state now (and its timeline)
    GET  /_veomock/jobs/{id}              one job, with its timeline
    POST /_veomock/jobs/{id}              {"state": "failed", "code": "..."} forces a state
    GET  /_veomock/journal[?provider=&direction=&operation=&key=&status=&job=&limit=]
                                          inbound requests and outbound webhook attempts, newest last
                                          (limit: only the newest N)
    GET  /_veomock/journal.har[?...]      the same as HAR 1.2
                                          (jobs and journal show API keys masked, sk-v…1234,
                                          unless the query has reveal=1)
    GET|POST|DELETE /_veomock/scenarios   rules: POST a rule, a list or {"rules": [...]};
                                          DELETE[?key=&provider=&id=] clears
    GET|POST|DELETE /_veomock/chaos       the seeded chaos profile
    GET|POST|DELETE /_veomock/limits      {"provider": P, "key": K, "requests_per_minute": n, ...}
    GET|POST /_veomock/balances           ?key=K[&provider=P]; {"key": K, "balance": x, "provider": P}
    GET  /_veomock/webhooks               outstanding deliveries, policies, counts
    POST /_veomock/webhooks               {"policy": {"mode": "drop", "job": ID}} (or "key": KEY)
    POST /_veomock/webhooks/flush         attempt every delivery due now (after advancing a frozen clock)
    GET  /_veomock/openapi/{provider}.json  the provider's OpenAPI 3.1 document (mocks/openapi.py)
    GET  /_veomock/ui                     the inspector page (mocks.inspector); /_veomock/events, its live feed

With ``veomock serve --control-token T`` every control call needs the header ``X-Veomock-Token: T``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send
from veomock.contracts import CANONICAL_STATES, TERMINAL_STATES
from veomock.mocks.clock import check_seconds, check_speed
from veomock.mocks.inspector import event_routes, page_routes
from veomock.mocks.journal import mask_secret, masked, select, to_har
from veomock.mocks.jsontext import finite, json_text, loads
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.scenarios import RuleError
from veomock.mocks.state import MockState, UnknownJob
from veomock.mocks.webhooks import control_routes as webhook_routes

__all__ = ["TOKEN_HEADER", "Conflict", "Control", "control_routes", "force_state", "job_summary"]

TOKEN_HEADER = "X-Veomock-Token"


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = loads(raw)
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


def job_summary(state: MockState, job: Job, timeline: bool = False, now: float | None = None) -> dict[str, Any]:
    """``job`` as the control API shows it at ``now`` (its key's clock by default)."""
    now = state.now(job.key) if now is None else now
    current = job.state_at(now)
    out: dict[str, Any] = {
        "id": job.id,
        "provider": job.provider,
        "model": job.model,
        "key": job.key,
        "state": current,
        "status": state.contracts[job.provider].states[current],
        "created_at": job.created_at,
        "price": job.price,
        "charge": state.providers[job.provider].ledger.charge(job, now),
        "outcome": {"state": job.outcome.state, "code": job.outcome.code, "message": job.outcome.message},
        "params": job.params,
        "now": now,
    }
    if timeline:
        out["timeline"] = [{"at": at, "state": s} for at, s in job.timeline]
    return out


class Conflict(ValueError):
    """A control call that contradicts the state it acts on (answered 409)."""


def force_state(
    state: MockState, job: Job, target: str, code: str | int | None = None, now: float | None = None
) -> None:
    """Force ``job`` into a canonical state at ``now``; failures take a code from the contract."""
    if not isinstance(target, str) or target not in CANONICAL_STATES:
        raise ValueError(f"unknown state {json_text(target)}; use one of {', '.join(CANONICAL_STATES)}")
    now = state.now(job.key) if now is None else now
    ended = job.state_at(now)
    if ended in TERMINAL_STATES:
        raise Conflict(
            f"job {job.id} already ended as {ended}; a finished job keeps its state "
            "(force it before it ends, or submit a new job)"
        )
    contract = state.contracts[job.provider]
    outcome = None
    if target in ("failed", "error"):
        failure = (
            contract.failure(code)
            if code is not None
            else next((f for f in contract.failures if f.state == target), contract.failures[0])
        )
        if failure is None:
            known = ", ".join(str(f.code) for f in contract.failures)
            raise ValueError(f"{contract.provider} has no failure code {json_text(code)}; known: {known}")
        outcome = Outcome(target, failure.code, failure.message)
    elif target in TERMINAL_STATES:
        outcome = Outcome(target)
    state.force(job, target, outcome, now)


class Control:
    """The control operations for in-process use; the HTTP control API calls the same methods.

    Errors that say what to fix raise :class:`ValueError` (a rule that names an unknown error, a
    limit that is not a number, ...), which the HTTP API answers as 400.
    """

    def __init__(self, state: MockState) -> None:
        self.state = state

    # -- lifecycle ------------------------------------------------------------------------------

    def reset(self, key: str | None = None) -> None:
        """Forget everything, or only one API key's namespace: its jobs, balances, limits, rules,
        webhooks and clock."""
        if key is None:
            self.state.reset()
        else:
            self.state.configure(lambda: self.state.forget(key))

    def clock(
        self, advance: Any = None, speed: Any = None, key: Any = None, *, deliver: bool = True
    ) -> dict[str, Any]:
        """Set a clock's ``speed`` and/or move it on by ``advance`` provider seconds: the default
        clock, or with ``key`` that API key's own (forked from the default the first time). Both
        are checked before either is applied. Moving a clock on attempts the webhooks that came
        due (``deliver``; the HTTP API awaits them itself)."""
        clocks = self.state.clocks
        if key is not None and (not isinstance(key, str) or not key):
            raise ValueError(f"key must be an API key (a string), not {json_text(key)}")
        current = clocks.of(key)
        new_speed = None if speed is None else check_speed(speed)
        seconds = None if advance is None else check_seconds("advance", advance, current.now())
        if key is not None and (new_speed is not None or seconds is not None):
            current = clocks.own(key)
        if new_speed is not None:
            current.set_speed(new_speed)
        if seconds is not None:
            current.advance(seconds)
            if deliver:
                self.state.webhooks.wake()
        return self.clock_view(key)

    def clock_view(self, key: str | None = None) -> dict[str, Any]:
        """``{"now", "speed"}`` of the default clock with every tenant's own clock, or of ``key``'s
        clock (``own``: whether it has one of its own)."""
        clocks = self.state.clocks
        if key is not None:
            clock = clocks.of(key)
            return {"now": clock.now(), "speed": clock.speed, "key": key, "own": clock is not clocks.default}
        tenants = {k: {"now": c.now(), "speed": c.speed} for k, c in clocks.owned().items()}
        return {"now": clocks.default.now(), "speed": clocks.default.speed, "tenants": tenants}

    # -- scenarios and chaos --------------------------------------------------------------------

    def add_scenarios(self, rules: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Add one rule or several, in order; if one is wrong, none is added."""
        if not isinstance(rules, Mapping | list | tuple):
            example = '{"operation": "submit", "action": {"error": "internal"}}'
            raise RuleError(f"send a rule such as {example}, an array of rules or {{\"rules\": [...]}}")
        items = [rules] if isinstance(rules, Mapping) else list(rules)
        return self.state.configure(lambda: self._add_scenarios(items))

    def _add_scenarios(self, items: list[Any]) -> list[dict[str, Any]]:
        book = self.state.scenarios
        before = list(book.rules)
        added = []
        try:
            for i, item in enumerate(items):
                try:
                    added.append(book.add(item).to_json())
                except RuleError as exc:
                    raise RuleError(f"rule {i}: {exc}" if len(items) > 1 else str(exc)) from None
        except RuleError:
            book.rules = before
            raise
        return added

    def scenarios(self, key: str | None = None) -> dict[str, Any]:
        listing = self.state.read_settings(self.state.scenarios.to_json)
        if key is not None:
            listing["rules"] = [r for r in listing["rules"] if r["match"].get("key") == key]
        return listing

    def clear_scenarios(self, key: str | None = None, provider: str | None = None, rule_id: str | None = None) -> int:
        return self.state.configure(lambda: self.state.scenarios.clear(key=key, provider=provider, rule_id=rule_id))

    def set_chaos(self, profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
        chaos = self.state.configure(lambda: self.state.scenarios.set_chaos(profile))
        return chaos.to_json() if chaos else None

    def chaos(self) -> dict[str, Any] | None:
        chaos = self.state.read_settings(lambda: self.state.scenarios.chaos)
        return chaos.to_json() if chaos else None

    # -- limits and balances --------------------------------------------------------------------

    def _provider(self, provider: Any) -> str:
        if not isinstance(provider, str) or provider not in self.state.contracts:
            raise ValueError(f"unknown provider {json_text(provider)}; known: {', '.join(self.state.contracts)}")
        return str(provider)

    def set_limits(self, provider: str, key: str | None = None, **limits: Any) -> dict[str, Any]:
        """Override ``requests_per_minute``, ``concurrent_jobs``, ``retry_after`` (None: no limit)."""
        name = self._provider(provider)
        return self.state.configure(lambda: self.state.limits.set(name, key, **limits).to_json())

    def clear_limits(self, provider: str | None = None, key: str | None = None) -> None:
        self.state.configure(lambda: self.state.limits.clear(provider, key))

    def limits(self, provider: str | None = None, key: str | None = None) -> dict[str, Any]:
        listing = self.state.read_settings(lambda: self.state.limits.to_json(key))
        return {provider: listing[self._provider(provider)]} if provider else listing

    def set_balance(self, key: str, balance: float, provider: str | None = None) -> dict[str, Any]:
        """Set what ``key`` has left now, at one provider or at every one."""
        amount = finite("balance", balance)
        names = [self._provider(provider)] if provider else list(self.state.providers)
        now = self.state.now(key)
        for name in names:
            self.state.set_balance(name, key, amount, now)
        return self.balance(key, provider, now)

    def balance(self, key: str, provider: str | None = None, now: float | None = None) -> dict[str, Any]:
        """``{provider: {"remaining", "initial", "charged", "unit"}}`` for ``key``."""
        names = [self._provider(provider)] if provider else list(self.state.providers)
        state = self.state
        now = state.now(key) if now is None else now
        units = {name: state.contracts[name].billing["unit"] for name in names}
        return {name: {**state.balance(name, key, now), "unit": unit} for name, unit in units.items()}

    # -- jobs and journal -----------------------------------------------------------------------

    def jobs(
        self, provider: str | None = None, key: str | None = None, timeline: bool = False, reveal: bool = True
    ) -> list[dict[str, Any]]:
        """Every job (of ``provider``, of ``key``), each key's jobs read at one instant of its clock."""
        state, nows = self.state, dict[str, float]()
        out = []
        for job in state.jobs_of(provider, key):
            now = nows.get(job.key)
            if now is None:
                now = nows[job.key] = state.now(job.key)
            out.append(_shown(job_summary(state, job, timeline, now=now), reveal))
        return out

    def job(self, job_id: str, now: float | None = None, reveal: bool = True) -> dict[str, Any]:
        return _shown(job_summary(self.state, self.state.find_job(job_id), timeline=True, now=now), reveal)

    def force(self, job_id: str, target: Any, code: Any = None) -> dict[str, Any]:
        job = self.state.find_job(job_id)
        now = self.state.now(job.key)
        force_state(self.state, job, target, code, now)
        return self.job(job_id, now)

    def journal(self, limit: int | None = None, reveal: bool = True, **filters: str | None) -> list[dict[str, Any]]:
        """Journal entries; filters: provider, direction, operation, key, status (429 or 4xx), job;
        ``limit``: only the newest that many; ``reveal=False`` masks API keys and tokens."""
        entries = select(self.state.journal, filters)
        if limit is not None:
            entries = entries[max(0, len(entries) - limit) :]
        if reveal:
            return entries
        secrets = {c.auth.header_key for c in self.state.contracts.values()} | {TOKEN_HEADER.lower()}
        return masked(entries, secrets)
    def playback(self, har: Any, provider: str | None = None, once: bool = False) -> dict[str, Any]:
        """Arm the scenario of a HAR session (``mocks.playback``): its rules, in order, after those armed.

        With ``once``, the rules get ids from the session's content, and a session whose rules are
        armed already is not armed again (``veomock serve --from`` started again on a shared store)."""
        from veomock.mocks.playback import playback

        replay = playback(self.state.contracts, har, provider)
        rules = replay.rules
        if once and rules:
            digest = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:12]
            rules = [{**rule, "id": f"playback-{digest}-{i}"} for i, rule in enumerate(rules)]
            armed = {r["id"]: r for r in self.scenarios()["rules"]}
            if all(rule["id"] in armed for rule in rules):
                return {**replay.to_json(), "rules": [armed[rule["id"]] for rule in rules]}
        added = self.add_scenarios(rules) if rules else []
        return {**replay.to_json(), "rules": added}

    def tenants(self) -> list[dict[str, Any]]:
        """Every API key seen (in a job or a request), with its job count and, at each provider it
        used, its balance now."""
        used: dict[str, dict[str, int]] = {}
        for job in self.state.jobs.values():
            used.setdefault(job.key, {}).setdefault(job.provider, 0)
            used[job.key][job.provider] += 1
        for entry in self.state.journal:
            key, provider = entry.get("key"), entry.get("provider")
            if isinstance(key, str) and provider in self.state.providers:
                used.setdefault(key, {}).setdefault(provider, 0)
        out = []
        for key, counts in used.items():
            now = self.state.now(key)
            balances = {name: self.balance(key, name, now)[name] for name in self.state.providers if name in counts}
            out.append({"key": key, "jobs": sum(counts.values()), "balances": balances})
        return out

    def har(self, reveal: bool = True, **filters: str | None) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("veomock")
        except PackageNotFoundError:
            release = "0"
        return to_har(self.journal(None, reveal, **filters), release)


class _TokenGuard:
    """Refuses control calls without the right ``X-Veomock-Token`` header."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope.get("headers", [])).get(TOKEN_HEADER.lower().encode(), b"")
        if scope["type"] == "http" and not hmac.compare_digest(given, self.token):
            reason = "missing" if not given else "wrong"
            message = f"{TOKEN_HEADER} header {reason}; send the token given to veomock serve --control-token"
            await _problem(401, message)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _filters(request: Request, *names: str) -> dict[str, str | None]:
    return {name: request.query_params.get(name) for name in names}


def _shown(summary: dict[str, Any], reveal: bool) -> dict[str, Any]:
    return summary if reveal else {**summary, "key": mask_secret(str(summary["key"]))}


def _reveal(request: Request) -> bool:
    """Whether a listing may show API keys in full: ``?reveal=1`` (or true, yes)."""
    return request.query_params.get("reveal", "").lower() in ("1", "true", "yes")


def control_routes(state: MockState, token: str | None = None) -> list[BaseRoute]:
    control = Control(state)

    def guarded(endpoint: Any) -> Any:
        async def handle(request: Request) -> Response:
            try:
                response: Response = await endpoint(request)
                if request.method != "GET" and response.status_code < 400:
                    state.changes.bump()
                return response
            except UnknownJob as exc:
                return _problem(404, f"no job {json_text(exc.args[0])}")
            except Conflict as exc:
                return _problem(409, str(exc))
            except json.JSONDecodeError as exc:
                return _problem(400, f"the body is not JSON ({exc.msg}); send a JSON object")
            except (ValueError, TypeError) as exc:
                return _problem(400, str(exc))

        return handle

    async def health(request: Request) -> Response:
        providers = {name: {"variants": c.variants} for name, c in state.contracts.items()}
        return JSONResponse({"ok": True, "providers": providers, "now": state.now()})

    async def reset(request: Request) -> Response:
        key = request.query_params.get("key")
        control.reset(key)
        return JSONResponse({"ok": True, "key": key})

    async def clock(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(control.clock_view(request.query_params.get("key")))
        data = await _json(request)
        try:
            unknown = sorted(set(data) - {"advance", "speed", "key"})
            if unknown:
                raise ValueError(f"unknown field {json_text(unknown[0])}")
            view = control.clock(data.get("advance"), data.get("speed"), data.get("key"), deliver=False)
        except ValueError as exc:
            example = '{"advance": seconds} and/or {"speed": factor}, optionally with "key": API_KEY'
            return _problem(400, f"{exc}; send {example}")
        if data.get("advance") is not None:
            view["webhook_attempts"] = await state.webhooks.run_due()  # what the move made due
        return JSONResponse(view)

    async def jobs(request: Request) -> Response:
        timeline = request.query_params.get("timeline") in ("1", "true")
        filters = _filters(request, "provider", "key")
        return JSONResponse({"jobs": control.jobs(**filters, timeline=timeline, reveal=_reveal(request))})

    async def replay(request: Request) -> Response:
        answer = control.playback(await request.body(), request.query_params.get("provider"))
        return JSONResponse(answer, status_code=201)

    async def tenants(request: Request) -> Response:
        listing = control.tenants()
        if not _reveal(request):
            listing = [{**tenant, "key": mask_secret(tenant["key"])} for tenant in listing]
        return JSONResponse({"tenants": listing})

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            data = await _json(request)
            forced = control.force(job_id, data.get("state"), data.get("code"))
            return JSONResponse(_shown(forced, _reveal(request)))
        return JSONResponse(control.job(job_id, reveal=_reveal(request)))

    async def journal(request: Request) -> Response:
        filters = {k: v for k, v in request.query_params.items() if k != "reveal"}
        if request.url.path.endswith(".har"):
            disposition = {"Content-Disposition": "inline; filename=veomock.har"}
            return JSONResponse(control.har(_reveal(request), **filters), headers=disposition)
        limit = filters.pop("limit", None)
        if limit is not None and not limit.isdigit():
            raise ValueError(f"limit must be a whole number of entries, not {json_text(limit)}")
        entries = control.journal(None if limit is None else int(limit), _reveal(request), **filters)
        return JSONResponse({"entries": entries})

    async def scenarios(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(control.scenarios(request.query_params.get("key")))
        if request.method == "DELETE":
            query = _filters(request, "key", "provider")
            removed = control.clear_scenarios(**query, rule_id=request.query_params.get("id"))
            return JSONResponse({"removed": removed})
        data = loads(await request.body() or b"null")
        rules = data["rules"] if isinstance(data, Mapping) and set(data) == {"rules"} else data
        return JSONResponse({"added": control.add_scenarios(rules)}, status_code=201)

    async def chaos(request: Request) -> Response:
        if request.method == "POST":
            return JSONResponse({"chaos": control.set_chaos(await _json(request))})
        if request.method == "DELETE":
            control.set_chaos(None)
        return JSONResponse({"chaos": control.chaos()})

    async def limits(request: Request) -> Response:
        query = _filters(request, "provider", "key")
        if request.method == "POST":
            data = await _json(request)
            provider, key = data.pop("provider", None), data.pop("key", None)
            return JSONResponse({"limits": control.set_limits(provider, key, **data)})
        if request.method == "DELETE":
            control.clear_limits(**query)
        return JSONResponse({"limits": control.limits(**query)})

    async def openapi(request: Request) -> Response:
        from veomock.mocks.openapi import serve_document  # built on request: most mocks never build one

        return serve_document(state.contracts, request)

    async def balances(request: Request) -> Response:
        if request.method == "POST":
            data = await _json(request)
            try:
                key = data.get("key")
                if not isinstance(key, str) or "balance" not in data:
                    raise ValueError("name the API key and the amount")
                balances = control.set_balance(key, data["balance"], data.get("provider"))
            except ValueError as exc:
                example = '{"key": API_KEY, "balance": amount} and optionally "provider"'
                raise ValueError(f"{exc}; send {example}") from None
            return JSONResponse({"balances": balances})
        key = request.query_params.get("key")
        if key is None:
            raise ValueError("name the API key: /_veomock/balances?key=YOUR_KEY[&provider=NAME]")
        return JSONResponse({"balances": control.balance(key, request.query_params.get("provider"))})

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/reset", guarded(reset), methods=["POST"]),
        Route("/clock", guarded(clock), methods=["GET", "POST"]),
        Route("/tenants", guarded(tenants), methods=["GET"]),
        Route("/playback", guarded(replay), methods=["POST"]),
        Route("/jobs", guarded(jobs), methods=["GET"]),
        Route("/jobs/{job_id:path}", guarded(job), methods=["GET", "POST"]),
        Route("/journal", guarded(journal), methods=["GET"]),
        Route("/journal.har", guarded(journal), methods=["GET"]),
        Route("/scenarios", guarded(scenarios), methods=["GET", "POST", "DELETE"]),
        Route("/chaos", guarded(chaos), methods=["GET", "POST", "DELETE"]),
        Route("/limits", guarded(limits), methods=["GET", "POST", "DELETE"]),
        Route("/balances", guarded(balances), methods=["GET", "POST"]),
        *webhook_routes(state),
        Route("/openapi/{provider}.json", guarded(openapi), methods=["GET"]),
        *event_routes(state),
    ]
    if token:
        return [*page_routes(), Mount("", app=_TokenGuard(Router(routes=routes), token))]
    return [*page_routes(), *routes]

"""The control API under ``/_veomock``, and :class:`Control`, the same operations in Python.

    GET  /_veomock/health                 providers and their variants
    POST /_veomock/reset[?key=]           forget everything (or one API key's namespace)
    GET  /_veomock/clock                  {"now": ..., "speed": ...}
    POST /_veomock/clock                  {"advance": seconds} and/or {"speed": x}
    GET  /_veomock/jobs[?provider=&key=]  every job, with its state now
    GET  /_veomock/jobs/{id}              one job, with its timeline
    POST /_veomock/jobs/{id}              {"state": "failed", "code": "..."} forces a state
    GET  /_veomock/journal[?provider=&direction=&operation=&key=&status=&job=]
                                          inbound requests and outbound webhook attempts, newest last
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

With ``veomock serve --control-token T`` every control call needs the header ``X-Veomock-Token: T``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send
from veomock.contracts import CANONICAL_STATES, TERMINAL_STATES
from veomock.mocks.journal import mask_secret, masked, select, to_har
from veomock.mocks.jsontext import loads
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.openapi import control_routes as openapi_routes
from veomock.mocks.scenarios import RuleError
from veomock.mocks.state import MockState, UnknownJob
from veomock.mocks.webhooks import control_routes as webhook_routes

__all__ = ["TOKEN_HEADER", "Control", "control_routes", "force_state", "job_summary"]

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


def job_summary(state: MockState, job: Job, timeline: bool = False) -> dict[str, Any]:
    now = state.now()
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
        "outcome": {"state": job.outcome.state, "code": job.outcome.code, "message": job.outcome.message},
        "params": job.params,
    }
    if timeline:
        out["timeline"] = [{"at": at, "state": s} for at, s in job.timeline]
    return out


def force_state(state: MockState, job: Job, target: str, code: str | int | None = None) -> None:
    """Force ``job`` into a canonical state now; failures take a code from the contract."""
    if target not in CANONICAL_STATES:
        raise ValueError(f"unknown state {target!r}; use one of {', '.join(CANONICAL_STATES)}")
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
            raise ValueError(f"{contract.provider} has no failure code {code!r}; known: {known}")
        outcome = Outcome(target, failure.code, failure.message)
    elif target in TERMINAL_STATES:
        outcome = Outcome(target)
    state.force(job, target, outcome)


class Control:
    """The control operations for in-process use; the HTTP control API calls the same methods.

    Errors that say what to fix raise :class:`ValueError` (a rule that names an unknown error, a
    limit that is not a number, ...), which the HTTP API answers as 400.
    """

    def __init__(self, state: MockState) -> None:
        self.state = state

    # -- lifecycle ------------------------------------------------------------------------------

    def reset(self, key: str | None = None) -> None:
        """Forget everything, or only one API key's namespace: its jobs, balances, limits, rules."""
        state = self.state
        if key is None:
            state.reset()
            return
        for ident in [ident for ident, job in state.jobs.items() if job.key == key]:
            del state.jobs[ident]
        for runtime in state.providers.values():
            runtime.ledger.forget(key)
        state.limits.forget(key)
        state.scenarios.forget(key)
        state.webhooks.forget(key)
        state.journal.drop(key)

    def clock(self, advance: float | None = None, speed: float | None = None) -> dict[str, float]:
        if speed is not None:
            self.state.clock.set_speed(float(speed))
        if advance is not None:
            self.state.clock.advance(float(advance))
        return {"now": self.state.now(), "speed": self.state.clock.speed}

    # -- scenarios and chaos --------------------------------------------------------------------

    def add_scenarios(self, rules: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[dict[str, Any]]:
        """Add one rule or several, in order; if one is wrong, none is added."""
        items = [rules] if isinstance(rules, Mapping) else list(rules)
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
        listing = self.state.scenarios.to_json()
        if key is not None:
            listing["rules"] = [r for r in listing["rules"] if r["match"].get("key") == key]
        return listing

    def clear_scenarios(self, key: str | None = None, provider: str | None = None, rule_id: str | None = None) -> int:
        return self.state.scenarios.clear(key=key, provider=provider, rule_id=rule_id)

    def set_chaos(self, profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
        chaos = self.state.scenarios.set_chaos(profile)
        return chaos.to_json() if chaos else None

    def chaos(self) -> dict[str, Any] | None:
        chaos = self.state.scenarios.chaos
        return chaos.to_json() if chaos else None

    # -- limits and balances --------------------------------------------------------------------

    def _provider(self, provider: Any) -> str:
        if provider not in self.state.contracts:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(self.state.contracts)}")
        return str(provider)

    def set_limits(self, provider: str, key: str | None = None, **limits: Any) -> dict[str, Any]:
        """Override ``requests_per_minute``, ``concurrent_jobs``, ``retry_after`` (None: no limit)."""
        return self.state.limits.set(self._provider(provider), key, **limits).to_json()

    def clear_limits(self, provider: str | None = None, key: str | None = None) -> None:
        self.state.limits.clear(provider, key)

    def limits(self, provider: str | None = None, key: str | None = None) -> dict[str, Any]:
        listing = self.state.limits.to_json(key)
        return {provider: listing[self._provider(provider)]} if provider else listing

    def set_balance(self, key: str, balance: float, provider: str | None = None) -> dict[str, Any]:
        """Set what ``key`` has left now, at one provider or at every one."""
        if not isinstance(balance, int | float) or isinstance(balance, bool):
            raise ValueError(f"balance must be a number, not {balance!r}")
        names = [self._provider(provider)] if provider else list(self.state.providers)
        for name in names:
            self.state.providers[name].ledger.set_balance(key, float(balance), self.state.now())
        return self.balance(key, provider)

    def balance(self, key: str, provider: str | None = None) -> dict[str, Any]:
        """``{provider: {"remaining", "initial", "charged", "unit"}}`` for ``key``."""
        names = [self._provider(provider)] if provider else list(self.state.providers)
        now = self.state.now()
        ledgers = {name: self.state.providers[name].ledger for name in names}
        return {
            name: {**ledger.view(key, now), "unit": self.state.contracts[name].billing["unit"]}
            for name, ledger in ledgers.items()
        }

    # -- jobs and journal -----------------------------------------------------------------------

    def jobs(self, provider: str | None = None, key: str | None = None, reveal: bool = True) -> list[dict[str, Any]]:
        return [
            _shown(job_summary(self.state, job), reveal)
            for job in self.state.jobs.values()
            if (provider is None or job.provider == provider) and (key is None or job.key == key)
        ]

    def job(self, job_id: str, reveal: bool = True) -> dict[str, Any]:
        return _shown(job_summary(self.state, self.state.find_job(job_id), timeline=True), reveal)

    def force(self, job_id: str, target: str, code: str | int | None = None) -> dict[str, Any]:
        force_state(self.state, self.state.find_job(job_id), target, code)
        return self.job(job_id)

    def journal(self, reveal: bool = True, **filters: str | None) -> list[dict[str, Any]]:
        """Journal entries; filters: provider, direction, operation, key, status (429 or 4xx), job.
        ``reveal=False`` masks API keys and tokens."""
        entries = select(self.state.journal, filters)
        if reveal:
            return entries
        secrets = {c.auth.header_key for c in self.state.contracts.values()} | {TOKEN_HEADER.lower()}
        return masked(entries, secrets)

    def har(self, reveal: bool = True, **filters: str | None) -> dict[str, Any]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("veomock")
        except PackageNotFoundError:
            release = "0"
        return to_har(self.journal(reveal, **filters), release)


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
                return await endpoint(request)  # type: ignore[no-any-return]
            except UnknownJob as exc:
                return _problem(404, f"no job {exc.args[0]!r}")
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
            return JSONResponse(control.clock())
        data = await _json(request)
        try:
            advance, speed = data.get("advance"), data.get("speed")
            return JSONResponse(control.clock(advance, speed))
        except (ValueError, TypeError) as exc:
            return _problem(400, f'{exc}; send {{"advance": seconds}} or {{"speed": factor}}')

    async def jobs(request: Request) -> Response:
        return JSONResponse({"jobs": control.jobs(**_filters(request, "provider", "key"), reveal=_reveal(request))})

    async def job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "POST":
            data = await _json(request)
            forced = control.force(job_id, str(data.get("state")), data.get("code"))
            return JSONResponse(_shown(forced, _reveal(request)))
        return JSONResponse(control.job(job_id, _reveal(request)))

    async def journal(request: Request) -> Response:
        filters = {k: v for k, v in request.query_params.items() if k != "reveal"}
        if request.url.path.endswith(".har"):
            disposition = {"Content-Disposition": "inline; filename=veomock.har"}
            return JSONResponse(control.har(_reveal(request), **filters), headers=disposition)
        return JSONResponse({"entries": control.journal(_reveal(request), **filters)})

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

    async def balances(request: Request) -> Response:
        if request.method == "POST":
            data = await _json(request)
            if "key" not in data or "balance" not in data:
                raise ValueError('send {"key": API_KEY, "balance": amount} and optionally "provider"')
            balances = control.set_balance(str(data["key"]), data["balance"], data.get("provider"))
            return JSONResponse({"balances": balances})
        key = request.query_params.get("key")
        if key is None:
            raise ValueError("name the API key: /_veomock/balances?key=YOUR_KEY[&provider=NAME]")
        return JSONResponse({"balances": control.balance(key, request.query_params.get("provider"))})

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/reset", guarded(reset), methods=["POST"]),
        Route("/clock", guarded(clock), methods=["GET", "POST"]),
        Route("/jobs", guarded(jobs), methods=["GET"]),
        Route("/jobs/{job_id}", guarded(job), methods=["GET", "POST"]),
        Route("/journal", guarded(journal), methods=["GET"]),
        Route("/journal.har", guarded(journal), methods=["GET"]),
        Route("/scenarios", guarded(scenarios), methods=["GET", "POST", "DELETE"]),
        Route("/chaos", guarded(chaos), methods=["GET", "POST", "DELETE"]),
        Route("/limits", guarded(limits), methods=["GET", "POST", "DELETE"]),
        Route("/balances", guarded(balances), methods=["GET", "POST"]),
        *webhook_routes(state),
        *openapi_routes(dict(state.contracts)),
    ]
    if token:
        return [Mount("", app=_TokenGuard(Router(routes=routes), token))]
    return routes

"""One generic Starlette app for any set of contracts: routes, auth, validation, jobs, media.

Nothing here knows a provider. Every route comes from a contract's ``operations``; every body
from its ``responses`` and ``errors``. Handlers are closures over (contract, operation).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Message, Receive, Scope, Send
from veomock.contracts import Contract, Operation
from veomock.contracts.model import Response as ResponseSpec
from veomock.contracts.model import SourceJob
from veomock.contracts.templates import compile_template
from veomock.mocks.faults import MockApp, TransportFaults, screen, with_fault
from veomock.mocks.hosts import request_host
from veomock.mocks.journal import EXCHANGE, exchange
from veomock.mocks.jsontext import NotText, TooDeep, json_text, json_type, loads_body
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.media import Clip, clip_for
from veomock.mocks.responses import error_response, render, renderer, reply
from veomock.mocks.state import MockState, UnknownJob
from veomock.mocks.webhooks import WebhookRefused

__all__ = ["CONTROL_PREFIX", "build_app"]

CONTROL_PREFIX = "/_veomock"
Handler = Callable[[Request], Awaitable[Response]]


def bearer_token(value: str) -> str | None:
    """The token of ``Bearer TOKEN`` (any case, any whitespace around and between), else None."""
    parts = value.split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None


def _authenticate(contract: Contract, ctx: Mapping[str, Any]) -> str | Response:
    """The API key, or the provider's refusal: its documented body, and what to fix in a hint header.

    Where the contract names ``auth.query``, that query parameter may carry the key instead.
    """
    auth = contract.auth
    value: str | None = ctx["header"].get(auth.header_key)
    if value is None and auth.query is not None:
        value = ctx["query"].get(auth.query)
    if value is None or not value.strip():
        example = "Bearer YOUR_API_KEY" if auth.scheme == "bearer" else "YOUR_API_KEY"
        hint = f"Missing header {auth.header}; send '{auth.header}: {example}'"
        return _refuse_auth(contract, ctx, "auth_missing", hint)
    key = value.strip()
    if auth.scheme == "bearer":
        token = bearer_token(value)
        if token is None:
            return _refuse_auth(contract, ctx, "auth_invalid", f"{auth.header} must be 'Bearer YOUR_API_KEY'")
        key = token
    if auth.key_re is not None and not auth.key_re.search(key):
        return _refuse_auth(contract, ctx, "auth_invalid", f"Invalid API key: it must match {auth.key_pattern}")
    return key


def _refuse_auth(contract: Contract, ctx: Mapping[str, Any], error: str, hint: str) -> Response:
    return error_response(contract, error, None, {"request": ctx["request"]}, hint=hint)


class _Headers(Mapping[str, str]):
    """A request's headers as templates read them (lower-case names), decoded on first use.

    Most requests read one header (the API key) and no template reads any; decoding them all on
    every request would cost more than the look-ups.
    """

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = {k.decode("latin-1"): v.decode("latin-1") for k, v in self._raw}
        return self._decoded

    def get(self, name: str, default: Any = None) -> Any:
        if self._decoded is None:
            wanted = name.encode("latin-1")
            for key, value in self._raw:
                if key == wanted:
                    return value.decode("latin-1")
            return default
        return self._decoded.get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._raw)


def parse_query(raw: bytes) -> dict[str, str]:
    """A query string as ``dict(parse_qsl(..., keep_blank_values=True))`` gives it (the last value
    of a repeated name wins); without escapes (``%``, ``+``) a split does the same work faster."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    out = {}
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            out[name] = value
    return out


def _job_fields(spec: ResponseSpec) -> frozenset[str] | None:
    """The job fields a response reads, in its body or its headers (None: all of them)."""
    templates = [spec.body, *(compile_template(v) for v in spec.headers.values())]
    wanted: set[str] = set()
    for template in templates:
        fields = template.fields("job")
        if fields is None:
            return None
        wanted |= fields
    return frozenset(wanted)


def _request_ctx(request: Request, body: Any = None) -> dict[str, Any]:
    """What templates may read of a request, built straight from the ASGI scope (hot path)."""
    scope = request.scope
    headers = _Headers(scope["headers"])
    raw_query = scope.get("query_string", b"")
    query = parse_query(raw_query) if raw_query else {}
    host = request_host(headers.get("host"), scope.get("server"))
    return {
        "body": body,
        "header": headers,
        "query": query,
        "path": scope.get("path_params", {}),
        "request": {"base_url": f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"},
    }


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read straight from ``receive`` (and kept where ``request.body()`` keeps it).

    Reading stops one byte past ``limit``: an oversized body is refused without being buffered.
    """
    chunks: list[bytes] = []
    size, more = 0, True
    while more and size <= limit:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not more and not chunks:  # the whole body in one message: the common case
            request._body = chunk
            return chunk
        chunks.append(chunk)
        size += len(chunk)
    raw = b"".join(chunks)
    request._body = raw
    return raw


class _Handlers:
    """The four generic operations: submit, status, balance, media."""

    def __init__(self, state: MockState, contract: Contract) -> None:
        self.state = state
        self.contract = contract
        self.provider = contract.provider
        # Only what no reset changes: the contract and its (pure) request validators.
        self.validators = state.validators(contract.provider)

    def _journal(
        self, request: Request, op: str, response: Response, key: str | None, now: float, **extra: Any
    ) -> Response:
        """Journal the exchange at ``now``, the instant the handler answered it at."""
        scope = request.scope
        entry = {
            "direction": "inbound",
            "provider": self.contract.provider,
            "operation": op,
            "method": scope["method"],
            "path": scope["path"],
            "status": response.status_code,
            "key": key,
            EXCHANGE: exchange(request, response),
        }
        if extra:
            entry.update(extra)
        self.state.record(entry, now)
        return with_fault(request, response)

    async def _read_json(self, request: Request, headers: Mapping[str, str]) -> tuple[Any, Response | None]:
        contract = self.contract
        ctype = headers.get("content-type", "")
        if "json" not in ctype.lower():
            msg = f"Content-Type must be application/json, not {ctype or 'missing'}; send the body as JSON"
            return None, error_response(contract, "unsupported_media_type", msg)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.state.max_body_bytes:
            msg = f"Request body is {declared} bytes; the limit is {self.state.max_body_bytes}"
            return None, error_response(contract, "payload_too_large", msg)
        raw = await read_body(request, self.state.max_body_bytes)
        if len(raw) > self.state.max_body_bytes:
            msg = f"Request body is {len(raw)} bytes; the limit is {self.state.max_body_bytes}"
            return None, error_response(contract, "payload_too_large", msg)
        try:
            body = loads_body(raw)
        except (TooDeep, NotText) as exc:
            return None, error_response(contract, "malformed_json", f"Malformed JSON: {exc}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            msg = f"Malformed JSON{where}: {exc.args[0].split(':')[0]}; send a JSON object"
            return None, error_response(contract, "malformed_json", msg)
        if not isinstance(body, dict):
            msg = f"The request body must be a JSON object, not {json_type(body)}"
            return None, error_response(contract, "invalid_request", msg)
        return body, None

    def _unknown_model(self, op: Operation, name: Any) -> Response:
        """A submit whose model is missing (the contract's ``model_missing``) or not served here."""
        contract, known = self.contract, ", ".join(op.models)
        if name is None or name == "":
            declared = "model_missing" in contract.errors
            msg = f"the model is required; send one of: {known}"
            return error_response(contract, "model_missing", None if declared else msg, hint=msg)
        return error_response(contract, "model_not_found", f"Model {json_text(name)} not found; use one of: {known}")

    def _built_on(self, source: SourceJob, ctx: Mapping[str, Any], key: str, now: float) -> Outcome | None:
        """How a job built on an earlier one ends: as the contract says when that one is unknown
        (to this key), of another model, not succeeded or expired at ``now``; else normally."""
        try:
            earlier = self.state.job(self.provider, str(source.id_from.render(ctx)), key)
            usable = (
                earlier.model in source.models
                and earlier.state_at(now) == "succeeded"
                and not self.state.media_expired(earlier, now)
            )
        except UnknownJob:
            usable = False
        if usable:
            return None
        failure = self.contract.failure(source.fail)
        assert failure is not None  # the loader checks the code
        return Outcome(failure.state, failure.code, failure.message)

    def submit(self, op: Operation) -> Handler:
        contract, state, provider = self.contract, self.state, self.provider
        fields = _job_fields(contract.submit)
        answer = renderer(contract.submit)
        param_renderers = {m: [(n, t.renderer()) for n, t in contract.models[m].params.items()] for m in op.models}

        async def handle(request: Request) -> Response:
            ctx = _request_ctx(request)
            key = _authenticate(contract, ctx)
            if isinstance(key, Response):
                return self._journal(request, op.name, key, None, state.now())
            now = state.now(key)  # the one instant this request is answered at
            body, refused = await self._read_json(request, ctx["header"])
            if refused:
                return self._journal(request, op.name, refused, key, now)
            ctx["body"] = body
            model_name = op.models[0] if op.model_from is None else op.model_from.render(ctx)
            if model_name not in op.models:
                return self._journal(request, op.name, self._unknown_model(op, model_name), key, now)
            model = contract.models[model_name]
            if model.inject:
                for field, expr in model.inject.items():
                    if field not in body:
                        value = expr.render(ctx)
                        if value is not None:
                            body[field] = value
            invalid = self.validators[model_name].check(body)
            if invalid:
                response = error_response(contract, "invalid_request", invalid.message)
                return self._journal(request, op.name, response, key, now, rule=invalid.rule)
            try:
                callbacks = state.webhooks.requested(contract, model_name, ctx)
            except WebhookRefused as refusal:
                response = error_response(contract, refusal.error, refusal.message)
                return self._journal(request, op.name, response, key, now)
            params = {name: render_param(ctx) for name, render_param in param_renderers[model_name]}
            prompt = params.get("prompt")
            verdict = screen(state, contract, request, "submit", op.name, key, now, prompt=prompt, model=model_name)
            if verdict.response is not None:
                return self._journal(request, op.name, verdict.response, key, now, **verdict.note)
            price = model.price(params)
            if state.remaining(provider, key, now) < price:
                msg = f"Insufficient balance: this job costs {price} {contract.billing['unit']}"
                priced = {"price": price, "job": {"price": price}}
                response = error_response(contract, "insufficient_balance", msg, priced, op=op)
                return self._journal(request, op.name, response, key, now, **verdict.note)
            outcome = verdict.outcome
            if outcome is None and model.source_job is not None:  # a scenario's outcome wins
                outcome = self._built_on(model.source_job, ctx, key, now)
            job = state.create_job(provider, model, key, params, outcome, verdict.timing, price=price, now=now)
            base = ctx["request"]["base_url"]
            if callbacks:
                state.webhooks.watch(job, callbacks, base, ctx)
                verdict.created(state, job, True)
            ctx["job"] = state.view(job, base, at=now, fields=fields)
            response = answer(ctx)
            return self._journal(request, op.name, response, key, now, job=job.id, **verdict.note)

        return handle

    def status(self, op: Operation) -> Handler:
        contract, state, provider = self.contract, self.state, self.provider
        assert op.id_from is not None
        id_from = op.id_from
        # A status body that reads nothing but the job and the base URL is the same for every poll
        # until the job moves on: keep the last one per job (polling is this route's whole load).
        reusable = all(
            spec.body.roots <= {"job", "request"} and not spec.headers and isinstance(spec.body.source, dict)
            for spec in contract.status.values()
        )

        async def handle(request: Request) -> Response:
            ctx = _request_ctx(request)
            key = _authenticate(contract, ctx)
            if isinstance(key, Response):
                return self._journal(request, op.name, key, None, state.now())
            now = state.now(key)  # the one instant this request is answered at
            job_id = id_from.render(ctx)
            if not job_id:
                msg = f"Missing task id; {op.method} {op.path} needs {id_from.source}"
                return self._journal(request, op.name, error_response(contract, "invalid_request", msg), key, now)
            found: Job | None
            try:
                found = state.job(provider, str(job_id), key)
                if found.model not in op.models:
                    raise UnknownJob(job_id)
            except UnknownJob:
                found = None
            verdict = screen(state, contract, request, "status", op.name, key, now, job=found)
            if verdict.response is not None:
                return self._journal(request, op.name, verdict.response, key, now, job=job_id, **verdict.note)
            if found is None:
                msg = f"Task {job_id} not found"
                return self._journal(request, op.name, error_response(contract, "not_found", msg), key, now)
            job = found
            base = ctx["request"]["base_url"]
            moment = job.moment(now)
            current = moment[1]
            spec = contract.status[current]
            memo = (moment, base)
            if reusable and job.last_status is not None and job.last_status[0] == memo:
                response = reply(spec.status, job.last_status[1])
            else:
                response = render(spec, {**ctx, "job": state.view(job, base, at=now)})
                if reusable:
                    job.last_status = (memo, bytes(response.body))
            state.webhooks.observed(job, current, now)
            note = {"job": job.id, "state": current, **verdict.note}
            return self._journal(request, op.name, response, key, now, **note)

        return handle

    def balance(self, op: Operation) -> Handler:
        contract, state, provider = self.contract, self.state, self.provider

        async def handle(request: Request) -> Response:
            ctx = _request_ctx(request)
            key = _authenticate(contract, ctx)
            if isinstance(key, Response):
                return self._journal(request, op.name, key, None, state.now())
            now = state.now(key)  # the one instant this request is answered at
            verdict = screen(state, contract, request, "balance", op.name, key, now)
            if verdict.response is not None:
                return self._journal(request, op.name, verdict.response, key, now, **verdict.note)
            if contract.balance is None:
                return self._journal(request, op.name, error_response(contract, "route_not_found"), key, now)
            ctx["balance"] = state.balance(provider, key, now)
            return self._journal(request, op.name, render(contract.balance, ctx), key, now, **verdict.note)

        return handle

    def media(self, storage: bool = False) -> Handler:
        """The result file route; with ``media.redirect``, it sends the client on to the storage
        route (``storage=True``), which serves the file."""
        contract, state, provider = self.contract, self.state, self.provider
        needs_key = contract.media_auth and not storage
        redirect = None if storage else contract.media_redirect

        async def handle(request: Request) -> Response:
            job_id = request.path_params["job_id"]
            ctx = _request_ctx(request)
            key: str | None = None
            if needs_key:
                checked = _authenticate(contract, ctx)
                if isinstance(checked, Response):
                    return self._journal(request, "media", checked, None, state.now())
                key = checked
            try:
                job = state.job(provider, job_id, key)
            except UnknownJob:
                now = state.now()
                verdict = screen(state, contract, request, "media", "media", None, now)
                refusal = verdict.response or render(contract.media_expired, ctx)
                return self._journal(request, "media", refusal, None, now, **verdict.note)
            now = state.now(job.key)  # the one instant this request is answered at
            verdict = screen(state, contract, request, "media", "media", job.key, now, job=job)
            if verdict.response is not None:
                return self._journal(request, "media", verdict.response, job.key, now, job=job_id, **verdict.note)
            if job.state_at(now) != "succeeded" or state.media_expired(job, now):
                expired = render(contract.media_expired, ctx)
                return self._journal(request, "media", expired, job.key, now, job=job_id)
            if redirect is not None:
                location = ctx["request"]["base_url"] + redirect[1].replace("{job_id}", job.id)
                response: Response = RedirectResponse(location, status_code=redirect[0])
            else:
                clip = clip_for(job.params.get("aspect_ratio"), job.params.get("duration"), contract.default_aspect)
                response = Clip(clip, media_type=contract.media_type)
            return self._journal(request, "media", response, job.key, now, job=job_id, **verdict.note)

        return handle


def media_routes(contract: Contract) -> list[tuple[str, bool]]:
    """The result file route and, where it redirects, the storage route: (path, is storage).

    Job ids may hold slashes (resource names such as ``models/m/operations/o``), so the id in a
    media path matches across them.
    """
    routes = [(contract.media_path, False)]
    if contract.media_redirect is not None:
        routes.append((contract.media_redirect[1], True))
    return [(path.replace("{job_id}", "{job_id:path}"), storage) for path, storage in routes]


def _routes_for(state: MockState, contract: Contract) -> list[BaseRoute]:
    handlers = _Handlers(state, contract)
    routes: list[BaseRoute] = []
    for op in contract.operations:
        factory = getattr(handlers, op.kind)
        routes.append(Route(op.path, factory(op), methods=[op.method], name=f"{contract.provider}:{op.name}"))
    for path, storage in media_routes(contract):
        name = f"{contract.provider}:{'storage' if storage else 'media'}"
        routes.append(Route(path, handlers.media(storage), methods=["GET", "HEAD"], name=name))
    return routes


def _owner(contracts: Mapping[str, Contract], path: str) -> Contract | None:
    """The contract whose routes share the longest leading path with ``path``."""
    best, best_len = None, 0
    for contract in contracts.values():
        for route in [op.path for op in contract.operations] + [path for path, _ in media_routes(contract)]:
            static = route.split("{")[0]
            common = 0
            for a, b in zip(static.split("/"), path.split("/"), strict=False):
                if a != b:
                    break
                common += 1
            if common > best_len:
                best, best_len = contract, common
    return best if best_len > 1 else None


def _fallback(state: MockState) -> Handler:
    contracts = state.contracts
    listing = sorted(f"{op.method} {op.path}" for c in contracts.values() for op in c.operations)

    async def handle(request: Request) -> Response:
        path, method = request.url.path, request.method
        contract = _owner(contracts, path)
        same_path = [r for r in listing if r.split(" ", 1)[1] == path]
        if contract is None:
            body = {"error": "not_found", "message": f"No route {method} {path}.", "routes": listing}
            response: Response = JSONResponse(body, status_code=404)
        elif same_path:
            msg = f"{method} is not allowed on {path}; use {', '.join(r.split(' ')[0] for r in same_path)}"
            response = error_response(contract, "method_not_allowed", msg)
        else:
            own = ", ".join(f"{op.method} {op.path}" for op in contract.operations)
            response = error_response(contract, "route_not_found", f"No route {method} {path}; this API serves {own}")
        state.record(
            {
                "direction": "inbound",
                "provider": contract.provider if contract else None,
                "operation": None,
                "method": method,
                "path": path,
                "status": response.status_code,
                EXCHANGE: exchange(request, response),
            },
            state.now(),
        )
        return response

    return handle


class _AnyMethod:
    """A handler as an ASGI app: Starlette lets such a route match every method (a function
    route lists its methods, and any other, such as TRACE, got a plain-text 405)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def _crashed(state: MockState) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A bug in the mock still answers in the provider's envelope, saying it is the mock's fault."""

    async def handle(request: Request, exc: Exception) -> Response:
        contract = _owner(state.contracts, request.url.path)
        msg = f"veomock failed on this request ({type(exc).__name__}: {exc}); this is a bug in the mock"
        if contract is None:
            return JSONResponse({"error": "internal", "message": msg}, status_code=500)
        return error_response(contract, "internal", msg)

    return handle


def check_routes(contracts: Mapping[str, Contract]) -> None:
    """Refuse two providers that claim the same route: they could not share one port."""
    seen: dict[tuple[str, str], str] = {}
    for contract in contracts.values():
        media = [("GET", path) for path, _ in media_routes(contract)]
        for method, path in [(op.method, op.path) for op in contract.operations] + media:
            if (method, path) in seen and seen[(method, path)] != contract.provider:
                raise ValueError(f"{method} {path} is claimed by both {seen[(method, path)]} and {contract.provider}")
            seen[(method, path)] = contract.provider


def build_app(state: MockState, control: bool = True, control_token: str | None = None) -> Starlette:
    """The Starlette app serving every contract in ``state`` at its real paths.

    ``control_token``, when given, must come in header ``X-Veomock-Token`` on every control call.
    """
    check_routes(state.contracts)
    routes: list[BaseRoute] = []
    if control:
        from veomock.mocks.control import control_routes

        routes.append(Mount(CONTROL_PREFIX, routes=control_routes(state, token=control_token)))
    for contract in state.contracts.values():
        routes.extend(_routes_for(state, contract))
    fallback = _AnyMethod(_fallback(state))
    routes.append(Route("/{rest:path}", fallback))
    app = _ServedApp(
        RouteIndex(routes),
        _crashed(state),
        routes=routes,
        lifespan=state.webhooks.lifespan,
        exception_handlers={Exception: _crashed(state)},
    )
    # A path no route's pattern matches (one holding a newline, %0A) still gets a provider's answer.
    app.router.default = fallback
    app.state.mock = state
    return app


class _ServedApp(MockApp):
    """The mock's Starlette app, with the contract routes served straight from a :class:`RouteIndex`.

    A request to a contract route skips Starlette's middleware stack: its handler is called here,
    a crash in it still gets the provider-shaped 500 (and is raised on, for the server's log),
    and a transport fault still sends its held response. Every other request (the control API,
    a path no contract route serves) goes through the whole stack and the router.
    """

    def __init__(
        self, index: RouteIndex, crashed: Callable[[Request, Exception], Awaitable[Response]], **options: Any
    ) -> None:
        super().__init__(**options)
        self.index, self.crashed = index, crashed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.index.find(scope) if scope["type"] == "http" else None
        if found is None:
            await super().__call__(scope, receive, send)
            return
        route, params = found
        scope["app"], scope["route"], scope["endpoint"], scope["path_params"] = self, route, route.endpoint, params
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            await (await self.crashed(request, exc))(scope, receive, send)
            raise
        if isinstance(response, FileResponse):  # it opens the file once it has started, or fails before
            await self._file(request, response, send)
        else:
            await response(scope, receive, send)
        await TransportFaults.finish(scope, receive, send)

    async def _file(self, request: Request, response: Response, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await response(request.scope, request.receive, tracked)
        except Exception as exc:
            if not started:
                await (await self.crashed(request, exc))(request.scope, request.receive, send)
            raise


class RouteIndex:
    """Contract routes found without Starlette's router.

    The router tries every route in order, one regular expression each. Here, a route without
    path parameters is found by (method, path) in a dict; a route with them, by the static part
    of its path before the first parameter (up to a ``/``): the request path's leading parts up
    to each ``/`` are looked up, and only the routes filed there are matched, the earliest
    declared first, as the router would. A path under a mount (the control API), and routes
    declared after one this index cannot hold, are left to the router.
    """

    RECENT = 4096  # parameterised paths whose match is kept

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.table: dict[tuple[str, str], Route] = {}
        self.prefixed: dict[str, list[tuple[int, Route]]] = {}
        mounts: list[str] = []
        indexable = True  # until a route this index cannot hold: the router keeps what follows
        for order, route in enumerate(routes):
            if isinstance(route, Mount):
                mounts.append(route.path)
            elif isinstance(route, Route) and "{" not in route.path:
                for method in route.methods or ():
                    self.table.setdefault((method, route.path), route)
            elif isinstance(route, Route) and route.methods and indexable:
                prefix = route.path.split("{", 1)[0]
                if prefix.endswith("/") and prefix != "/":
                    self.prefixed.setdefault(prefix, []).append((order, route))
                else:
                    indexable = False
            else:
                indexable = False
        self.mounts = tuple(mounts)
        self._recent: dict[tuple[str, str], tuple[Route, dict[str, Any]]] = {}

    def find(self, scope: Scope) -> tuple[Route, dict[str, Any]] | None:
        """The route serving this request, and its path parameters; None: the router decides.

        A parameterised path is matched once, then read from a bounded cache: a client polls the
        same status URL many times while its job runs."""
        method, path = scope["method"], scope["path"]
        route = self.table.get((method, path))
        if route is not None:
            return route, {}
        if not self.prefixed or scope.get("root_path") or path.startswith(self.mounts):
            return None
        found = self._recent.get((method, path))
        if found is None:
            found = self._find(method, path)
            if found is None:
                return None
            if len(self._recent) >= self.RECENT:
                del self._recent[next(iter(self._recent))]  # the oldest goes first
            self._recent[(method, path)] = found
        return found[0], dict(found[1])

    def _find(self, method: str, path: str) -> tuple[Route, dict[str, Any]] | None:
        """The first declared parameterised route that matches ``path`` and ``method``, with its params."""
        best: tuple[int, Route, dict[str, Any]] | None = None
        end = path.find("/", 1)
        while end != -1:
            for order, route in self.prefixed.get(path[: end + 1], ()):
                if best is not None and order > best[0]:
                    break
                found = route.path_regex.match(path)
                if found and method in route.methods:  # type: ignore[operator]
                    params = {k: route.param_convertors[k].convert(v) for k, v in found.groupdict().items()}
                    best = (order, route, params)
                    break
            end = path.find("/", end + 1)
        return None if best is None else best[1:]

"""Render a contract response or error into a Starlette response."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from starlette.responses import JSONResponse, Response
from veomock.contracts import Contract, Operation
from veomock.contracts.loader import ContractError
from veomock.contracts.model import ErrorSpec
from veomock.contracts.model import Response as ResponseSpec
from veomock.contracts.templates import Template, compile_template
from veomock.mocks.jsontext import dumps

__all__ = ["FALLBACK", "HINT_HEADER", "error_response", "render", "renderer", "reply", "resolve_error"]

# Where the mock tells the user what to fix when the provider's body must stay exactly as documented.
HINT_HEADER = "X-Veomock-Hint"

# An error a contract does not declare answers as the next one on its chain.
FALLBACK = {
    "malformed_json": "invalid_request",
    "unsupported_media_type": "invalid_request",
    "payload_too_large": "invalid_request",
    "model_not_found": "invalid_request",
    "model_missing": "invalid_request",
    "route_not_found": "not_found",
    "method_not_allowed": "route_not_found",
    "auth_invalid": "auth_missing",
    "concurrency_limited": "rate_limited",
    "rate_limited": "internal",
    "insufficient_balance": "forbidden",
    "forbidden": "auth_invalid",
    "bad_gateway": "internal",
    "service_unavailable": "internal",
    "gateway_timeout": "internal",
}


class _Json(Response):
    """A JSON response with its two headers built directly (the common case: no extra headers)."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int, encoded: bytes | None = None) -> None:
        self.status_code = status_code
        self.background = None
        self.body = encoded if encoded is not None else dumps(content)
        self.raw_headers = [(b"content-length", str(len(self.body)).encode()), (b"content-type", _JSON_TYPE)]


def reply(status: int, body: bytes) -> Response:
    """A JSON response from an already encoded body."""
    return _Json(None, status, body)


_JSON_TYPE = b"application/json"


@lru_cache(maxsize=512)
def _header_template(text: str) -> Template:
    return compile_template(text)


def _build(status: int, body: Any, headers: Mapping[str, str], ctx: Mapping[str, Any]) -> Response:
    if not headers and not isinstance(body, str):
        return _Json(body, status)  # the common case
    rendered = {k: str(_header_template(v).render(ctx)) for k, v in headers.items()}
    if isinstance(body, str):
        media = rendered.pop("content-type", None) or rendered.pop("Content-Type", None) or "text/plain"
        return Response(body, status_code=status, headers=rendered, media_type=media)
    if rendered:
        return JSONResponse(body, status_code=status, headers=rendered)
    return _Json(body, status)


def render(spec: ResponseSpec, ctx: Mapping[str, Any]) -> Response:
    return _build(spec.status, spec.body.render(ctx), spec.headers, ctx)


def renderer(spec: ResponseSpec) -> Callable[[Mapping[str, Any]], Response]:
    """``render(spec, ctx)`` as one function of ``ctx``, for a handler to build once."""
    if spec.headers:
        return lambda ctx: render(spec, ctx)
    body, status = spec.body.renderer(), spec.status

    def render_json(ctx: Mapping[str, Any]) -> Response:
        value = body(ctx)
        return _build(status, value, {}, ctx) if isinstance(value, str) else _Json(value, status)

    return render_json


def resolve_error(contract: Contract, name: str, op: Operation | None = None) -> ErrorSpec:
    """The error ``name`` as route ``op`` answers it (its own, else the contract's), or the next
    on the fallback chain."""
    if op is not None and name in op.errors:
        return op.errors[name]
    seen = name
    while name not in contract.errors:
        if name not in FALLBACK:
            raise ContractError(contract.file, "errors", f"no error {seen!r} and nothing to fall back on")
        name = FALLBACK[name]
    return contract.errors[name]


def error_response(
    contract: Contract,
    name: str,
    message: str | None = None,
    ctx: Mapping[str, Any] | None = None,
    hint: str | None = None,
    op: Operation | None = None,
) -> Response:
    """The contract's error ``name`` (or the next on its fallback chain). ``message`` fills the
    body's ``{{ message }}`` (the contract's own message when None); ``hint`` goes in
    :data:`HINT_HEADER`, outside the provider's body. ``op``: the route answering, where it
    documents an error of its own."""
    spec = resolve_error(contract, name, op)
    full = {"retry_after": 1, **(ctx or {}), "message": message or spec.message or name.replace("_", " ")}
    response = _build(spec.status, spec.body.render(full), spec.headers, full)
    if hint:
        response.headers[HINT_HEADER] = hint
    return response

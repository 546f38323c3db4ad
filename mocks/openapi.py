"""An OpenAPI 3.1 document of one provider, generated from its contract.

:func:`document` covers every route the contract declares (submit, status and balance operations,
and the result media route), the request body schemas with their cross-field rules (folded in as
JSON Schema ``if``/``then``, which OpenAPI 3.1 carries as it is; each rule's message is listed in
the operation's description), every documented response per status code and, for a status
operation, per job state, every error the contract declares (a scenario can inject any of them),
the auth scheme, the callbacks as OpenAPI ``webhooks``, and the documented examples from
``fixtures/``.

Response schemas come from the response templates: a literal is a ``const``, a dict an object
whose keys are required unless the template may drop them (``omit_if_none``), a list an array, a
``$json`` value a string holding JSON, and a placeholder whatever it renders to (``{}``), except
``{{ job.status }}``, which is the provider's name for the state. Users can load the document in
Swagger UI, a client generator or any OpenAPI tool; ``veomock openapi --provider P`` prints it and
``GET /_veomock/openapi/P.json`` serves it with the mock's own address as its server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from veomock.contracts import Contract, Operation
from veomock.contracts.model import ErrorSpec
from veomock.contracts.model import Response as ResponseSpec

__all__ = ["document", "serve_document"]

Variant = tuple[str, ResponseSpec | ErrorSpec, str | None]  # title, answer, the state's name if a state
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_PLACEHOLDER = re.compile(r"^\{\{\s*(.*?)\s*\}\}$")


def _expr(text: str) -> str | None:
    """The expression of a string that is exactly one placeholder, else None."""
    found = _PLACEHOLDER.match(text)
    return found.group(1) if found and text.count("{{") == 1 else None


def _schema(source: Any, status_name: str | None = None) -> dict[str, Any]:
    """The JSON Schema of what a response template renders to."""
    if isinstance(source, dict):
        if set(source) == {"$json"}:
            return {"type": "string", "contentMediaType": "application/json", "contentSchema": _schema(source["$json"])}
        properties = {key: _schema(value, status_name) for key, value in source.items()}
        required = [k for k, v in source.items() if not (isinstance(v, str) and "omit_if_none" in v)]
        return {"type": "object", "properties": properties, "required": required}
    if isinstance(source, list):
        items = [_schema(item, status_name) for item in source]
        return {"type": "array", "items": items[0] if len(items) == 1 else ({"anyOf": items} if items else {})}
    if isinstance(source, str):
        expr = _expr(source)
        if expr is None:
            return {"type": "string"} if "{{" in source else {"const": source}
        if expr == "job.status" and status_name is not None:
            return {"const": status_name}
        return {"description": f"{{{{ {expr} }}}}"}
    return {"const": source}


def _fixtures(provider: str, folder: str) -> list[tuple[str, dict[str, Any]]]:
    path = FIXTURES / provider / folder
    return [(item.stem, json.loads(item.read_text())) for item in sorted(path.glob("*.json"))]


def _examples(items: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {name: {"summary": str(data.get("source", name)), "value": data["body"]} for name, data in items}


def _content(schema: dict[str, Any], media: str = "application/json", examples: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"schema": schema}
    if examples:
        body["examples"] = examples
    return {media: body}


def _headers(spec: ResponseSpec | ErrorSpec) -> dict[str, Any]:
    return {
        name: {"schema": {"type": "string"}, "description": str(value)}
        for name, value in spec.headers.items()
        if name.lower() != "content-type"
    }


def _media_type(spec: ResponseSpec | ErrorSpec) -> str:
    declared = next((v for k, v in spec.headers.items() if k.lower() == "content-type"), None)
    source = spec.body.source
    return declared or ("text/plain" if isinstance(source, str) and "{{" not in source else "application/json")


def _response(description: str, variants: list[Variant], examples: Any) -> dict[str, Any]:
    """One status code's answer: the schema of each variant (a state, an error), as anyOf, per
    media type (an S3-style XML answer and a JSON error may share a status)."""
    by_media: dict[str, list[dict[str, Any]]] = {}
    headers: dict[str, Any] = {}
    for title, spec, state_name in variants:
        by_media.setdefault(_media_type(spec), []).append({"title": title, **_schema(spec.body.source, state_name)})
        headers.update(_headers(spec))
    content: dict[str, Any] = {}
    for media, schemas in by_media.items():
        schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        content.update(_content(schema, media, examples if media == "application/json" else None))
    out: dict[str, Any] = {"description": description, "content": content}
    if headers:
        out["headers"] = headers
    return out


def _errors(contract: Contract) -> dict[str, list[Variant]]:
    by_status: dict[str, list[Variant]] = {}
    for name, spec in contract.errors.items():
        by_status.setdefault(str(spec.status), []).append((name, spec, None))
    return by_status


def _error_examples(contract: Contract, status: str) -> dict[str, Any]:
    chosen = [(n, d) for n, d in _fixtures(contract.provider, "responses") if d.get("operation") == "error"]
    return _examples((n, d) for n, d in chosen if str(d.get("status")) == status)


def _root(expr: Any) -> tuple[str, str]:
    text = str(expr.source).strip("{} ").split("|")[0].strip()
    root, _, name = text.partition(".")
    return root, name


def _parameters(contract: Contract, op: Operation) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"\{(\w+)", op.path)
    ]
    if op.id_from is not None and _root(op.id_from)[0] == "query":
        name = _root(op.id_from)[1]
        params.append({"name": name, "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}})
    if op.kind == "submit":
        seen = set()
        sources = [
            (f"fills body field {field}", expr) for m in op.models for field, expr in contract.models[m].inject.items()
        ]
        for channel in contract.webhook_channels:
            for expr in (channel.url_from, channel.mode_from, channel.filter_from, channel.when_from):
                if expr is not None:
                    sources.append((f"asks for a callback (channel {channel.name})", expr))
        for purpose, expr in sources:
            root, name = _root(expr)
            if root == "header" and name not in seen:
                seen.add(name)
                params.append(
                    {
                        "name": name,
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": purpose,
                    }
                )
    return params


def _rules(contract: Contract, op: Operation) -> str:
    lines = [f"- {rule.message} (rule `{rule.id}`)" for m in op.models for rule in contract.models[m].rules]
    return "\n\nCross-field rules (in the schema as if/then):\n" + "\n".join(lines) if lines else ""


def _with_callback_urls(contract: Contract, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the body fields that ask for a callback marked as URLs, and what they may name."""
    out: dict[str, Any] = json.loads(json.dumps(schema))
    for channel in contract.webhook_channels:
        root, name = _root(channel.url_from)
        node: Any = out
        for part in name.split(".") if root == "body" else ():
            node = node.get("properties", {}).get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node is not out:
            node["format"] = "uri"
            node["description"] = (
                "An absolute http(s) URL to call back; veomock calls loopback only unless told "
                "(veomock serve --webhook-allow HOST[:PORT]|CIDR)."
            )
    return out


def _operation(contract: Contract, op: Operation) -> dict[str, Any]:
    fixtures = _fixtures(contract.provider, "responses")
    out: dict[str, Any] = {
        "operationId": op.name,
        "summary": f"{op.kind} ({', '.join(op.models)})",
        "description": f"{op.method} {op.path}: the {op.kind} operation for {', '.join(op.models)}."
        + _rules(contract, op),
        "parameters": _parameters(contract, op),
    }
    responses: dict[str, Any] = {}
    if op.kind == "submit":
        schemas = [_with_callback_urls(contract, contract.models[m].full_schema) for m in op.models]
        requests = [(n, d) for n, d in _fixtures(contract.provider, "requests") if d.get("operation") == op.name]
        body = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        out["requestBody"] = {"required": True, "content": _content(body, examples=_examples(requests))}
        examples = _examples((n, d) for n, d in fixtures if d.get("operation") == "submit")
        responses[str(contract.submit.status)] = _response(
            "the job was created", [("submit", contract.submit, None)], examples
        )
    elif op.kind == "status":
        by_status: dict[str, list[Variant]] = {}
        for state, spec in contract.status.items():
            by_status.setdefault(str(spec.status), []).append((state, spec, contract.states[state]))
        for status, variants in by_status.items():
            examples = _examples(
                (n, d) for n, d in fixtures if d.get("operation") == "status" and str(d.get("status")) == status
            )
            states = ", ".join(f"{s} ({contract.states[s]})" for s, _, _ in variants)
            responses[status] = _response(f"the job, in one of its states: {states}", variants, examples)
    elif op.kind == "balance" and contract.balance is not None:
        examples = _examples((n, d) for n, d in fixtures if d.get("operation") == "balance")
        responses[str(contract.balance.status)] = _response(
            "the balance", [("balance", contract.balance, None)], examples
        )
    for status, variants in _errors(contract).items():
        if status not in responses:
            names = ", ".join(name for name, _, _ in variants)
            responses[status] = _response(f"an error: {names}", variants, _error_examples(contract, status))
    out["responses"] = responses
    return out


def _media(contract: Contract) -> dict[str, dict[str, Any]]:
    """The result file route (and the storage route it redirects to, where it does)."""
    expired = contract.media_expired
    clip = {
        "description": "the clip",
        "content": {contract.media_type: {"schema": {"type": "string", "contentMediaType": contract.media_type}}},
    }
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    answers = _errors(contract)  # a scenario may inject any of them here too
    answers.setdefault(str(expired.status), []).insert(0, ("expired", expired, None))
    gone = {status: _response("unknown or expired, or an error", v, None) for status, v in answers.items()}

    def route(operation_id: str, responses: dict[str, Any], keyed: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": operation_id,
            "summary": "the result clip",
            "description": "A real H.264 MP4 at a provider-shaped URL on the mock's host, until it expires.",
            "parameters": [job_id],
            "responses": responses,
        }
        if not keyed:
            out["security"] = []
        return out

    responses: dict[str, Any] = {**gone}
    routes: dict[str, dict[str, Any]] = {}
    if contract.media_redirect is not None:
        moved, storage = contract.media_redirect
        routes[storage] = {"get": route("storage", {**responses, "200": clip}, False)}
        location = {"Location": {"schema": {"type": "string"}, "description": f"the storage route, {storage}"}}
        responses[str(moved)] = {"description": "on to the storage route", "headers": location}
    else:
        responses["200"] = clip
    media = route("media", responses, contract.media_auth)
    if contract.media_query:
        name, _, value = contract.media_query.partition("=")
        media["parameters"] = [job_id, {"name": name, "in": "query", "required": False, "schema": {"const": value}}]
    return {contract.media_path: {"get": media}, **routes}


def _security(contract: Contract) -> dict[str, Any]:
    """The auth scheme: the header, and the query parameter where the contract takes the key there too."""
    auth = contract.auth
    note = f" Keys must match {auth.key_pattern}." if auth.key_pattern else ""
    if auth.scheme == "bearer" and auth.header.lower() == "authorization":
        header = {"type": "http", "scheme": "bearer", "description": f"Authorization: Bearer YOUR_API_KEY.{note}"}
    else:
        prefix = "Bearer " if auth.scheme == "bearer" else ""
        description = f"{auth.header}: {prefix}YOUR_API_KEY.{note}"
        header = {"type": "apiKey", "in": "header", "name": auth.header, "description": description}
    schemes = {"apiKey": header}
    query = auth.query
    if query:
        schemes["apiKeyQuery"] = {
            "type": "apiKey",
            "in": "query",
            "name": query,
            "description": f"?{query}=YOUR_API_KEY",
        }
    return schemes


def _webhooks(contract: Contract) -> dict[str, Any]:
    if not contract.webhook_channels:
        return {}
    variants: list[Variant] = [(state, spec, contract.states[state]) for state, spec in contract.status.items()]
    fixtures = [(n, d) for n, d in _fixtures(contract.provider, "responses") if d.get("operation") == "webhook"]
    delivery = contract.webhook_delivery
    success = "exactly 200" if delivery and delivery.success == "200" else "any 2xx"
    out = {}
    for channel in contract.webhook_channels:
        body = _response("the status response of the state reported", variants, _examples(fixtures))["content"]
        out[channel.name] = {
            "post": {
                "summary": f"callback asked for by {channel.url_from.source}",
                "requestBody": {"required": True, "content": body},
                "responses": {"200": {"description": f"received; success is {success}"}},
            }
        }
    return out


def _release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("veomock")
    except PackageNotFoundError:
        return "0"


def document(contract: Contract, base_url: str = "http://127.0.0.1:8000") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``contract``, served at ``base_url``."""
    raw = contract.raw
    paths: dict[str, dict[str, Any]] = {}
    for op in contract.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(contract, op)
    for path, methods in _media(contract).items():
        paths.setdefault(path, {}).update(methods)
    description = str(raw.get("description", "")).strip()
    info = {
        "title": str(raw.get("title", contract.provider)),
        "version": _release(),
        "description": f"{description}\n\nGenerated by veomock from contracts/{contract.provider}.yaml; "
        f"the real API is at {contract.upstream}.",
    }
    security = _security(contract)
    out: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": info,
        "servers": [{"url": base_url, "description": "veomock"}],
        "paths": paths,
        "components": {"securitySchemes": security},
        "security": [{name: []} for name in security],
    }
    webhooks = _webhooks(contract)
    if webhooks:
        out["webhooks"] = webhooks
    return out


def serve_document(contracts: Mapping[str, Contract], request: Request) -> Response:
    """``GET /_veomock/openapi/{provider}.json``: the document, with the mock's own address as its server."""
    from veomock.mocks.hosts import request_host

    name = request.path_params["provider"]
    if name not in contracts:
        known = ", ".join(sorted(contracts))
        return JSONResponse({"error": f"no provider {name!r} is served; use one of {known}"}, status_code=404)
    scope = request.scope
    host = request_host(request.headers.get("host"), scope.get("server"))
    return JSONResponse(document(contracts[name], f"{scope.get('scheme', 'http')}://{host}"))

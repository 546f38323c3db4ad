"""Request checks: what the client sends, against the contract's ``auth``, ``operations`` and
``models.<name>.request``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from veomock.conformance.checks.core import Problem, Run, check, show
from veomock.conformance.facts import body_path, webhook_body_fields
from veomock.conformance.server import Exchange


def _valid_job(run: Run) -> bool:
    return run.scenario.kind != "invalid-request" and bool(run.submits)


def _webhook_fields(run: Run) -> set[str]:
    contract = run.contract
    fields = set(webhook_body_fields(contract, run.scenario.model))
    for channel in contract.webhook_channels:
        for template in (channel.when_from, channel.mode_from, channel.filter_from):
            path = body_path(template)
            if path:
                fields.add(path)
    return fields


def _strip(body: Any, paths: Iterable[str]) -> Any:
    body = json.loads(json.dumps(body))
    for path in paths:
        node = body
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return body


@check(
    "request.body",
    "the submitted body is the job's request, valid against the model's schema",
    _valid_job,
    cites=("models", "webhooks.channels"),
)
def _body(run: Run) -> Iterator[Problem]:
    from veomock.mocks.validation import validator_for

    ignore = _webhook_fields(run) if run.job.webhook_url else set()
    wanted = _strip(run.job.request, ignore)
    for exchange in run.submits:
        # A traffic-only program chooses its own model: judge the body by the model it asked for.
        chosen = _model_of(run, exchange) if run.traffic_only else None
        model = run.contract.models[chosen or run.scenario.model]
        validator = validator_for(model)  # compiled once per model, as the mock does
        if not isinstance(exchange.body, dict):
            yield Problem(
                observed=f"body {show(exchange.body)}",
                expected="a JSON object",
                path=f"models.{model.name}.request.schema",
                fix="send the job's request as a JSON object",
            )
            continue
        invalid = validator.check(exchange.body)
        if invalid is not None:
            where = (
                f"models.{model.name}.request.rules ({invalid.rule})"
                if invalid.rule
                else (f"models.{model.name}.request.schema")
            )
            yield Problem(
                observed=f"body {show(exchange.body)}: {invalid.message}",
                expected="a body valid against the model's schema and rules",
                path=where,
                fix="send the job's request unchanged",
            )
        elif not run.traffic_only and _strip(exchange.body, ignore) != wanted:
            yield Problem(
                observed=f"body {show(exchange.body)}",
                expected=f"the job's request {show(run.job.request)}",
                path=f"models.{model.name}.request.schema",
                fix="send every field of the job's request, unchanged",
            )


@check("request.auth", "every API request carries the key in the contract's auth header and scheme", cites=("auth",))
def _auth(run: Run) -> Iterator[Problem]:
    auth = run.contract.auth
    wanted = f"Bearer {run.api_key}" if auth.scheme == "bearer" else run.api_key
    for exchange in run.api:
        value = exchange.headers.get(auth.header.lower())
        if value is None and auth.query is not None:  # the key may come in the query instead
            value = exchange.query.get(auth.query)
        ok = value is not None and (
            value.strip().lower() == wanted.lower() if auth.scheme == "bearer" else value.strip() == wanted
        )
        if not ok:
            yield Problem(
                observed=f"{exchange.method} {exchange.path} sent {auth.header}: {value!r}",
                expected=f"{auth.header}: {wanted!r}",
                path="auth.header" if value is None else "auth.scheme",
                fix=f"send '{auth.header}: {wanted.replace(run.api_key, '<API key>')}' on every call",
            )
            return


@check(
    "request.content_type",
    "submits send Content-Type: application/json",
    lambda run: bool(run.submits),
    cites=("operations",),
)
def _content_type(run: Run) -> Iterator[Problem]:
    for exchange in run.submits:
        ctype = exchange.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            index = next(i for i, op in enumerate(run.contract.operations) if op.name == exchange.operation)
            yield Problem(
                observed=f"Content-Type: {ctype or '(none)'}",
                expected="Content-Type: application/json",
                path=f"operations[{index}]",
                fix="send the body as JSON with Content-Type: application/json",
            )
            return


def _model_of(run: Run, exchange: Exchange) -> str | None:
    """The model a request asked for: its route's only model, or the one ``model_from`` names."""
    op = next((op for op in run.contract.operations if op.name == exchange.operation), None)
    if op is None:
        return None
    if len(op.models) == 1:
        return op.models[0]
    if op.model_from is not None:
        named = op.model_from.render({"body": exchange.body, "header": exchange.headers})
        return str(named) if named in op.models else None
    return None


@check(
    "request.routes",
    "every request uses a route and method the contract declares, for the job's model",
    cites=("operations",),
)
def _routes(run: Run) -> Iterator[Problem]:
    operations = run.contract.operations
    for exchange in run.exchanges:
        if exchange.kind is None:
            known = ", ".join(f"{op.method} {op.path}" for op in operations)
            yield Problem(
                observed=f"{exchange.method} {exchange.path} (answered {exchange.status})",
                expected=f"one of: {known}",
                path="operations",
                fix="use the documented paths and methods",
            )
            return
        if run.traffic_only or exchange.kind not in ("submit", "status"):
            continue
        index, op = next((i, op) for i, op in enumerate(operations) if op.name == exchange.operation)
        if run.scenario.model not in op.models:
            yield Problem(
                observed=f"{exchange.method} {exchange.path} serves {', '.join(op.models)}",
                expected=f"the {exchange.kind} route of {run.scenario.model}",
                path=f"operations[{index}].models",
                fix=f"use the route that serves the job's model ({run.scenario.model})",
            )
            return

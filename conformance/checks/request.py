"""Request checks: what the client sends, against the contract's ``auth``, ``operations`` and
``models.<name>.request``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from veomock.conformance.checks.core import Problem, Run, check, show
from veomock.conformance.facts import body_path, webhook_body_fields


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
    model = run.contract.models[run.scenario.model]
    from veomock.mocks.validation import RequestValidator

    validator = RequestValidator(model)
    ignore = _webhook_fields(run) if run.job.webhook_url else set()
    wanted = _strip(run.job.request, ignore)
    for exchange in run.submits:
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
        elif _strip(exchange.body, ignore) != wanted:
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


@check("request.routes", "every request uses a route and method the contract declares", cites=("operations",))
def _routes(run: Run) -> Iterator[Problem]:
    for exchange in run.exchanges:
        if exchange.kind is None:
            known = ", ".join(f"{op.method} {op.path}" for op in run.contract.operations)
            yield Problem(
                observed=f"{exchange.method} {exchange.path} (answered {exchange.status})",
                expected=f"one of: {known}",
                path="operations",
                fix="use the documented paths and methods",
            )
            return

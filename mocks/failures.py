"""Every failure mode of every provider, from the contracts: ``veomock failures [--json]``.

For each provider: each HTTP error (status, headers, body as the mock renders it), each task
failure code (and the status body a poll then shows), each transport fault, and the rate limits,
with the magic inputs that trigger them and the equivalent control-API rule and chaos profile.
The bodies are rendered by the same code that answers requests, so they are what a client sees.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

from veomock.contracts import Contract, Model
from veomock.mocks.faults import error_for
from veomock.mocks.ids import id_maker
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.scenarios import FAULTS, Action

__all__ = ["catalogue", "example_body", "magic_key", "render_markdown", "render_text"]

BASE = "http://127.0.0.1:8000"
_START = 1_767_965_610.0
_TRANSPORT = {
    "delay=3": "the normal answer, 3 s (real time) late",
    "hang": "no answer at all: the connection stays open until the client times out and closes it",
    "reset": "the connection is reset (TCP RST) before any response, after the work (a submit made its job)",
    "truncate": "status and headers, then half the body, then the connection closes",
    "malformed": "the normal status with a body that is not JSON (the first half of the real one)",
}


def _minimal(schema: Mapping[str, Any]) -> Any:
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema or "required" in schema:
        props = schema.get("properties", {})
        return {name: _minimal(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [_minimal(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return "x" * max(1, int(schema.get("minLength", 1)))


def _put(body: Any, path: list[str], value: Any) -> None:
    node = body
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            index = int(part)
            while len(node) <= index:
                node.append({})
            if last:
                node[index] = value
            node = node[index]
        else:
            if last:
                node[part] = value
            node = node.setdefault(part, {})


def example_body(model: Model, prompt: str = "a red kite over the sea") -> dict[str, Any] | None:
    """A small valid request body for ``model`` with ``prompt`` where the model reads it, or None."""
    body = _minimal(model.full_schema)
    if not isinstance(body, dict):
        return None
    source = str(model.params["prompt"].source).strip("{} ").split("|")[0].strip()
    root, _, rest = source.partition(".")
    if root != "body" or not rest:
        return None
    _put(body, rest.split("."), prompt)
    from veomock.mocks.validation import RequestValidator

    return body if RequestValidator(model).is_valid(body) else None


def magic_key(contract: Contract, directive: str) -> str:
    """An API key that passes the contract's key check and carries ``veomock-<directive>``."""
    key = f"veomock-{directive}"
    pattern = contract.auth.key_pattern
    if pattern and not re.search(pattern, key):
        prefix = str(contract.raw["auth"].get("example_key", "sk-test"))
        key = f"{prefix}-{key}"
    return key


def _quote(code: Any) -> str:
    return str(code).replace("%", "%25").replace(" ", "%20").replace(",", "%2C")


def _triggers(contract: Contract, directive: str, action: dict[str, Any], chaos: str) -> dict[str, Any]:
    return {
        "prompt": f"veomock:{directive}",
        "key": magic_key(contract, directive),
        "rule": {"provider": contract.provider, "operation": "submit", "times": 1, "action": action},
        "chaos": {"seed": 1, "provider": contract.provider, "faults": {chaos: 1.0}},
    }


def _submit(contract: Contract) -> tuple[Any, Model]:
    op = contract.operations_of("submit")[0]
    return op, contract.models[op.models[0]]


def _status_body(contract: Contract, model: Model, outcome: Outcome) -> Any:
    body = example_body(model) or {}
    ctx: dict[str, Any] = {"body": body, "header": {}, "query": {}, "path": {}, "request": {"base_url": BASE}}
    params = {name: expr.render(ctx) for name, expr in model.params.items()}
    job_id = id_maker(contract.raw["job_id"]["format"])(random.Random(0), _START, model.name)
    timeline = [(_START, "queued"), (_START + 5, "running"), (_START + 95, outcome.state)]
    job = Job(
        job_id, contract.provider, model.name, "key", "key", params, model.price(params), _START, timeline, outcome
    )
    view = job.view(_START + 100, contract.states, contract.media_type)
    return contract.status[outcome.state].body.render({**ctx, "job": view})


def _http_errors(contract: Contract) -> list[dict[str, Any]]:
    out = []
    for name, spec in contract.errors.items():
        response = error_for(contract, Action(error=name))
        raw = bytes(response.body)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        out.append(
            {
                "name": name,
                "status": spec.status,
                "retryable": spec.retryable,
                "headers": headers,
                "body": body,
                "source": spec.source,
                "evidence": spec.evidence,
                **_triggers(contract, f"error={name}", {"error": name}, f"error:{name}"),
                "client_sees": f"HTTP {spec.status} at once, body {json.dumps(body, ensure_ascii=False)}",
            }
        )
    return out


def _task_failures(contract: Contract, model: Model) -> list[dict[str, Any]]:
    refunds = set(contract.billing.get("refund_states", []))
    out = []
    for failure in contract.failures:
        outcome = Outcome(failure.state, failure.code, failure.message)
        shown = contract.states[failure.state]
        refund = failure.refund if failure.refund is not None else failure.state in refunds
        out.append(
            {
                "code": failure.code,
                "state": failure.state,
                "status": shown,
                "message": failure.message,
                "refunded": refund,
                "source": failure.source,
                **_triggers(contract, f"fail={_quote(failure.code)}", {"fail": failure.code}, f"fail:{failure.code}"),
                "status_body": _status_body(contract, model, outcome),
                "client_sees": f"the submit succeeds; once the job ends, polling shows status {shown!r} "
                f"with code {failure.code!r}" + ("; the charge is refunded" if refund else ""),
            }
        )
    return out


def _transport(contract: Contract) -> list[dict[str, Any]]:
    out = []
    for directive, seen in _TRANSPORT.items():
        name, _, value = directive.partition("=")
        action: dict[str, Any] = {name: float(value)} if value else {name: True}
        out.append(
            {"fault": name, **_triggers(contract, directive, action, directive.replace("=", ":")), "client_sees": seen}
        )
    assert {t["fault"] for t in out} == {"delay", *FAULTS}
    return out


def catalogue(contracts: Mapping[str, Contract]) -> list[dict[str, Any]]:
    """Every failure mode of every contract, as data (what ``veomock failures --json`` prints)."""
    out = []
    for name, contract in contracts.items():
        op, model = _submit(contract)
        limits = contract.rate_limits
        limited = error_for(contract, Action(error="rate_limited"))
        out.append(
            {
                "provider": name,
                "title": contract.title,
                "submit": {
                    "method": op.method,
                    "path": op.path,
                    "auth_header": contract.auth.header,
                    "scheme": contract.auth.scheme,
                    "body": example_body(model),
                },
                "http_errors": _http_errors(contract),
                "task_failures": _task_failures(contract, model),
                "transport": _transport(contract),
                "limits": {k: limits.get(k) for k in ("requests_per_minute", "concurrent_jobs", "retry_after")}
                | {"status": limited.status_code, "source": limits.get("source")},
            }
        )
    return out


def _one_line(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_text(entries: list[dict[str, Any]]) -> str:
    lines = [
        "Every trigger works three ways: the magic prompt token (anywhere in the job's prompt), the",
        "magic API key, or a rule: POST /_veomock/scenarios {RULE}. Chaos: POST /_veomock/chaos.",
    ]
    for p in entries:
        sub = p["submit"]
        head = f"{p['provider']} ({p['title']}): {sub['method']} {sub['path']}, key in {sub['auth_header']}"
        lines += ["", head]
        lines.append("  HTTP errors")
        for e in p["http_errors"]:
            lines.append(f"    {e['name']:<22} {e['status']}  prompt {e['prompt']}  key {e['key']}")
            headers = "".join(f"{k}: {v}; " for k, v in e["headers"].items())
            lines.append(f"      {headers}body {_one_line(e['body'])}")
        lines.append("  Task failures (the submit succeeds; polling shows the failure)")
        for f in p["task_failures"]:
            refund = "refunded" if f["refunded"] else "not refunded"
            shown = f"{f['state']} (status {f['status']!r}, {refund})"
            lines.append(f"    {f['code']!s:<22} {shown}  prompt {f['prompt']}  key {f['key']}")
            lines.append(f"      poll body {_one_line(f['status_body'])}")
        lines.append("  Transport faults")
        for t in p["transport"]:
            lines.append(f"    {t['fault']:<10} prompt {t['prompt']:<18} {t['client_sees']}")
        lim = p["limits"]
        retry = lim["retry_after"] if lim["retry_after"] is not None else "none"
        lines.append(
            f"  Limits: {lim['requests_per_minute'] or 'no'} requests/min, "
            f"{lim['concurrent_jobs'] or 'no'} concurrent jobs, Retry-After {retry}; "
            f"over a limit: HTTP {lim['status']} (change with POST /_veomock/limits)"
        )
    return "\n".join(lines)


def render_markdown(entries: list[dict[str, Any]]) -> str:
    """Tables for the README cookbook."""
    out: list[str] = []
    for p in entries:
        out += [
            "",
            f"#### {p['provider']}",
            "",
            "| failure | what the client sees | magic prompt | magic API key |",
            "|---|---|---|---|",
        ]
        for e in p["http_errors"]:
            seen = f"HTTP {e['status']} `{_one_line(e['body'])}`".replace("|", "\\|")
            out.append(f"| `{e['name']}` | {seen} | `{e['prompt']}` | `{e['key']}` |")
        for f in p["task_failures"]:
            seen = f"job ends {f['state']}, status `{f['status']}`, code `{f['code']}`"
            out.append(f"| task `{f['code']}` | {seen} | `{f['prompt']}` | `{f['key']}` |")
    return "\n".join(out).strip() + "\n"

"""What the suite reads from a contract, in one place: routes, keys, webhook fields, result paths.

Nothing here names a provider; every answer comes from the contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from veomock.contracts import Contract, Model, Operation
from veomock.contracts.templates import Template
from veomock.mocks.har import extract

__all__ = [
    "ResultPaths",
    "api_key",
    "auth_headers",
    "body_path",
    "extract",
    "result_paths",
    "status_operation",
    "submit_operation",
    "webhook_body_fields",
]

_BODY_REF = re.compile(r"^\{\{\s*body\.([A-Za-z0-9_.-]+)\s*(\|.*)?\}\}$")
_KEY_CANDIDATES = (
    "veomock-conformance-key",
    "sk-veomock-conformance-key",
    "veomock_conformance_key_0123456789",
)


def body_path(template: Template | None) -> str | None:
    """``body.a.b`` for a template that reads exactly one body field, else None."""
    if template is None or not isinstance(template.source, str):
        return None
    match = _BODY_REF.match(template.source.strip())
    return match.group(1) if match else None


def _operation(contract: Contract, kind: str, model: Model | str) -> Operation:
    name = model if isinstance(model, str) else model.name
    for op in contract.operations_of(kind):
        if name in op.models:
            return op
    raise KeyError(f"{contract.provider} has no {kind} operation for model {name!r}")


def submit_operation(contract: Contract, model: Model | str) -> Operation:
    return _operation(contract, "submit", model)


def status_operation(contract: Contract, model: Model | str) -> Operation:
    return _operation(contract, "status", model)


def api_key(contract: Contract, suffix: str = "") -> str:
    """A key the mock accepts for this contract (it must match ``auth.key_pattern`` if any)."""
    pattern = contract.auth.key_pattern
    example = contract.raw["auth"].get("example_key")
    for candidate in ([str(example)] if example else []) + list(_KEY_CANDIDATES):
        key = candidate + suffix
        if pattern is None or re.search(pattern, key):
            return key
    raise ValueError(
        f"{contract.provider}: none of {', '.join(_KEY_CANDIDATES)} matches auth.key_pattern {pattern!r}; "
        "add a candidate to conformance/facts.py"
    )


def auth_headers(contract: Contract, key: str) -> dict[str, str]:
    value = f"Bearer {key}" if contract.auth.scheme == "bearer" else key
    return {contract.auth.header: value}


def webhook_body_fields(contract: Contract, model: Model | str | None = None) -> list[str]:
    """Dotted body paths that carry a webhook URL (from ``webhooks.channels[].url_from``)."""
    name = model if isinstance(model, str) or model is None else model.name
    out = []
    for channel in contract.webhook_channels:
        if name is not None and channel.models and name not in channel.models:
            continue
        path = body_path(channel.url_from)
        if path:
            out.append(path)
    return out


class ResultPaths:
    """The contract's ``result`` section: where a client finds what it reports.

    Paths are dotted; ``*`` walks every item of a list and ``$json`` parses a JSON string.
    """

    def __init__(self, raw: Mapping[str, Any], where: str = "result") -> None:
        self.raw = dict(raw)
        self.where = where
        self.job_id: str = raw["job_id"]
        self.urls: str = raw["urls"]
        self.failure_code: str = raw["failure_code"]
        self.failure_message: str | None = raw.get("failure_message")

    def yaml_path(self, key: str) -> str:
        return f"{self.where}.{key}"


def result_paths(contract: Contract) -> ResultPaths:
    raw = contract.raw.get("result")
    if raw is None:
        raise KeyError(f"{contract.file}: the contract has no `result` section (see contracts/FORMAT.md)")
    return ResultPaths(raw)

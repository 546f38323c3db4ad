"""The contract model: one typed, validated view of a provider contract, read by mocks and suite."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from veomock.contracts.templates import Template

__all__ = [
    "CANONICAL_STATES",
    "TERMINAL_STATES",
    "Auth",
    "Contract",
    "ErrorSpec",
    "FailureCode",
    "Model",
    "Operation",
    "Price",
    "Response",
    "Rule",
    "WebhookChannel",
    "WebhookDelivery",
    "WebhookUnsupported",
]

CANONICAL_STATES = ("queued", "running", "succeeded", "failed", "error")
TERMINAL_STATES = frozenset({"succeeded", "failed", "error"})


@dataclass(frozen=True)
class Response:
    status: int
    body: Template
    headers: dict[str, str]
    path: str  # where it lives in the contract, for messages


@dataclass(frozen=True)
class ErrorSpec:
    name: str
    status: int
    body: Template
    headers: dict[str, str]
    message: str | None
    retryable: bool
    source: str
    evidence: str


@dataclass(frozen=True)
class Rule:
    id: str
    if_: dict[str, Any]
    then: dict[str, Any]
    message: str
    source: str


@dataclass(frozen=True)
class Price:
    when: dict[str, Any]
    amount: float | None
    per_second: float | None

    def matches(self, params: dict[str, Any]) -> bool:
        for name, value in self.when.items():  # noqa: SIM110 (a plain loop: this runs on every submit)
            if params.get(name) != value:
                return False
        return True

    def cost(self, params: dict[str, Any]) -> float:
        if self.amount is not None:
            return self.amount
        return round((self.per_second or 0.0) * float(params.get("duration") or 0), 6)


@dataclass(frozen=True)
class SourceJob:
    """A request that builds on an earlier job (an extension): where it names that job, which
    models' jobs it accepts, and the failure code of a job built on one that is unknown, of
    another model, unfinished or expired."""

    id_from: Template
    models: tuple[str, ...]
    fail: str | int
    source: str


@dataclass(frozen=True)
class Model:
    name: str
    schema: dict[str, Any]
    rules: tuple[Rule, ...]
    inject: dict[str, Template]
    params: dict[str, Template]
    prices: tuple[Price, ...]
    source: str
    source_job: SourceJob | None = field(default=None, compare=False)

    @property
    def full_schema(self) -> dict[str, Any]:
        """The request schema with every cross-field rule folded in as if/then."""
        if not self.rules:
            return self.schema
        rules = [{"if": r.if_, "then": r.then} for r in self.rules]
        return {**self.schema, "allOf": [*self.schema.get("allOf", []), *rules]}

    def price(self, params: dict[str, Any]) -> float:
        for price in self.prices:
            if price.matches(params):
                return price.cost(params)
        return 0.0


_READ = re.compile(r"\{\{\s*(path|query)\.([A-Za-z0-9_]+)[^}]*\}\}")


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str
    method: str
    path: str
    models: tuple[str, ...]
    model_from: Template | None
    id_from: Template | None
    source: str
    # Errors this route answers with a body of its own (its page documents another text).
    errors: dict[str, ErrorSpec] = field(default_factory=dict, compare=False)

    def locate(self, job_id: str) -> tuple[str, dict[str, str]]:
        """The URL path and query that ask this status operation for ``job_id``: ``id_from``
        read backwards, be it one read (``path.id``, ``query.taskId``) or a template of reads the
        id matches (``models/{{ path.model }}/operations/{{ path.operation }}``)."""
        source = str(self.id_from.source if self.id_from is not None else "")
        if "{{" not in source:
            source = "{{ " + source + " }}"
        pattern, last, reads = "", 0, []
        for match in _READ.finditer(source):
            pattern += re.escape(source[last : match.start()]) + f"(?P<{match.group(2)}>.+?)"
            reads.append((match.group(1), match.group(2)))
            last = match.end()
        found = re.fullmatch(pattern + re.escape(source[last:]), job_id)
        values = found.groupdict() if found else {name: job_id for _, name in reads}
        path, query = self.path, {}
        for root, name in reads:
            placeholder = re.search(r"\{" + name + r"(?::[a-z]+)?\}", path) if root == "path" else None
            if placeholder is not None:
                path = path.replace(placeholder.group(0), values[name])
            elif root == "query":
                query[name] = values[name]
        return path, query


@dataclass(frozen=True)
class Auth:
    header: str
    scheme: str
    key_pattern: str | None
    source: str
    query: str | None = None  # a query parameter that may carry the key instead of the header

    @cached_property
    def header_key(self) -> str:
        """The header's name as ASGI servers hand it over: lower case."""
        return self.header.lower()

    @cached_property
    def key_re(self) -> re.Pattern[str] | None:
        """``key_pattern``, compiled."""
        return re.compile(self.key_pattern) if self.key_pattern else None


@dataclass(frozen=True)
class FailureCode:
    code: str | int
    message: str
    state: str
    refund: bool | None
    source: str


@dataclass(frozen=True)
class WebhookChannel:
    name: str
    url_from: Template
    events: str
    mode_from: Template | None
    modes: dict[str, str]
    filter_from: Template | None
    https_only: bool
    headers: dict[str, Template]
    models: tuple[str, ...]
    rejected: str | None
    source: str
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    when_from: Template | None = None
    when_in: tuple[Any, ...] = ()


@dataclass(frozen=True)
class WebhookDelivery:
    """How callbacks are delivered: provider seconds to answer, retry delays, what counts as success."""

    timeout: float
    retry_delays: tuple[float, ...]
    success: str  # "2xx" or "200"
    headers: dict[str, Template]
    source: str

    def succeeded(self, status: int) -> bool:
        return status == 200 if self.success == "200" else 200 <= status < 300


@dataclass(frozen=True)
class WebhookUnsupported:
    """Where no webhook is supported: what marks a webhook attempt, and the error that answers it."""

    detect: tuple[Template, ...]
    rejected: str
    source: str


@dataclass(frozen=True)
class Contract:
    """A loaded contract with its variants applied. ``raw`` keeps the YAML as a dict."""

    provider: str
    title: str
    upstream: str
    file: Path
    raw: dict[str, Any]
    variants: dict[str, str]
    auth: Auth
    models: dict[str, Model]
    operations: tuple[Operation, ...]
    states: dict[str, str]
    timing: dict[str, tuple[float, float]]
    poll_interval: float | None
    first_poll_after: float | None
    submit: Response
    status: dict[str, Response]
    balance: Response | None
    errors: dict[str, ErrorSpec]
    failures: tuple[FailureCode, ...]
    media_path: str
    media_type: str
    media_expires_after: float | None
    media_expired: Response
    default_aspect: str
    billing: dict[str, Any]
    rate_limits: dict[str, Any]
    webhooks: dict[str, Any]
    webhook_channels: tuple[WebhookChannel, ...] = field(default=())
    webhook_delivery: WebhookDelivery | None = None
    webhook_unsupported: WebhookUnsupported | None = None
    media_query: str = ""  # appended to every result URL (``alt=media``)
    media_auth: bool = False  # the result file route asks for the API key, as the API routes do
    media_redirect: tuple[int, str] | None = None  # (status, storage path with {job_id}) it redirects to

    def media_url(self, job_id: str) -> str:
        """The path (and query) of a job's result file, as status bodies give it."""
        path = self.media_path.replace("{job_id}", job_id)
        return f"{path}?{self.media_query}" if self.media_query else path

    def error(self, name: str) -> ErrorSpec:
        return self.errors[name]

    def failure(self, code: str | int) -> FailureCode | None:
        for failure in self.failures:
            if str(failure.code) == str(code):
                return failure
        return None

    def operations_of(self, kind: str) -> list[Operation]:
        return [op for op in self.operations if op.kind == kind]

    def variant_choices(self) -> dict[str, list[str]]:
        return {name: list(v["options"]) for name, v in self.raw.get("variants", {}).items()}

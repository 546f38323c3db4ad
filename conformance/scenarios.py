"""Scenarios, generated from a contract: a request, how the provider behaves, what the client must report.

A :class:`Scenario` is data (it round-trips through JSON for replay files). :func:`catalogue`
lists a deterministic set covering every behaviour the contract documents: success, every
failure code, every refusing HTTP error, transient 429 and 5xx on submit and on status (with and
without Retry-After), errors that never stop, a job that never ends, an invalid request, webhook
duplicates, reordering, delay and loss, and each documented variant. :func:`scenarios` is the
Hypothesis strategy behind exploration: it draws the request, the timings and the fault counts,
and shrinks a failure to a minimal scenario.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from veomock.conformance.examples import example_body
from veomock.conformance.facts import webhook_body_fields
from veomock.conformance.protocol import Capabilities
from veomock.contracts import Contract, Model, load
from veomock.mocks.media import MEDIA_DIR
from veomock.mocks.scenarios import FAULTS
from veomock.mocks.validation import validator_for

if TYPE_CHECKING:
    import jsonschema
    from hypothesis import strategies as st

__all__ = [
    "CATEGORY_OF_ERROR",
    "KINDS",
    "NOT_TRAFFIC",
    "TRANSPORT_FAULTS",
    "Scenario",
    "catalogue",
    "documented_requests",
    "example_invalid_request",
    "example_request",
    "expected_categories",
    "explored_id",
    "invalid_fixtures",
    "scenarios",
    "without_webhooks",
]

KINDS = (
    "success",
    "job-failure",
    "refused",
    "transient",
    "transport",
    "persistent",
    "hang",
    "invalid-request",
    "expired",
    "webhook",
)
TRANSPORT_FAULTS = FAULTS  # reset, hang, truncate, malformed: mocks/faults.py, on one request each
# Kinds that a traffic-only program cannot be graded on, and why.
NOT_TRAFFIC = {
    "invalid-request": "the program submits its own request, not the job's invalid one",
    "hang": "judging the give-up needs the job's timeout and the outcome's category",
    "webhook": "the program is given no webhook URL",
    "expired": "judging it needs the outcome's category",
}
# Client-facing category of a refusal, by the meta-schema's error vocabulary; by status otherwise.
CATEGORY_OF_ERROR = {
    "invalid_request": "invalid_request",
    "malformed_json": "invalid_request",
    "model_not_found": "invalid_request",
    "webhook_not_supported": "invalid_request",
    "auth_missing": "auth",
    "auth_invalid": "auth",
    "forbidden": "auth",
    "insufficient_balance": "insufficient_balance",
    "spend_limit_exceeded": "insufficient_balance",
    "rate_limited": "rate_limited",
    "concurrency_limited": "rate_limited",
}
_CATEGORY_OF_STATUS = {
    400: "invalid_request",
    401: "auth",
    402: "insufficient_balance",
    403: "auth",
    429: "rate_limited",
}
_REFUSING = (400, 401, 402, 403)
HOOK_PATH = "/veomock-hook"
FIXTURES = MEDIA_DIR.parent  # the installed fixtures: documented requests per provider
FOREVER = 1 << 20


@dataclass(frozen=True)
class Scenario:
    """One run of a client: the job, the provider's behaviour, and what the client must report."""

    id: str
    provider: str
    model: str
    kind: str
    request: dict[str, Any]
    variants: dict[str, str] = field(default_factory=dict)
    timing: tuple[float, float] = (1.0, 30.0)  # provider seconds queued, then running
    outcome: dict[str, Any] = field(default_factory=lambda: {"state": "succeeded"})
    rules: tuple[dict[str, Any], ...] = ()  # fault rules, in the mock's scenario-rule JSON shape
    webhook: dict[str, Any] | None = None  # a delivery policy action, e.g. {"webhook": "duplicate"}
    use_webhook: bool = False  # the job gives the client a webhook URL
    timeout: float = 900.0  # the client's own timeout, provider seconds
    expect: dict[str, Any] = field(default_factory=lambda: {"status": "succeeded"})
    note: str = ""
    expire_media: bool = False  # the result URLs expire before the client's first download

    @property
    def fault(self) -> tuple[str, str] | None:
        """(operation, fault) of a transport-fault scenario."""
        if self.kind != "transport":
            return None
        rule = self.rules[0]
        return rule["operation"], next(f for f in TRANSPORT_FAULTS if rule["action"].get(f))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["timing"] = list(self.timing)
        out["rules"] = list(self.rules)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scenario:
        data = dict(data)
        data["timing"] = tuple(data.get("timing", (1.0, 30.0)))
        data["rules"] = tuple(data.get("rules", ()))
        return cls(**data)

    def plan(self) -> dict[str, Any]:
        """What the harness arms before the client starts."""
        out: dict[str, Any] = {"timing": self.timing, "outcome": self.outcome, "rules": list(self.rules)}
        if self.webhook:
            out["webhook"] = self.webhook
        if self.expire_media:
            out["expire_media"] = True
        return out

    @property
    def key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


def expected_categories(contract: Contract, error: str) -> list[str]:
    """The category PROTOCOL.md gives a refusal: by what the error means where the contract names
    it (a balance error is insufficient_balance even when its status is 403), else by status."""
    if error in CATEGORY_OF_ERROR:
        return [CATEGORY_OF_ERROR[error]]
    spec = contract.errors.get(error)
    status = spec.status if spec else 400
    category = _CATEGORY_OF_STATUS.get(status, "unavailable" if status >= 500 else None)
    return [category] if category else []


def _failure_categories(contract: Contract, state: str) -> list[str]:
    if contract.states["failed"] != contract.states["error"]:
        return [state]
    return ["error", "failed"]


def example_request(contract: Contract, model: Model | str) -> dict[str, Any]:
    """The minimal valid request for ``model`` (Hypothesis's shrunk example: deterministic)."""
    name = model if isinstance(model, str) else model.name
    body: dict[str, Any] = json.loads(example_body(contract.provider, json.dumps(contract.variants), name, False))
    return without_webhooks(contract, name, body)


def without_webhooks(contract: Contract, model: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the fields that ask for a webhook: no callback unless a scenario wants one."""
    body = json.loads(json.dumps(body))
    for path in webhook_body_fields(contract, model):
        node: Any = body
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return body


def example_invalid_request(contract: Contract, model: Model | str) -> dict[str, Any]:
    """A minimal invalid request, breaking a cross-field rule when the model has one."""
    name = model if isinstance(model, str) else model.name
    body: dict[str, Any] = json.loads(example_body(contract.provider, json.dumps(contract.variants), name, True))
    return body


def _every_state_seen(contract: Contract, timing: tuple[float, float]) -> tuple[float, float]:
    """Timing under which a client polling at the documented interval sees every state: still
    queued at its first poll, running for at least one poll after that."""
    interval = contract.poll_interval or 5.0
    first = contract.first_poll_after or 0.0
    return max(timing[0], first + interval / 2), max(timing[1], 2 * interval)


def _submits(contract: Contract, folder: str) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(model, file stem, body) of each submit in ``fixtures/<provider>/<folder>`` whose model
    the contract serves."""
    for path in sorted((FIXTURES / contract.provider / folder).glob("*.json")):
        data = json.loads(path.read_text())
        op = next((op for op in contract.operations if op.name == data.get("operation")), None)
        if op is None or op.kind != "submit":
            continue
        body = data.get("body")
        model = op.models[0] if len(op.models) == 1 else op.model_from.render({"body": body}) if op.model_from else None
        if model in contract.models and isinstance(body, dict):
            yield str(model), path.stem, body


@lru_cache(maxsize=64)
def _documented(provider: str, variants: str) -> tuple[tuple[str, str, str], ...]:
    contract = load(provider, json.loads(variants) or None)
    out, seen = [], set()
    for model, stem, body in _submits(contract, "requests"):
        body = without_webhooks(contract, model, body)
        text = json.dumps(body, sort_keys=True)
        if (model, text) not in seen and validator_for(contract.models[model]).check(body) is None:
            seen.add((model, text))
            out.append((model, stem, text))
    return tuple(out)


def documented_requests(contract: Contract, model: Model | str) -> list[tuple[str, dict[str, Any]]]:
    """The provider's documented example requests for ``model`` (``fixtures/<provider>/requests``),
    without their webhook fields: the optional fields a real client sends."""
    return _of_model(_documented, contract, model)


@lru_cache(maxsize=64)
def _refused(provider: str, variants: str) -> tuple[tuple[str, str, str], ...]:
    contract = load(provider, json.loads(variants) or None)
    return tuple(
        (model, stem, json.dumps(body, sort_keys=True))
        for model, stem, body in _submits(contract, "invalid")
        if validator_for(contract.models[model]).check(body) is not None
    )


def invalid_fixtures(contract: Contract, model: Model | str) -> list[tuple[str, dict[str, Any]]]:
    """The invalid requests of ``fixtures/<provider>/invalid`` that ``model`` refuses: each breaks
    one cross-field rule of the contract (the file's ``violates``) or its schema."""
    return _of_model(_refused, contract, model)


def _of_model(
    rows: Callable[[str, str], tuple[tuple[str, str, str], ...]], contract: Contract, model: Model | str
) -> list[tuple[str, dict[str, Any]]]:
    """``model``'s (file stem, body) pairs of a cached fixture listing (``_documented``, ``_refused``)."""
    name = model if isinstance(model, str) else model.name
    listed = rows(contract.provider, json.dumps(contract.variants, sort_keys=True))
    return [(stem, json.loads(text)) for m, stem, text in listed if m == name]


def _retryable(contract: Contract) -> list[str]:
    return [name for name, spec in contract.errors.items() if spec.retryable and spec.status >= 429]


def _refusing(contract: Contract) -> list[str]:
    out, seen = [], set()
    for name, spec in contract.errors.items():
        if spec.status in (404, 405, 413, 415):
            continue
        if spec.status in _REFUSING or not spec.retryable:
            signature = (spec.status, tuple(expected_categories(contract, name)))
            if name in ("auth_missing",) or signature in seen:
                continue
            seen.add(signature)
            out.append(name)
    return out


def _model_scenarios(
    contract: Contract, model: str, caps: Capabilities, suffix: str, full: bool = True
) -> list[Scenario]:
    """Scenarios for one model; ``full`` adds the provider-wide behaviours (HTTP errors, retries,
    time-outs, webhooks, every failure code), which the first supported model carries."""
    provider = contract.provider
    base = example_request(contract, model)
    timing = (contract.timing["queued"][0], contract.timing["running"][0])
    done = sum(timing)
    common: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "request": base,
        "variants": dict(contract.variants) if suffix else {},
        "timing": timing,
        "timeout": max(900.0, done * 4),
    }

    def make(kind: str, name: str, **extra: Any) -> Scenario:
        return Scenario(id=f"{provider}/{model}/{name}{suffix}", kind=kind, **{**common, **extra})

    out = [make("success", "success", timing=_every_state_seen(contract, timing))]
    for name, body in documented_requests(contract, model):
        out.append(make("success", f"success-documented-{name}", request=body))
    refused = {"status": "failed", "categories": ["invalid_request"]}
    for name, body in invalid_fixtures(contract, model):
        out.append(make("invalid-request", f"invalid-request-{name}", request=body, expect=refused))
    failures = contract.failures if full else contract.failures[:1]
    for failure in failures:
        expect = {
            "status": "failed",
            "categories": _failure_categories(contract, failure.state),
            "code": True,
        }
        out.append(
            make(
                "job-failure",
                f"{failure.state}-{failure.code}",
                outcome={"state": failure.state, "code": failure.code},
                expect=expect,
            )
        )
    if not full:
        return out
    for name in _refusing(contract):
        spec = contract.errors[name]
        expect = {
            "status": "failed",
            "categories": expected_categories(contract, name),
            "http_status": spec.status,
        }
        rule = {"provider": provider, "operation": "submit", "times": FOREVER, "action": {"error": name}}
        out.append(make("refused", f"refused-{name}", rules=(rule,), expect=expect))
    retryable = _retryable(contract)
    for name in retryable:
        rule = {"provider": provider, "operation": "submit", "times": 2, "action": {"error": name}}
        out.append(make("transient", f"transient-submit-{name}", rules=(rule,)))
    limited = [n for n in retryable if contract.errors[n].status == 429]
    unavailable = [n for n in retryable if contract.errors[n].status >= 500]
    if limited:
        rule = {
            "provider": provider,
            "operation": "submit",
            "times": 2,
            "action": {"error": limited[0], "retry_after": 7},
        }
        out.append(make("transient", f"transient-submit-{limited[0]}-retry-after", rules=(rule,)))
        rule = {
            "provider": provider,
            "operation": "status",
            "times": 1,
            "action": {"error": limited[0], "retry_after": 11},
        }
        out.append(make("transient", f"transient-status-{limited[0]}-retry-after", rules=(rule,)))
    if unavailable:
        rule = {"provider": provider, "operation": "status", "times": 2, "action": {"error": unavailable[0]}}
        out.append(make("transient", f"transient-status-{unavailable[0]}", rules=(rule,)))
        # More errors in one job than one request's retry budget, each burst within it.
        burst = max(1, caps.max_retries - 1)
        error = {"provider": provider, "operation": "status", "times": burst, "action": {"error": unavailable[0]}}
        normal = {"provider": provider, "operation": "status", "times": 1, "action": {"delay": 0}}
        rules = tuple(itertools.chain.from_iterable((error, normal) for _ in range(caps.max_retries // burst + 1)))
        out.append(make("transient", f"transient-status-{unavailable[0]}-spread", rules=rules[:-1]))
    for operation in ("submit", "status"):
        for fault in TRANSPORT_FAULTS:
            rule = {"provider": provider, "operation": operation, "times": 1, "action": {fault: True}}
            # A faulted submit may have created the job (the mock did its work): resubmitting risks
            # a second job and a second charge, so the client reports it. A faulted poll is retried.
            extra: dict[str, Any] = {}
            if operation == "submit":
                extra["expect"] = {"status": "failed", "categories": ["unavailable"]}
            out.append(make("transport", f"transport-{operation}-{fault}", rules=(rule,), **extra))
    if contract.media_expires_after is not None:
        out.append(
            make("expired", "expired", expire_media=True, expect={"status": "failed", "categories": ["expired"]})
        )
    for names, category in ((unavailable, "unavailable"), (limited, "rate_limited")):
        if names:
            rule = {"provider": provider, "operation": "submit", "times": FOREVER, "action": {"error": names[0]}}
            expect = {"status": "failed", "categories": [category]}
            out.append(make("persistent", f"persistent-{names[0]}", rules=(rule,), expect=expect))
    out.append(
        make(
            "hang",
            "hang",
            timing=(timing[0], 10.0**7),
            timeout=300.0,
            expect={"status": "failed", "categories": ["timeout"]},
        )
    )
    out.append(
        make(
            "invalid-request",
            "invalid-request",
            request=example_invalid_request(contract, model),
            expect={"status": "failed", "categories": ["invalid_request"]},
        )
    )
    if caps.webhooks and _takes_webhooks(contract, model):
        out.append(make("webhook", "webhook", use_webhook=True))
        for mode in ("duplicate", "reorder", "delay", "drop", "late"):
            action: dict[str, Any] = {"webhook": mode, "seconds": 30} if mode == "delay" else {"webhook": mode}
            out.append(make("webhook", f"webhook-{mode}", use_webhook=True, webhook=action))
    return out


def _takes_webhooks(contract: Contract, model: str) -> bool:
    return bool(contract.webhooks.get("supported")) and any(
        not channel.models or model in channel.models for channel in contract.webhook_channels
    )


def _variant_contracts(contract: Contract) -> Iterable[tuple[Contract, str]]:
    for name, options in contract.variant_choices().items():
        default = contract.raw["variants"][name]["default"]
        for option in options:
            if option != default:
                yield load(contract.provider, {name: option}), f"[{name}={option}]"


def catalogue(contract: Contract, capabilities: Capabilities | None = None) -> list[Scenario]:
    """Every scenario the contract documents, for the models the client supports."""
    caps = capabilities or Capabilities()
    out: list[Scenario] = []
    models = [m for m in contract.models if caps.supports(m)]
    for i, model in enumerate(models):
        out.extend(_model_scenarios(contract, model, caps, "", full=i == 0))
        if i > 0:
            out.append(
                Scenario(
                    id=f"{contract.provider}/{model}/invalid-request",
                    provider=contract.provider,
                    model=model,
                    kind="invalid-request",
                    request=example_invalid_request(contract, model),
                    expect={"status": "failed", "categories": ["invalid_request"]},
                )
            )
    if models:
        for variant, suffix in _variant_contracts(contract):
            out.extend(_model_scenarios(variant, models[0], caps, suffix))
    return out


_EXPLORED = "explored-"  # the last part of a generated scenario's id: never a catalogue id


def explored_id(scenario: Scenario) -> str:
    """An id of its own for a generated scenario: the catalogue scenario it was drawn from, and a
    digest of what was drawn (so a replay file never overwrites a catalogue scenario's)."""
    drawn = {k: v for k, v in scenario.to_json().items() if k != "id"}
    digest = hashlib.sha256(json.dumps(drawn, sort_keys=True).encode()).hexdigest()[:10]
    return f"{scenario.id}/{_EXPLORED}{digest}"


@lru_cache(maxsize=64)
def _full_validator(provider: str, variants: str, model: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(load(provider, json.loads(variants) or None).models[model].full_schema)


def scenarios(contract: Contract, capabilities: Capabilities | None = None) -> st.SearchStrategy[Scenario]:
    """Scenarios with drawn requests, timings and fault counts, shrinking towards the catalogue's.

    A drawn request, without the fields that ask for a webhook, is valid by the contract's schema
    and cross-field rules (a rule may tie another field to a webhook field, e.g. a delivery mode
    that needs a callback URL); each scenario gets an id of its own (:func:`explored_id`)."""
    from hypothesis import assume
    from hypothesis import strategies as st
    from veomock.conformance.strategies import valid_requests

    caps = capabilities or Capabilities()
    table = catalogue(contract, caps)
    if not table:
        raise ValueError(f"{contract.provider}: the client supports none of its models")

    @st.composite
    def build(draw: Any) -> Scenario:
        scenario: Scenario = draw(st.sampled_from(table))
        variant = load(contract.provider, scenario.variants or None)
        model = variant.models[scenario.model]
        if scenario.kind != "invalid-request":
            hooks = {p: st.just("https://example.com/hook") for p in webhook_body_fields(variant, model)}
            body = without_webhooks(variant, model.name, draw(valid_requests(model, fields=hooks)))
            valid = _full_validator(variant.provider, json.dumps(variant.variants, sort_keys=True), model.name)
            assume(valid.is_valid(body))
            scenario = replace(scenario, request=body)
        low_q, high_q = variant.timing["queued"]
        low_r, high_r = variant.timing["running"]
        if scenario.kind not in ("hang",):
            queued = draw(st.integers(int(low_q), int(high_q)))
            running = draw(st.integers(int(low_r), int(high_r)))
            scenario = replace(scenario, timing=(float(queued), float(running)))
        if scenario.kind == "transient":
            times = draw(st.integers(1, caps.max_retries))
            scenario = replace(scenario, rules=tuple({**r, "times": times} for r in scenario.rules))
        return replace(scenario, id=explored_id(scenario))

    return build()

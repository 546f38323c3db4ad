"""Scenarios: what a request gets instead of the normal answer, as data.

Three triggers, one code path. A rule set through the control API, a magic input (a prompt token
``veomock:error=rate_limited`` or an API key holding ``veomock-fail=CODE``) and a seeded chaos
profile all become an :class:`Action`; :func:`mocks.faults.screen` carries it out.

    rule    {"provider": P, "operation": "submit", "match": {"key": K, "prompt_contains": S,
             "model": M}, "times": 2, "action": {...}}            every field but action optional
    action  {"error": NAME, "retry_after": 5, "message": TEXT}    the provider's HTTP error
            {"fail": CODE} | {"state": "failed"|"error"|"succeeded"}   how the job ends
            {"timing": {"queued": s, "running": s}}               how long it takes (provider seconds)
            {"delay": s} | {"hang": true} | {"reset": true} | {"truncate": true} | {"malformed": true}
            {"webhook": "duplicate"|"reorder"|"delay"|"drop"|"late", ...options}  (mocks.webhooks)
            {"pass": true}                                         the normal answer (a step in a sequence)
    magic   items "name[=value]" joined by commas: error, message, retry_after, fail, state, queued,
            running, delay, hang, reset, truncate, malformed, webhook, on (operation), times.
            Values are percent-decoded, so a code with a space reads fail=Unknown%20error.
    chaos   {"seed": 7, "faults": {"error:internal": 0.05, "delay:2": 0.1, "fail": 0.05}}

Rules are tried in order and a rule with ``times`` is spent after that many uses, so
``[rule(times=2), rule2]`` reads "twice this, then that". Rules beat magic, magic beats chaos.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from veomock.contracts import Contract
from veomock.mocks.lifecycle import Outcome
from veomock.mocks.responses import FALLBACK

__all__ = [
    "FAULTS",
    "KINDS",
    "WEBHOOK_ACTIONS",
    "Action",
    "Chaos",
    "Decision",
    "Facts",
    "Rule",
    "RuleError",
    "Scenarios",
    "outcome_for",
    "parse_action",
    "parse_magic",
]

KINDS = ("submit", "status", "balance", "media")
FAULTS = ("hang", "reset", "truncate", "malformed")
WEBHOOK_ACTIONS = ("duplicate", "reorder", "delay", "drop", "late")
END_STATES = ("succeeded", "failed", "error")
MAX_DELAY = 600.0
ANY_CODE = "*"
_ACTION_KEYS = ("error", "message", "retry_after", "fail", "state", "timing", "delay", *FAULTS, "webhook")
_RULE_KEYS = ("id", "provider", "operation", "match", "times", "action")
_MATCH_KEYS = ("key", "prompt_contains", "model")
MAGIC_NAMES = (
    *(k for k in _ACTION_KEYS if k != "timing"),
    "queued",
    "running",
    "seconds",
    "on",
    "times",
)
_PROMPT_TOKEN = re.compile(r"veomock:(\S*)")
_KEY_TOKEN = re.compile(r"veomock-([a-z_]+)([=,].*)?$")


class RuleError(ValueError):
    """A rule, magic input or chaos profile that cannot be used; the message says what to fix."""


def _hint(word: str, choices: Iterable[str]) -> str:
    options = sorted({str(c) for c in choices})
    stems = {option.split(":")[0]: option for option in options}
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    close = close or [stems[c] for c in difflib.get_close_matches(str(word), list(stems), n=1, cutoff=0.6)]
    if close:
        return f"; did you mean {close[0]!r}? Known: {', '.join(options)}"
    return f"; known: {', '.join(options)}"


def _number(value: Any, what: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleError(f"{what} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise RuleError(f"{what} must be between {low:g} and {high:g}, not {value!r}")
    return number


def _integer(value: Any, what: str, low: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise RuleError(f"{what} must be a whole number of at least {low}, not {value!r}")
    return value


@dataclass(frozen=True)
class Action:
    """One thing to do to a request. Unset fields are ``None``."""

    error: str | None = None
    message: str | None = None
    retry_after: int | None = None
    fail: str | None = None
    state: str | None = None
    timing: dict[str, float] | None = None
    delay: float | None = None
    fault: str | None = None
    webhook: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.webhook is not None:
            return {"webhook": self.webhook, **self.options}
        out: dict[str, Any] = {}
        for name in ("error", "message", "retry_after", "fail", "state", "timing", "delay"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.fault:
            out[self.fault] = True
        return out or {"pass": True}

    def fits(self, kind: str) -> bool:
        """Whether this action means something for an operation of this kind."""
        if self.webhook is not None:
            return kind == "submit"
        if self.timing is not None:
            return kind == "submit"
        if self.fail is not None or self.state is not None:
            return kind in ("submit", "status")
        return True

    def applies_to(self, contract: Contract) -> bool:
        """Whether ``contract`` can carry it out (an error it can render, a failure code it has)."""
        if self.error is not None and _resolve(contract, self.error) is None:
            return False
        return self.fail in (None, ANY_CODE) or contract.failure(self.fail) is not None


def _resolve(contract: Contract, name: str) -> str | None:
    while name not in contract.errors:
        if name not in FALLBACK:
            return None
        name = FALLBACK[name]
    return name


def error_names(contracts: Iterable[Contract]) -> list[str]:
    return sorted({name for c in contracts for name in c.errors})


def parse_action(data: Any, contracts: Iterable[Contract], any_code: bool = False) -> Action:
    """Check an action against the contracts it may apply to; raise :class:`RuleError` if wrong."""
    scope = list(contracts)
    if not isinstance(data, Mapping) or not data:
        raise RuleError('an action is an object such as {"error": "rate_limited"} or {"fail": CODE}')
    if "webhook" in data:
        name = data["webhook"]
        if name not in WEBHOOK_ACTIONS:
            raise RuleError(f"unknown webhook action {name!r}{_hint(name, WEBHOOK_ACTIONS)}")
        options = {k: v for k, v in data.items() if k != "webhook"}
        for key in options:
            if key != "seconds":
                raise RuleError(f"a webhook action takes only 'seconds' (for delay), not {key!r}")
        if "seconds" in options:
            options["seconds"] = _number(options["seconds"], "seconds", 0, 1e9)
        return Action(webhook=str(name), options=options)
    if "pass" in data:
        if dict(data) != {"pass": True}:
            raise RuleError('write {"pass": true} alone: the normal answer, as one step of a sequence of rules')
        return Action()
    for key in data:
        if key not in _ACTION_KEYS:
            raise RuleError(f"unknown action key {key!r}{_hint(key, _ACTION_KEYS)}")
    faults = [f for f in FAULTS if f in data]
    for fault in faults:
        if data[fault] is not True:
            raise RuleError(f'write {fault!r} as {{"{fault}": true}}')
    if len(faults) > 1:
        raise RuleError(f"one transport fault at a time, not {' and '.join(faults)}")
    shaping = [k for k in ("fail", "state", "timing") if k in data]
    if "error" in data and shaping:
        raise RuleError(f"an error answers the request, so it cannot also set {shaping[0]!r}; use two rules")
    if "fail" in data and "state" in data:
        raise RuleError("give either fail (a failure code) or state, not both")
    if "delay" in data and "hang" in data:
        raise RuleError("a hang never answers, so a delay means nothing with it")
    if "retry_after" in data and "error" not in data:
        raise RuleError('retry_after goes with an error, e.g. {"error": "rate_limited", "retry_after": 5}')
    if "message" in data and "error" not in data and "fail" not in data:
        raise RuleError("message goes with an error or a fail")
    action = Action(
        error=_check_error(data["error"], scope) if "error" in data else None,
        message=str(data["message"]) if "message" in data else None,
        retry_after=_integer(data["retry_after"], "retry_after", 0) if "retry_after" in data else None,
        fail=_check_code(data["fail"], scope, any_code) if "fail" in data else None,
        state=_check_state(data["state"]) if "state" in data else None,
        timing=_check_timing(data["timing"]) if "timing" in data else None,
        delay=_number(data["delay"], "delay", 0, MAX_DELAY) if "delay" in data else None,
        fault=faults[0] if faults else None,
    )
    return action


def _check_error(value: Any, scope: list[Contract]) -> str:
    name = str(value)
    if any(_resolve(c, name) is not None for c in scope):
        return name
    who = scope[0].provider if len(scope) == 1 else "the served providers"
    raise RuleError(f"{who} has no error {name!r}{_hint(name, error_names(scope))}")


def _check_code(value: Any, scope: list[Contract], any_code: bool) -> str:
    code = str(value)
    if (any_code and code == ANY_CODE) or any(c.failure(code) is not None for c in scope):
        return code
    known = [str(f.code) for c in scope for f in c.failures]
    who = scope[0].provider if len(scope) == 1 else "the served providers"
    raise RuleError(f"{who} has no failure code {code!r}{_hint(code, known)}")


def _check_state(state: Any) -> str:
    if state not in END_STATES:
        raise RuleError(f"state must be one of {', '.join(END_STATES)}, not {state!r}")
    return str(state)


def _check_timing(timing: Any) -> dict[str, float]:
    if not isinstance(timing, Mapping) or not timing or set(timing) - {"queued", "running"}:
        raise RuleError('timing is {"queued": seconds, "running": seconds} (either or both)')
    return {k: _number(v, f"timing.{k}", 0, 1e9) for k, v in timing.items()}


def outcome_for(contract: Contract, action: Action, rng: random.Random | None = None) -> Outcome | None:
    """How a job ends under ``action``: a failure code, an end state, or None (unchanged)."""
    if action.fail is not None:
        if action.fail == ANY_CODE:
            failure = (rng or random.Random(0)).choice(contract.failures)
        else:
            found = contract.failure(action.fail)
            assert found is not None, action.fail
            failure = found
        return Outcome(failure.state, failure.code, action.message or failure.message)
    if action.state in ("failed", "error"):
        failure = next((f for f in contract.failures if f.state == action.state), contract.failures[0])
        return Outcome(action.state, failure.code, failure.message)
    if action.state == "succeeded":
        return Outcome("succeeded")
    return None


@dataclass(frozen=True)
class Facts:
    """What a rule can match on, for one request."""

    provider: str
    kind: str
    operation: str
    key: str | None = None
    prompt: str | None = None
    model: str | None = None
    job: str | None = None


def _operation_names(contract: Contract) -> set[str]:
    return {*KINDS, "any", *(op.name for op in contract.operations)}


def _check_operation(name: Any, scope: list[Contract]) -> str:
    known = set().union(*(_operation_names(c) for c in scope))
    if name not in known:
        raise RuleError(f"unknown operation {name!r}{_hint(str(name), known)}")
    return str(name)


def _on(operation: str | None, facts: Facts) -> bool:
    return operation in (None, "any", facts.kind, facts.operation)


@dataclass
class Rule:
    id: str
    action: Action
    provider: str | None = None
    operation: str | None = None
    key: str | None = None
    prompt_contains: str | None = None
    model: str | None = None
    times: int | None = None
    used: int = 0

    def matches(self, facts: Facts, contract: Contract) -> bool:
        return (
            (self.provider is None or self.provider == facts.provider)
            and _on(self.operation, facts)
            and (self.key is None or self.key == facts.key)
            and (self.model is None or self.model == facts.model)
            and (self.prompt_contains is None or self.prompt_contains in (facts.prompt or ""))
            and self.action.fits(facts.kind)
            and self.action.applies_to(contract)
        )

    def to_json(self) -> dict[str, Any]:
        match = {k: getattr(self, k) for k in _MATCH_KEYS if getattr(self, k) is not None}
        out: dict[str, Any] = {"id": self.id, "provider": self.provider, "operation": self.operation}
        out.update({"match": match, "times": self.times, "used": self.used, "action": self.action.to_json()})
        return out


def parse_rule(data: Any, contracts: Mapping[str, Contract], rule_id: str) -> Rule:
    if not isinstance(data, Mapping):
        raise RuleError('a rule is an object like {"operation": "submit", "action": {"error": "internal"}}')
    for key in data:
        if key not in _RULE_KEYS:
            raise RuleError(f"unknown rule key {key!r}{_hint(key, _RULE_KEYS)}")
    if "action" not in data:
        raise RuleError('a rule needs an action, e.g. "action": {"error": "rate_limited"}')
    provider = data.get("provider")
    if provider is not None and provider not in contracts:
        raise RuleError(f"unknown provider {provider!r}{_hint(str(provider), contracts)}")
    scope = [contracts[provider]] if provider else list(contracts.values())
    match = data.get("match") or {}
    if not isinstance(match, Mapping):
        raise RuleError('match is an object, e.g. {"key": "ci-worker-3"}')
    for key in match:
        if key not in _MATCH_KEYS:
            raise RuleError(f"unknown match key {key!r}{_hint(key, _MATCH_KEYS)}")
    action = parse_action(data["action"], scope)
    operation = _check_operation(data["operation"], scope) if data.get("operation") is not None else None
    if operation in KINDS and not action.fits(operation):
        raise RuleError(f"{_describe(action)} does not apply to {operation} requests")
    times = _integer(data["times"], "times", 1) if data.get("times") is not None else None
    rid = str(data.get("id") or rule_id)
    key, prompt, model = (_text(match.get(k)) for k in _MATCH_KEYS)
    return Rule(rid, action, provider, operation, key=key, prompt_contains=prompt, model=model, times=times)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _describe(action: Action) -> str:
    return ", ".join(f"{k}={v}" for k, v in action.to_json().items())


@dataclass(frozen=True)
class Magic:
    """A magic input, parsed: the action, where it applies, and how many times."""

    action: Action
    on: str
    times: int | None
    raw: str


def parse_magic(text: str, contract: Contract) -> Magic:
    """``"error=rate_limited,retry_after=7"`` (what follows ``veomock:`` or ``veomock-``)."""
    data: dict[str, Any] = {}
    on, times = "submit", None
    for item in filter(None, text.split(",")):
        name, sep, raw_value = item.partition("=")
        value: Any = unquote(raw_value) if sep else True
        if name not in MAGIC_NAMES:
            raise RuleError(f"unknown magic directive {name!r}{_hint(name, MAGIC_NAMES)}")
        if name in FAULTS and value in ("true", "1"):
            value = True
        if name == "on":
            on = _check_operation(value, [contract])
        elif name == "times":
            times = _integer(value, "times", 1)
        elif name in ("queued", "running"):
            data.setdefault("timing", {})[name] = value
        elif name in ("retry_after",):
            data[name] = _integer(value, name, 0)
        else:
            data[name] = value
    if not data:
        raise RuleError("a magic input names an action, e.g. veomock:error=rate_limited or veomock:fail=CODE")
    action = parse_action(data, [contract])
    if on in KINDS and not action.fits(on):
        raise RuleError(f"{_describe(action)} does not apply to {on} requests")
    return Magic(action, on, times, text)


def magic_in_prompt(prompt: str) -> list[str]:
    return _PROMPT_TOKEN.findall(prompt)


def magic_in_key(key: str) -> str | None:
    """The directives in an API key, if it holds ``veomock-<known directive>``."""
    found = _KEY_TOKEN.search(key)
    if not found or found.group(1) not in MAGIC_NAMES:
        return None
    return found.group(1) + (found.group(2) or "")


@dataclass
class Chaos:
    """Faults drawn at random, one draw per request, from one seeded source."""

    seed: int
    faults: list[tuple[str, float, Action]]
    provider: str | None = None
    operation: str | None = None
    key: str | None = None
    rng: random.Random = field(init=False)
    hooks: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"chaos:{self.seed}")
        self.hooks = random.Random(f"chaos-webhooks:{self.seed}")

    def _scoped(self, facts: Facts) -> bool:
        provider_ok = self.provider is None or self.provider == facts.provider
        return provider_ok and _on(self.operation, facts) and (self.key is None or self.key == facts.key)

    def _draw(self, rng: random.Random, webhooks: bool) -> Action | None:
        x, total = rng.random(), 0.0
        for _, p, action in self.faults:
            if (action.webhook is not None) != webhooks:
                continue
            total += p
            if x < total:
                return action
        return None

    def draw(self, facts: Facts, contract: Contract) -> Action | None:
        if not self._scoped(facts):
            return None
        action = self._draw(self.rng, webhooks=False)
        if action is None or not action.fits(facts.kind) or not action.applies_to(contract):
            return None
        if action.fail == ANY_CODE:
            failure = self.rng.choice(contract.failures)
            action = replace(action, fail=str(failure.code))
        return action

    def draw_webhook(self, facts: Facts) -> Action | None:
        return self._draw(self.hooks, webhooks=True) if self._scoped(facts) else None

    def to_json(self) -> dict[str, Any]:
        scope = {"provider": self.provider, "operation": self.operation, "match": {"key": self.key}}
        return {"seed": self.seed, "faults": {name: p for name, p, _ in self.faults}, **scope}


def parse_chaos(data: Any, contracts: Mapping[str, Contract]) -> Chaos:
    example = '{"seed": 7, "faults": {"error:internal": 0.05, "delay:2": 0.1, "fail": 0.05}}'
    if not isinstance(data, Mapping) or not isinstance(data.get("faults"), Mapping):
        raise RuleError(f"a chaos profile looks like {example}")
    allowed = ("seed", "faults", "provider", "operation", "match")
    for key in data:
        if key not in allowed:
            raise RuleError(f"unknown chaos key {key!r}{_hint(key, allowed)}")
    provider = data.get("provider")
    if provider is not None and provider not in contracts:
        raise RuleError(f"unknown provider {provider!r}{_hint(str(provider), contracts)}")
    scope = [contracts[provider]] if provider else list(contracts.values())
    faults: list[tuple[str, float, Action]] = []
    for name, p in data["faults"].items():
        probability = _number(p, f"the probability of {name!r}", 0, 1)
        kind, sep, value = str(name).partition(":")
        if kind not in _ACTION_KEYS or kind in ("message", "retry_after", "timing"):
            choices = ("error:NAME", "fail", "fail:CODE", "state:NAME", "delay:SECS", *FAULTS, "webhook:NAME")
            raise RuleError(f"unknown chaos fault {name!r}{_hint(kind, choices)}")
        spec: dict[str, Any] = {kind: value if sep else (ANY_CODE if kind == "fail" else True)}
        try:
            faults.append((str(name), probability, parse_action(spec, scope, any_code=True)))
        except RuleError as exc:
            raise RuleError(f"chaos fault {name!r}: {exc}") from None
    total = sum(p for _, p, a in faults if a.webhook is None)
    if total > 1 + 1e-9:
        raise RuleError(f"the request fault probabilities add up to {total:g}; keep them at 1 or less")
    match = data.get("match") or {}
    seed = _integer(data.get("seed", 0), "seed", 0)
    operation = _check_operation(data["operation"], scope) if data.get("operation") else None
    return Chaos(seed, faults, provider, operation, _text(match.get("key")))


@dataclass(frozen=True)
class Decision:
    action: Action | None = None
    origin: str | None = None
    problem: str | None = None


class Scenarios:
    """The rules, the magic-input counters and the chaos profile of one mock."""

    def __init__(self, contracts: Mapping[str, Contract], chaos: Mapping[str, Any] | None = None) -> None:
        self.contracts = contracts
        self.rules: list[Rule] = []
        self.chaos: Chaos | None = parse_chaos(chaos, contracts) if chaos else None
        self.hang_cap = 300.0  # real seconds a hang may hold a connection the client keeps open
        self._next = 1
        self._magic: dict[tuple[str, str], Magic | RuleError] = {}
        self._used: dict[tuple[Any, ...], int] = {}

    @property
    def active(self) -> bool:
        return bool(self.rules) or self.chaos is not None

    def add(self, data: Any) -> Rule:
        rule = parse_rule(data, self.contracts, f"r{self._next}")
        if any(r.id == rule.id for r in self.rules):
            raise RuleError(f"a rule with id {rule.id!r} exists; pick another id or delete it first")
        self._next += 1
        self.rules.append(rule)
        return rule

    def clear(self, key: str | None = None, provider: str | None = None, rule_id: str | None = None) -> int:
        keep = [
            r
            for r in self.rules
            if not (
                (key is None or r.key == key)
                and (provider is None or r.provider == provider)
                and (rule_id is None or r.id == rule_id)
            )
        ]
        removed, self.rules = len(self.rules) - len(keep), keep
        return removed

    def set_chaos(self, profile: Mapping[str, Any] | None) -> Chaos | None:
        self.chaos = parse_chaos(profile, self.contracts) if profile else None
        return self.chaos

    def forget(self, key: str) -> None:
        """Drop what belongs to one API key's namespace: its rules and magic counters."""
        self.clear(key=key)
        self._used = {k: v for k, v in self._used.items() if k[1] != key}

    def magic(self, contract: Contract, text: str) -> Magic:
        cached = self._magic.get((contract.provider, text))
        if cached is None:
            try:
                cached = parse_magic(text, contract)
            except RuleError as exc:
                cached = exc
            if len(self._magic) > 4096:
                self._magic.clear()
            self._magic[(contract.provider, text)] = cached
        if isinstance(cached, RuleError):
            raise cached
        return cached

    def _magic_inputs(self, facts: Facts) -> list[tuple[str, str]]:
        found = [("prompt", raw) for raw in magic_in_prompt(facts.prompt or "")]
        in_key = magic_in_key(facts.key or "")
        return [*found, ("key", in_key)] if in_key is not None else found

    def consult(self, facts: Facts) -> Decision:
        """The action for one request, consuming a use of the rule or magic input that gave it."""
        contract = self.contracts[facts.provider]
        for rule in self.rules:
            if rule.action.webhook is None and rule.matches(facts, contract):
                self._spend(rule)
                return Decision(rule.action, f"rule {rule.id}")
        for source, raw in self._magic_inputs(facts):
            try:
                magic = self.magic(contract, raw)
            except RuleError as exc:
                marker = "veomock:" if source == "prompt" else "veomock-"
                return Decision(problem=f"veomock: the magic {source} {marker}{raw} is invalid: {exc}")
            action = magic.action
            if action.webhook is not None or not _on(magic.on, facts) or not action.fits(facts.kind):
                continue
            if magic.times is not None:
                counter = (facts.provider, facts.key, source, raw, facts.job)
                if self._used.get(counter, 0) >= magic.times:
                    continue
                self._used[counter] = self._used.get(counter, 0) + 1
            return Decision(magic.action, f"magic {source}")
        if self.chaos is not None:
            drawn = self.chaos.draw(facts, contract)
            if drawn is not None:
                return Decision(drawn, "chaos")
        return Decision()

    def webhook_action(self, facts: Facts) -> Action | None:
        """The adversarial delivery asked for a job's webhooks (read by mocks.webhooks), if any."""
        contract = self.contracts[facts.provider]
        for rule in self.rules:
            if rule.action.webhook is not None and rule.matches(facts, contract):
                self._spend(rule)
                return rule.action
        for _, raw in self._magic_inputs(facts):
            try:
                magic = self.magic(contract, raw)
            except RuleError:
                continue
            if magic.action.webhook is not None:
                return magic.action
        return self.chaos.draw_webhook(facts) if self.chaos is not None else None

    def _spend(self, rule: Rule) -> None:
        rule.used += 1
        if rule.times is not None and rule.used >= rule.times:
            self.rules.remove(rule)

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [r.to_json() for r in self.rules],
            "chaos": self.chaos.to_json() if self.chaos else None,
        }

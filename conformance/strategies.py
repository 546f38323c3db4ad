"""Hypothesis strategies for request bodies, built from a contract model's JSON Schema.

Valid bodies are built by construction: every keyword the contracts use (type, enum, const,
properties, required, items, min/maxItems, min/maxLength, minimum/maximum, pattern) maps to a
strategy that can only produce values satisfying it. Keywords with no constructive meaning (not,
anyOf, multipleOf, ...) become a filter with a compiled validator, as a safety net.

Cross-field rules (``if``/``then``) are handled by **repair**, not by filtering: a body drawn from
the base schema is checked against each rule, and a body that meets a rule's ``if`` but not its
``then`` is repaired, either by making ``then`` true or by making ``if`` false (Hypothesis draws
which, so both kinds of valid body appear). Filtering alone would throw away most draws: with a
handful of rules each firing half the time, few random bodies satisfy all of them, and Hypothesis
gives up on strategies that reject that much. Repair keeps nearly every draw and shrinks well.

Invalid bodies break exactly one thing: a required field dropped, a value of the wrong type, a
value outside an enum, or one rule broken (its ``if`` met, its ``then`` violated, every other rule
still met). Each is checked invalid against ``model.full_schema`` before it is returned.

The X-Model style ``inject`` (a header supplying a body field) is ignored here: bodies are always
complete.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import jsonschema
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from veomock.contracts import Model
from veomock.mocks.scenarios import magic_in_key, magic_in_prompt

__all__ = [
    "Mutation",
    "StrategyError",
    "from_schema",
    "invalid_requests",
    "merge",
    "valid_requests",
]

SearchStrategy = st.SearchStrategy


def _plain(text: str) -> bool:
    """``text`` is no magic input of the mock (``veomock:...`` in a prompt, ``veomock-<directive>``
    in a key), which would ask for a fault instead of the provider's ordinary answer. Hypothesis
    draws such strings: it reuses string constants of the code under test."""
    return not magic_in_prompt(text) and magic_in_key(text) is None


def _texts(alphabet: str, min_size: int, max_size: int) -> SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size).filter(_plain)


# Printable ASCII: JSON Schema patterns use ECMA-262 classes (\d is ASCII there, not in Python)
# and no newline means Python's ``$`` cannot match before a trailing "\n" that ECMA would refuse.
_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
_TEXT = _texts(_ASCII + "éü日本🎬", 0, 24)
_INT_BOUND = 2**53  # JSON-safe integers
_EXTRA_LEN = 24  # strings and lists without an upper bound stay short
_EXTRA_ITEMS = 3

_ANNOTATIONS = frozenset(
    {
        "description",
        "default",
        "title",
        "examples",
        "$comment",
        "deprecated",
        "format",
        "readOnly",
        "writeOnly",
    }
)
_STRUCTURAL = frozenset(
    {
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
        "allOf",
    }
)
_LOWER = ("minItems", "minLength", "minimum", "exclusiveMinimum", "minProperties")
_UPPER = ("maxItems", "maxLength", "maximum", "exclusiveMaximum", "maxProperties")
_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class StrategyError(ValueError):
    """A schema (or a model) these strategies cannot build values for; the message says why."""


class Mutation(NamedTuple):
    """An invalid body and the one thing that makes it invalid."""

    body: dict[str, Any]
    reason: str


class _Conflict(Exception):
    """Two schemas that no value can satisfy together."""


# --------------------------------------------------------------------------------------------
# validators


def _key(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@lru_cache(maxsize=2048)
def _validator_for(key: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(key))


def _valid(schema: Any, value: Any) -> bool:
    return bool(_validator_for(_key(schema)).is_valid(value))


def _json_eq(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 and True differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _json_in(value: Any, options: Iterable[Any]) -> bool:
    return any(_json_eq(value, option) for option in options)


# --------------------------------------------------------------------------------------------
# merging (schema intersection, structural keywords only)


def _types(schema: Mapping[str, Any]) -> list[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return [kind] if isinstance(kind, str) else list(kind)


def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """A schema accepting what both ``a`` and ``b`` accept.

    Structural keywords are combined exactly; anything else from ``b`` is kept under ``allOf``
    (strategies filter on it). Raises :class:`StrategyError` when no value can satisfy both.
    """
    try:
        return _merge(a, b)
    except _Conflict as exc:
        raise StrategyError(f"no value satisfies both schemas: {exc}") from None


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(dict(a))
    for key, value in b.items():
        if key not in out:
            if key in _STRUCTURAL or key in _ANNOTATIONS:
                out[key] = copy.deepcopy(value)
            else:
                out.setdefault("allOf", []).append({key: copy.deepcopy(value)})
            continue
        mine = out[key]
        if key == "properties":
            props = dict(mine)
            for name, sub in value.items():
                props[name] = _merge(props[name], sub) if name in props else copy.deepcopy(sub)
            out[key] = props
        elif key == "required":
            out[key] = list(dict.fromkeys([*mine, *value]))
        elif key in ("items", "additionalProperties") and isinstance(mine, dict) and isinstance(value, dict):
            out[key] = _merge(mine, value)
        elif key == "type":
            left, right = _types(out) or list(_TYPES), _types(b) or list(_TYPES)
            both = [t for t in left if t in right or (t == "integer" and "number" in right)]
            both += [t for t in right if t == "integer" and "number" in left and t not in both]
            if not both:
                raise _Conflict(f"types {left} and {right}")
            out[key] = both[0] if len(both) == 1 else both
        elif key == "enum":
            both = [v for v in mine if _json_in(v, value)]
            if not both:
                raise _Conflict(f"enums {mine} and {value}")
            out[key] = both
        elif key == "const":
            if not _json_eq(mine, value):
                raise _Conflict(f"const {mine!r} and {value!r}")
        elif key in _LOWER:
            out[key] = max(mine, value)
        elif key in _UPPER:
            out[key] = min(mine, value)
        elif key == "allOf":
            out[key] = [*mine, *value]
        elif key in _ANNOTATIONS or _json_eq(mine, value):
            continue
        else:
            out.setdefault("allOf", []).append({key: copy.deepcopy(value)})
    if "const" in out and "enum" in out and not _json_in(out["const"], out["enum"]):
        raise _Conflict(f"const {out['const']!r} is not in enum {out['enum']}")
    for low, high in (("minItems", "maxItems"), ("minLength", "maxLength"), ("minimum", "maximum")):
        if low in out and high in out and out[low] > out[high]:
            raise _Conflict(f"{low} {out[low]} > {high} {out[high]}")
    return out


# --------------------------------------------------------------------------------------------
# building strategies


def from_schema(schema: Mapping[str, Any] | bool) -> SearchStrategy[Any]:
    """A strategy for values valid against ``schema`` (JSON Schema 2020-12, the subset above)."""
    if schema is True:
        return _any_json()
    if schema is False:
        raise StrategyError("the schema `false` accepts no value")
    if not isinstance(schema, Mapping):
        raise StrategyError(f"a schema is a mapping or a boolean, not {type(schema).__name__}")
    return _from_key(_key(schema))


@lru_cache(maxsize=1024)
def _from_key(key: str) -> SearchStrategy[Any]:
    schema = json.loads(key)
    structural = {k: v for k, v in schema.items() if k in _STRUCTURAL and k != "allOf"}
    residual = False
    for member in schema.get("allOf", []):
        if member is True:
            continue
        if not isinstance(member, Mapping):
            raise StrategyError(f"allOf member {member!r} accepts no value")
        try:
            structural = _merge(structural, member)
        except _Conflict as exc:
            raise StrategyError(f"allOf members conflict: {exc}") from None
        if "allOf" in structural:
            structural.pop("allOf")
            residual = True
    if any(k not in _STRUCTURAL and k not in _ANNOTATIONS for k in schema):
        residual = True
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        options = []
        for branch in branches:
            try:
                options.append(_build(_merge(structural, branch)))
            except (_Conflict, StrategyError):
                continue
        if not options:
            raise StrategyError(f"no anyOf/oneOf branch is compatible with {structural}")
        strategy: SearchStrategy[Any] = st.one_of(options)
    else:
        strategy = _build(structural)
    if residual:
        strategy = strategy.filter(_validator_for(key).is_valid)
    return strategy


def _any_json() -> SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | _TEXT
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=5,
    )


def _infer_types(schema: Mapping[str, Any]) -> list[str]:
    declared = _types(schema)
    if declared is not None:
        return declared
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return ["object"]
    if any(k in schema for k in ("items", "minItems", "maxItems")):
        return ["array"]
    if any(k in schema for k in ("pattern", "minLength", "maxLength")):
        return ["string"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return ["number"]
    return list(_TYPES)


def _build(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    if "allOf" in schema:
        return from_schema(schema)
    if "const" in schema:
        return st.just(schema["const"]).map(copy.deepcopy)
    if "enum" in schema:
        rest = {k: v for k, v in schema.items() if k != "enum"}
        allowed = [v for v in schema["enum"] if _valid(rest, v)]
        if not allowed:
            raise StrategyError(f"no enum value of {schema['enum']} satisfies {rest}")
        return st.sampled_from(allowed).map(copy.deepcopy)
    kinds = _infer_types(schema)
    if "integer" in kinds and "number" in kinds:
        kinds = [k for k in kinds if k != "integer"]
    return st.one_of([_TYPE_BUILDERS[kind](schema) for kind in kinds])


def _build_object(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    props: Mapping[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    fixed = {name: from_schema(props.get(name, True)) for name in required}
    optional = {name: from_schema(sub) for name, sub in props.items() if name not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


def _build_array(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    low = int(schema.get("minItems", 0))
    high = int(schema.get("maxItems", low + _EXTRA_ITEMS))
    return st.lists(from_schema(schema.get("items", True)), min_size=low, max_size=high)


def _regex(pattern: str) -> SearchStrategy[str]:
    """Strings in which ``pattern`` matches (JSON Schema's search semantics), from a full match."""
    core = pattern
    prefix = "" if core.startswith("^") else "[ -~]{0,8}"
    anchored_end = core.endswith("$") and not core.endswith("\\$")
    suffix = "" if anchored_end else "[ -~]{0,16}"
    full = f"{prefix}(?:{core}){suffix}"
    try:
        return st.from_regex(full, fullmatch=True, alphabet=_ASCII).filter(_plain)
    except InvalidArgument as exc:
        raise StrategyError(f"cannot generate strings for pattern {pattern!r}: {exc}") from None


def _build_string(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    low = int(schema.get("minLength", 0))
    high = int(schema.get("maxLength", low + _EXTRA_LEN))
    if "pattern" in schema:
        return _regex(schema["pattern"]).filter(lambda s: low <= len(s) <= high)
    return _texts(_ASCII + "éü日本🎬", low, min(high, low + _EXTRA_LEN))


def _bounds(schema: Mapping[str, Any], step: float) -> tuple[float | None, float | None]:
    low = schema.get("minimum")
    if "exclusiveMinimum" in schema:
        low = max(low, schema["exclusiveMinimum"] + step) if low is not None else schema["exclusiveMinimum"] + step
    high = schema.get("maximum")
    if "exclusiveMaximum" in schema:
        high = min(high, schema["exclusiveMaximum"] - step) if high is not None else schema["exclusiveMaximum"] - step
    return low, high


def _build_integer(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    low, high = _bounds(schema, 1)
    return st.integers(-_INT_BOUND if low is None else math.ceil(low), _INT_BOUND if high is None else math.floor(high))


def _build_number(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    low, high = _bounds(schema, 1e-9)
    floats = st.floats(
        min_value=-1e12 if low is None else low,
        max_value=1e12 if high is None else high,
        allow_nan=False,
        allow_infinity=False,
    )
    return _build_integer(schema) | floats


_TYPE_BUILDERS: dict[str, Callable[[Mapping[str, Any]], SearchStrategy[Any]]] = {
    "null": lambda schema: st.none(),
    "boolean": lambda schema: st.booleans(),
    "integer": _build_integer,
    "number": _build_number,
    "string": _build_string,
    "array": _build_array,
    "object": _build_object,
}


# --------------------------------------------------------------------------------------------
# repair: make a value satisfy, or violate, a schema while staying valid against a base schema

Draw = Callable[[SearchStrategy[Any]], Any]
_DEPTH = 12


class _GiveUp(Exception):
    """This draw cannot be repaired; the caller rejects it."""


def _prop(schema: Mapping[str, Any], name: str) -> Any:
    props = schema.get("properties", {})
    return props.get(name, True) if isinstance(props, Mapping) else True


def _items(schema: Mapping[str, Any]) -> Any:
    items = schema.get("items", True)
    return items if isinstance(items, Mapping | bool) else True


def _as_schema(schema: Any) -> dict[str, Any]:
    if schema is True:
        return {}
    if schema is False:
        raise _GiveUp("schema false")
    return dict(schema)


def _satisfy(draw: Draw, value: Any, base: Any, target: Any, depth: int = 0) -> Any:
    """``value`` changed as little as possible so that it satisfies ``target``."""
    if _valid(target, value):
        return value
    if target is False or depth > _DEPTH:
        raise _GiveUp("cannot satisfy")
    base, target = _as_schema(base), _as_schema(target)
    for sub in target.get("allOf", []):
        value = _satisfy(draw, value, base, sub, depth + 1)
    for key in ("anyOf", "oneOf"):
        branches = target.get(key)
        if branches and not _valid({key: branches}, value):
            branch = draw(st.sampled_from(branches))
            value = _satisfy(draw, value, base, branch, depth + 1)
    if "not" in target and _valid(target["not"], value):
        value = _violate(draw, value, base, target["not"], depth + 1)
    if "if" in target:
        sub = target.get("then", True) if _valid(target["if"], value) else target.get("else", True)
        value = _satisfy(draw, value, base, sub, depth + 1)
    if isinstance(value, dict) and "object" in _infer_types(target):
        value = dict(value)
        for name in target.get("required", []):
            if name not in value:
                merged = _merge(_as_schema(_prop(base, name)), _as_schema(_prop(target, name)))
                value[name] = draw(from_schema(merged))
        for name, sub in target.get("properties", {}).items():
            if name in value and not _valid(sub, value[name]):
                value[name] = _satisfy(draw, value[name], _prop(base, name), sub, depth + 1)
    if isinstance(value, list) and "items" in target and "array" in _infer_types(target):
        value = [
            item if _valid(target["items"], item) else _satisfy(draw, item, _items(base), target["items"], depth + 1)
            for item in value
        ]
    if not _valid(target, value):
        try:
            value = draw(from_schema(_merge(base, target)))
        except _Conflict as exc:
            raise _GiveUp(str(exc)) from None
    return value


def _outside(schema: Mapping[str, Any], base: Mapping[str, Any]) -> list[SearchStrategy[Any]]:
    """Strategies for values valid against ``base`` that break one bound of ``schema``."""
    out: list[SearchStrategy[Any]] = []
    item = from_schema(_items(base)) if "array" in _infer_types(base) else None
    base_min_items, base_max_items = base.get("minItems", 0), base.get("maxItems")
    if item is not None and "maxItems" in schema:
        size = schema["maxItems"] + 1
        if base_max_items is None or size <= base_max_items:
            out.append(st.lists(item, min_size=size, max_size=size + 1))
    if item is not None and schema.get("minItems", 0) > base_min_items:
        out.append(st.lists(item, min_size=base_min_items, max_size=schema["minItems"] - 1))
    if "string" in _infer_types(base) and "pattern" not in base:
        if "maxLength" in schema and schema["maxLength"] + 1 <= base.get("maxLength", 10**9):
            size = schema["maxLength"] + 1
            out.append(_texts(_ASCII, size, size + 4))
        if schema.get("minLength", 0) > base.get("minLength", 0):
            out.append(_texts(_ASCII, base.get("minLength", 0), schema["minLength"] - 1))
    if _infer_types(base) != list(_TYPES) and ("integer" in _infer_types(base) or "number" in _infer_types(base)):
        if "maximum" in schema and schema["maximum"] + 1 <= base.get("maximum", float("inf")):
            out.append(st.integers(int(schema["maximum"]) + 1, int(schema["maximum"]) + 1000))
        if "minimum" in schema and schema["minimum"] - 1 >= base.get("minimum", float("-inf")):
            out.append(st.integers(int(schema["minimum"]) - 1000, int(schema["minimum"]) - 1))
    return out


def _violate(draw: Draw, value: Any, base: Any, target: Any, depth: int = 0) -> Any:
    """``value`` changed so that it breaks ``target`` while staying valid against ``base``."""
    if not _valid(target, value):
        return value
    if target is True or depth > _DEPTH:
        raise _GiveUp("cannot violate")
    base, target = _as_schema(base), _as_schema(target)
    options: list[Callable[[], Any]] = []

    def option(func: Callable[..., Any], *args: Any) -> None:
        options.append(lambda: func(*args))

    if "not" in target:
        option(_satisfy, draw, value, base, target["not"], depth + 1)
    for sub in target.get("allOf", []):
        option(_violate, draw, value, base, sub, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in target:
            option(_break_all, draw, value, base, target[key], depth + 1)
    if isinstance(value, dict):
        base_required = set(base.get("required", []))
        for name in target.get("required", []):
            if name in value and name not in base_required:
                option(_without, value, name)
        for name, sub in target.get("properties", {}).items():
            if name in value:
                option(_violate_field, draw, value, name, _prop(base, name), sub, depth + 1)
    if isinstance(value, list) and "items" in target:
        for i in range(len(value)):
            option(_violate_item, draw, value, i, _items(base), target["items"], depth + 1)
        if base.get("maxItems") is None or len(value) < base["maxItems"]:
            option(_violate_item, draw, value, len(value), _items(base), target["items"], depth + 1)
    leaves = {k: v for k, v in target.items() if k in ("const", "enum", "pattern", "type")}
    if leaves:
        option(draw, from_schema(base).filter(lambda x: not _valid(leaves, x)))
    for strategy in _outside(target, base):
        option(draw, strategy)
    if not options:
        raise _GiveUp(f"no way to break {target}")
    order = draw(st.permutations(range(len(options))))
    for index in order:
        try:
            candidate = options[index]()
        except (_GiveUp, _Conflict, StrategyError):
            continue
        if not _valid(target, candidate) and _valid(base, candidate):
            return candidate
    raise _GiveUp(f"could not break {target}")


def _without(value: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k != name}


def _break_all(draw: Draw, value: Any, base: Any, branches: list[Any], depth: int) -> Any:
    for branch in branches:
        value = _violate(draw, value, base, branch, depth)
    return value


def _violate_field(draw: Draw, value: dict[str, Any], name: str, base: Any, target: Any, depth: int) -> Any:
    return {**value, name: _violate(draw, value[name], base, target, depth)}


def _violate_item(draw: Draw, value: list[Any], index: int, base: Any, target: Any, depth: int) -> Any:
    """Break item ``index`` (``len(value)`` appends a fresh item and breaks that)."""
    item = value[index] if index < len(value) else draw(from_schema(base))
    return [*value[:index], _violate(draw, item, base, target, depth), *value[index + 1 :]]


# --------------------------------------------------------------------------------------------
# models


class _Compiled:
    """Everything the strategies of one model need, built once."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.schema = model.schema
        self.rules = [(rule, {"if": rule.if_, "then": rule.then}) for rule in model.rules]
        self.full = jsonschema.Draft202012Validator(model.full_schema)
        try:
            self.base = from_schema(model.schema)
        except StrategyError as exc:
            raise StrategyError(f"model {model.name}: {exc}") from None

    def broken_rules(self, body: Any, skip: str | None = None) -> list[Any]:
        return [
            rule for rule, _ in self.rules if rule.id != skip and _valid(rule.if_, body) and not _valid(rule.then, body)
        ]

    def repair(self, draw: Draw, body: Any, keep: Any = None, skip: str | None = None) -> Any:
        """Repair every broken rule (but ``skip``), keeping ``keep`` (a schema) true throughout."""
        for _ in range(3 * len(self.rules) + 3):
            broken = self.broken_rules(body, skip)
            if not broken:
                return body
            rule = broken[0]
            if draw(st.booleans()):
                body = _satisfy(draw, body, self.schema, rule.then)
            else:
                try:
                    body = _violate(draw, body, self.schema, rule.if_)
                except _GiveUp:
                    body = _satisfy(draw, body, self.schema, rule.then)
            if keep is not None and not _valid(keep, body):
                body = _satisfy(draw, body, self.schema, keep)
        if self.broken_rules(body, skip):
            raise _GiveUp("rules keep breaking each other")
        return body


_COMPILED: dict[int, tuple[Model, _Compiled]] = {}


def _compiled(model: Model) -> _Compiled:
    if not isinstance(model, Model):
        raise StrategyError(f"expected a contracts.Model, got {type(model).__name__}")
    hit = _COMPILED.get(id(model))
    if hit is None or hit[0] is not model:
        hit = (model, _Compiled(model))
        _COMPILED[id(model)] = hit
    return hit[1]


def _set_path(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict) and isinstance(head, str):
        out = dict(body)
        out[head] = _set_path(body.get(head, {} if rest else None), rest, value)
        return out
    if isinstance(body, list) and isinstance(head, int) and head < len(body):
        items = list(body)
        items[head] = _set_path(items[head], rest, value)
        return items
    raise _GiveUp(f"no place {path} in the body")


def _dotted(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _parse_dotted(text: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def valid_requests(
    model: Model, *, fields: Mapping[str, SearchStrategy[Any]] | None = None
) -> SearchStrategy[dict[str, Any]]:
    """Bodies valid against ``model.full_schema`` (its schema and every cross-field rule).

    ``fields`` maps dotted body paths (``input.prompt``, ``input.0.params.seed``) to strategies
    that replace generation there, e.g. a webhook URL pointing at a local receiver. An override
    applies only where the field is present, and must itself keep the body valid.
    """
    compiled = _compiled(model)
    overrides = {_parse_dotted(k): v for k, v in (fields or {}).items()}

    @st.composite
    def bodies(draw: Draw) -> dict[str, Any]:
        body = draw(compiled.base)
        for path, strategy in overrides.items():
            try:
                if _present(body, path):
                    body = _set_path(body, path, draw(strategy))
            except _GiveUp:
                continue
        try:
            body = compiled.repair(draw, body)
        except (_GiveUp, _Conflict, StrategyError):
            reject()
        for path, strategy in overrides.items():
            if _present(body, path):
                body = _set_path(body, path, draw(strategy))
        if not compiled.full.is_valid(body):
            reject()
        result: dict[str, Any] = body
        return result

    return bodies()


def _present(body: Any, path: tuple[str | int, ...]) -> bool:
    node = body
    for part in path:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_dict or in_list):
            return False
        node = node[part]
    return True


# Sites for schema-level mutations: (path to the parent object, field name, field schema).
Site = tuple[tuple[str | int, ...], str, dict[str, Any], bool]


def _sites(schema: Mapping[str, Any], path: tuple[str | int, ...] = ()) -> list[Site]:
    """Every field the schema declares along always-present paths: required objects, and the
    first item of arrays that must hold one."""
    out: list[Site] = []
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        if not isinstance(sub, Mapping):
            continue
        out.append((path, name, dict(sub), name in required))
        if name not in required:
            continue
        kinds = _infer_types(sub)
        if kinds == ["object"]:
            out.extend(_sites(sub, (*path, name)))
        elif kinds == ["array"] and sub.get("minItems", 0) >= 1 and isinstance(sub.get("items"), Mapping):
            item = sub["items"]
            if _infer_types(item) == ["object"]:
                out.extend(_sites(item, (*path, name, 0)))
    for name in required - set(schema.get("properties", {})):
        out.append((path, name, {}, True))
    return out


_WRONG_VALUES: dict[str, Any] = {
    "string": 12345,
    "integer": "not-a-number",
    "number": "not-a-number",
    "boolean": "yes",
    "array": {"not": "an array"},
    "object": ["not", "an", "object"],
    "null": 0,
}


def _wrong_value(schema: Mapping[str, Any]) -> Any:
    """A value of a type the schema refuses (never in its enum)."""
    kinds = _types(schema)
    if kinds is None and "enum" in schema:
        kinds = sorted({_json_type(v) for v in schema["enum"]})
    if kinds is None and "const" in schema:
        kinds = [_json_type(schema["const"])]
    if kinds is None:
        return None
    for candidate in (12345, "not-a-number", ["a"], {"a": 1}, True, None, 1.5):
        if _json_type(candidate) not in kinds and not (_json_type(candidate) == "integer" and "number" in kinds):
            return candidate
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _out_of_enum(schema: Mapping[str, Any]) -> Any:
    """A value of an allowed type that is not one of the allowed values."""
    allowed = schema["enum"] if "enum" in schema else [schema["const"]]
    kinds = _types(schema) or sorted({_json_type(v) for v in allowed})
    if "string" in kinds:
        strings = [v for v in allowed if isinstance(v, str)]
        candidate = (strings[0] if strings else "value") + "-unsupported"
        return candidate
    if "integer" in kinds or "number" in kinds:
        numbers = [v for v in allowed if isinstance(v, int | float) and not isinstance(v, bool)]
        return int(max(numbers, default=0)) + 1
    if "boolean" in kinds:
        bools = [v for v in allowed if isinstance(v, bool)]
        return not bools[0] if len(bools) == 1 else None
    return None


def invalid_requests(model: Model) -> SearchStrategy[Mutation]:
    """(body, reason) pairs that break exactly one thing: a required field dropped, a wrong type,
    a value outside an enum, or one cross-field rule (its ``if`` met, its ``then`` broken)."""
    compiled = _compiled(model)
    valid = valid_requests(model)
    full = compiled.full
    kinds: list[SearchStrategy[Mutation]] = []

    sites = _sites(model.schema)
    drops = [(parent, name) for parent, name, _, required in sites if required]
    typed = [(parent, name, sub) for parent, name, sub, _ in sites if _wrong_value(sub) is not None]
    enums = [
        (parent, name, sub)
        for parent, name, sub, _ in sites
        if ("enum" in sub or "const" in sub) and _out_of_enum(sub) is not None
    ]

    def at_field(sites: list[Any], change: Callable[..., tuple[Any, str]]) -> SearchStrategy[Mutation]:
        """A valid body with one of ``sites`` (``(parent, name, ...)``) changed; ``change(body,
        *site)`` gives the new body and the reason. Refused when the body is still valid."""

        @st.composite
        def mutated(draw: Draw) -> Mutation:
            site = draw(st.sampled_from(sites))
            body = draw(valid)
            if not _present(body, site[0]):
                reject()
            body, reason = change(body, *site)
            if full.is_valid(body):
                reject()
            return Mutation(body, reason)

        return mutated()

    def drop(body: Any, parent: tuple[str | int, ...], name: str) -> tuple[Any, str]:
        node = _get(body, parent)
        body = _set_path(body, parent, {k: v for k, v in node.items() if k != name})
        return body, f"missing required field {_dotted((*parent, name))}"

    def mistype(body: Any, parent: tuple[str | int, ...], name: str, sub: dict[str, Any]) -> tuple[Any, str]:
        wrong = _wrong_value(sub)
        where = _dotted((*parent, name))
        expected = sub.get("type") or "/".join(sorted({_json_type(v) for v in sub.get("enum", [sub.get("const")])}))
        reason = f"wrong type at {where}: {_json_type(wrong)} instead of {expected}"
        return _set_path(body, (*parent, name), wrong), reason

    def leave_enum(body: Any, parent: tuple[str | int, ...], name: str, sub: dict[str, Any]) -> tuple[Any, str]:
        bad = _out_of_enum(sub)
        reason = f"{_dotted((*parent, name))} is {bad!r}, not one of the allowed values"
        return _set_path(body, (*parent, name), bad), reason

    for sites_of_kind, change in ((drops, drop), (typed, mistype), (enums, leave_enum)):
        if sites_of_kind:
            kinds.append(at_field(sites_of_kind, change))
    for rule, _ in compiled.rules:
        kinds.append(_rule_breaker(compiled, rule, valid))
    if not kinds:
        raise StrategyError(f"model {model.name}: its schema gives nothing to break")
    return st.one_of(kinds)


def _get(body: Any, path: tuple[str | int, ...]) -> Any:
    node = body
    for part in path:
        node = node[part]
    return node


def _rule_breaker(compiled: _Compiled, rule: Any, valid: SearchStrategy[dict[str, Any]]) -> SearchStrategy[Mutation]:
    schema = compiled.schema

    @st.composite
    def broken(draw: Draw) -> Mutation:
        body = draw(valid)
        try:
            body = _satisfy(draw, body, schema, rule.if_)
            body = compiled.repair(draw, body, keep=rule.if_, skip=rule.id)
            if not _valid(rule.if_, body):
                raise _GiveUp("if no longer holds")
            within = _merge(schema, rule.if_)
            body = _violate(draw, body, within, rule.then)
        except (_GiveUp, _Conflict, StrategyError):
            reject()
        ok = (
            _valid(schema, body)
            and _valid(rule.if_, body)
            and not _valid(rule.then, body)
            and not compiled.broken_rules(body, skip=rule.id)
            and not compiled.full.is_valid(body)
        )
        if not ok:
            reject()
        return Mutation(body, f"breaks rule {rule.id}: {rule.message}")

    return broken()

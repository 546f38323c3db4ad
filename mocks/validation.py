"""Request validation: a compiled validator on the hot path, jsonschema to explain failures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
from veomock.contracts import Model
from veomock.mocks.jsontext import lone_surrogate

__all__ = ["Invalid", "RequestValidator", "validator_for"]


@dataclass(frozen=True)
class Invalid:
    """Why a request body was refused: a message that says what to fix, where, and which rule."""

    message: str
    location: str
    rule: str | None = None


def _location(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def json_type(value: Any) -> str:
    """The JSON name of a value's type: null, boolean, integer, number, string, array, object."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _show(value: Any, limit: int = 80) -> str:
    """A value as JSON (``null``, ``"text"``), cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _location(error.absolute_path)
    v, value = error.validator, error.validator_value
    if v == "required":
        missing = [k for k in value if isinstance(error.instance, dict) and k not in error.instance]
        field = f"{where}.{missing[0]}" if where != "body" and missing else (missing[0] if missing else where)
        return f"{field} is required"
    if v == "enum":
        allowed = ", ".join(_show(x) for x in value)
        return f"{where} is {_show(error.instance)}; use one of {allowed}"
    if v == "const":
        return f"{where} must be {_show(value)}, not {_show(error.instance)}"
    if v == "type":
        wanted = " or ".join(value) if isinstance(value, list) else value
        return f"{where} must be of type {wanted}, not {json_type(error.instance)}"
    if v in ("minLength", "maxLength"):
        return f"{where} must have {'at least' if v == 'minLength' else 'at most'} {value} characters"
    if v in ("minItems", "maxItems"):
        return f"{where} must have {'at least' if v == 'minItems' else 'at most'} {value} items"
    if v in ("minimum", "maximum"):
        return f"{where} must be {'at least' if v == 'minimum' else 'at most'} {value}, not {_show(error.instance)}"
    if v == "pattern":
        return f"{where} is {_show(error.instance)}, which does not match {_show(value)}"
    if v == "additionalProperties":
        known = sorted((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else [])
        return f"{where} has an unknown field; allowed fields: {', '.join(known)}"
    return f"{where}: {error.message}"


class RequestValidator:
    """Validates one model's request bodies against its schema and cross-field rules."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._fast = jsonschema_rs.validator_for(model.full_schema)
        self._base = jsonschema.Draft202012Validator(model.schema)
        self._rules = [
            (rule, jsonschema.Draft202012Validator(rule.if_), jsonschema.Draft202012Validator(rule.then))
            for rule in model.rules
        ]

    def is_valid(self, body: Any) -> bool:
        return self.check(body) is None

    def check(self, body: Any) -> Invalid | None:
        """None for a valid body; otherwise the first thing to fix."""
        try:
            if self._fast.is_valid(body):
                return None
        except ValueError:  # UnicodeEncodeError: the compiled validator takes only Unicode text
            where = lone_surrogate(body)
            if where is None:
                raise
            return Invalid(f"{where} holds a lone surrogate (U+D800 to U+DFFF), which is no character", where)
        best = jsonschema.exceptions.best_match(self._base.iter_errors(body))
        if best is not None:
            return Invalid(_describe(best), _location(best.absolute_path))
        for rule, when, then in self._rules:
            if when.is_valid(body) and not then.is_valid(body):
                return Invalid(rule.message, "body", rule.id)
        return Invalid("the request body is invalid", "body")


_VALIDATORS: dict[int, tuple[Model, RequestValidator]] = {}


def validator_for(model: Model) -> RequestValidator:
    """The validator of a (cached, read-only) model, compiled once."""
    entry = _VALIDATORS.get(id(model))
    if entry is None or entry[0] is not model:
        entry = (model, RequestValidator(model))
        _VALIDATORS[id(model)] = entry
    return entry[1]

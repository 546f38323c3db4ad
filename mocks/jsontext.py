"""JSON text in and out of the mock: request bodies parsed, response bodies encoded.

Both run on every request, so orjson (about 0.4 us to parse a submit body and 0.1 us to encode a
reply, against 2 us each for the standard library) does the common case. Whatever orjson refuses
goes to the standard library, which decides: ``NaN``, ``1e400`` and lone surrogates parse as Python
always parsed them, and malformed input fails with the standard library's error (line, column and
message), so no answer changes with the parser. orjson reads an integer past 64 bits as a float
without a word, so a body with a run of 19 or more digits goes to the standard library at once.

The standard parser recurses once per level of nesting; a body such as ``[[[[...`` thousands of
levels deep raises :class:`RecursionError`, which is no :class:`ValueError`. :func:`loads` turns it
into :class:`TooDeep` (a ``ValueError``), so callers that refuse bad JSON refuse this too.

A request body is read with :func:`loads_body`, which also holds it to what RFC 8259 section 8 asks
of JSON exchanged between systems: UTF-8 (section 8.1), and strings of Unicode characters (section
8.2: an escaped lone surrogate such as ``"\\ud800"`` names no character), and numbers as its grammar
writes them (no ``NaN`` or ``Infinity``). Anything else raises
:class:`NotText`, so a body that no JSON parser reads the same way twice is refused at the door.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

__all__ = ["NotText", "TooDeep", "dumps", "finite", "json_text", "json_type", "loads", "loads_body", "lone_surrogate"]


class TooDeep(ValueError):
    """JSON nested more deeply than the parser can follow."""


class NotText(ValueError):
    """JSON that is not UTF-8, or that holds a lone surrogate (RFC 8259 section 8)."""


_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def loads(raw: bytes | str) -> Any:
    if isinstance(raw, bytes) and not _LONG_NUMBER.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return _standard(raw)


def _standard(raw: bytes | str, constant: Any = None) -> Any:
    try:
        return json.loads(raw, parse_constant=constant)
    except RecursionError:
        raise TooDeep("the JSON is nested too deeply to parse; send at most a few hundred levels") from None


def loads_body(raw: bytes) -> Any:
    """A request body: :func:`loads`, for UTF-8 text whose strings are all Unicode characters.

    orjson takes nothing else, so its answer stands; whatever it refuses is decoded strictly here
    before the standard library reads it."""
    if not _LONG_NUMBER.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise NotText(f"the body is not UTF-8 (byte 0x{byte:02x} at offset {exc.start}); encode it as UTF-8") from None
    value = _standard(text, _no_constant)
    if "\\u" in text:
        where = lone_surrogate(value)
        if where is not None:
            raise NotText(
                f"{where} holds a lone surrogate escape (\\ud800 to \\udfff with no pair), which is no "
                "character; send the text as UTF-8 or escape a whole surrogate pair"
            )
    return value


def _no_constant(name: str) -> Any:
    raise NotText(f"{name} is not JSON (RFC 8259 has no {name}); send a number, or null")


def lone_surrogate(value: Any) -> str | None:
    """Where in ``value`` a lone surrogate sits (``input.prompt``, or a key of ``input``); else None.

    Iterative: a body may be nested as deeply as the parser follows."""
    stack: list[tuple[Any, str]] = [(value, "body")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key in reversed(list(item)):
                if isinstance(key, str) and _SURROGATE.search(key):
                    return f"a key of {where}"
                stack.append((item[key], key if where == "body" else f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((item[i], f"{where}[{i}]") for i in reversed(range(len(item))))
    return None


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON. Values orjson cannot encode (integers past 64 bits, keys that are not
    strings) are encoded by the standard library. NaN and infinities, which JSON cannot carry,
    encode as ``null`` (the standard library would raise, and the mock would answer 500)."""
    try:
        # orjson's bytes keep the buffer they were written into (4 KiB for a 60-byte reply). The
        # journal and the status memo keep bodies for long, so take a right-sized copy (70 ns).
        return orjson.dumps(value).decode().encode()
    except TypeError:
        return _encode(value).encode()


_TYPES = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (list, "array"), (dict, "object"))


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``null``, ``string``, ``array``...), for messages."""
    if value is None:
        return "null"
    return next((name for kind, name in _TYPES if isinstance(value, kind)), type(value).__name__)


def json_text(value: Any) -> str:
    """A parsed value as JSON spells it (``null``, ``true``, ``"text"``, ``NaN``), for messages."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        return str(value)


def finite(name: str, value: Any) -> float:
    """``value`` as a float, or :class:`ValueError` unless it is a finite JSON number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {json_type(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, not {json_text(value)}")
    return number

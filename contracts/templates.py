"""The small template language of contracts: ``{{ path | filter(arg) }}`` inside YAML values.

A string that is exactly one ``{{ ... }}`` renders to the value itself (a number stays a number);
a string mixing text and placeholders renders to a string. A mapping ``{$json: T}`` renders T and
encodes it as a compact JSON string (for fields that carry JSON text). A value that renders to
:data:`OMIT` removes its key from the enclosing mapping. Templates compile once, at load time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["FIELDS", "OMIT", "ROOTS", "Template", "TemplateError", "compile_expression", "compile_template"]

Render = Callable[[Mapping[str, Any]], Any]

ROOTS = frozenset({"job", "body", "header", "query", "path", "request", "message", "balance", "account", "retry_after"})
#: The keys a template may read under the roots whose keys the engine fixes (``job.fail_message``).
FIELDS = {
    "job": frozenset(
        {
            "id",
            "model",
            "state",
            "status",
            "created_at",
            "started_at",
            "updated_at",
            "completed_at",
            "elapsed",
            "progress",
            "fail_code",
            "fail_message",
            "result_urls",
            "params",
            "price",
            "media_type",
        }
    ),
    "balance": frozenset({"remaining", "initial", "charged"}),
    "request": frozenset({"base_url"}),
}


class TemplateError(ValueError):
    """A template that cannot compile; the message says what to fix."""


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()

# One encoder, reused: json.dumps with options builds a new encoder on every call.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_FILTER = re.compile(r"^([a-z_]+)(?:\((.*)\))?$")
_ROOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


def _ts(fmt: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        moment = datetime.fromtimestamp(float(value), UTC)
        if fmt == "iso_ms":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return moment.strftime(fmt)

    return convert


def _seconds(value: Any) -> int:
    text = str(value).strip().lower().removesuffix("s")
    return int(float(text))


_FILTERS: dict[str, Callable[..., Any]] = {
    "iso_ms": _ts("iso_ms"),
    "iso": _ts("%Y-%m-%dT%H:%M:%SZ"),
    "sql": _ts("%Y-%m-%d %H:%M:%S"),
    "unix_ms": lambda v: round(float(v) * 1000),
    "unix_s": lambda v: int(float(v)),
    "ms": lambda v: round(float(v) * 1000),
    "seconds": _seconds,
    "int": lambda v: int(v),
    "float": lambda v: float(v),
    "str": lambda v: str(v),
    "lower": lambda v: str(v).lower(),
    "upper": lambda v: str(v).upper(),
    "json": lambda v: _compact(v),
    "round": lambda v, n=2: round(float(v), int(n)),
}
# Filters that also see None; every other filter passes None through untouched.
_NONE_AWARE: dict[str, Callable[..., Any]] = {
    "default": lambda v, d=None: d if v is None else v,
    "omit_if_none": lambda v: OMIT if v is None else v,
}


def _parse_arg(text: str | None) -> list[Any]:
    if text is None or not text.strip():
        return []
    raw = text.strip()
    if raw.startswith("'") and raw.endswith("'"):
        raw = json.dumps(raw[1:-1])
    try:
        return [json.loads(raw)]
    except json.JSONDecodeError as exc:
        raise TemplateError(f"filter argument {text!r} is not a JSON literal or a quoted string") from exc


def compile_expression(source: str) -> Render:
    """Compile ``path | filter(arg) | ...`` (without braces) into a function of the context."""
    parts = [p.strip() for p in source.split("|")]
    path = parts[0]
    if not _PATH.match(path):
        raise TemplateError(f"{path!r} is not a dotted path such as job.id or body.input.prompt")
    keys = tuple(path.split("."))
    if keys[0] not in ROOTS:
        known = ", ".join(sorted(ROOTS))
        raise TemplateError(f"unknown root {keys[0]!r} in {source!r}; templates can read: {known}")
    steps: list[tuple[Callable[..., Any], list[Any], bool]] = []
    for part in parts[1:]:
        match = _FILTER.match(part)
        if not match:
            raise TemplateError(f"{part!r} is not a filter call such as default('16:9')")
        name = match.group(1)
        if name in _NONE_AWARE:
            steps.append((_NONE_AWARE[name], _parse_arg(match.group(2)), True))
        elif name in _FILTERS:
            steps.append((_FILTERS[name], _parse_arg(match.group(2)), False))
        else:
            known = ", ".join(sorted({*_FILTERS, *_NONE_AWARE}))
            raise TemplateError(f"unknown filter {name!r}; known filters: {known}")

    lookup = _lookup(keys)

    if not steps:
        return lookup  # a bare path (most placeholders): no filter loop to run

    def render(ctx: Mapping[str, Any]) -> Any:
        value = lookup(ctx)
        for func, args, sees_none in steps:
            if value is None and not sees_none:
                continue
            value = func(value, *args)
        return value

    return render


def _step(value: Any, key: str) -> Any:
    """``value[key]`` for a mapping, ``value[int(key)]`` for a list; None when there is none."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list) and key.isdigit() and int(key) < len(value):
        return value[int(key)]
    return None


def _lookup(keys: tuple[str, ...]) -> Render:
    """A function reading the dotted path ``keys``; paths of one to three keys (nearly all) are
    unrolled, with plain dicts read directly."""
    if len(keys) == 1:
        (k0,) = keys
        return lambda ctx: ctx.get(k0) if type(ctx) is dict else _step(ctx, k0)
    if len(keys) == 2:
        k0, k1 = keys

        def two(ctx: Mapping[str, Any]) -> Any:
            v = ctx.get(k0) if type(ctx) is dict else _step(ctx, k0)
            return v.get(k1) if type(v) is dict else _step(v, k1)

        return two
    if len(keys) == 3:
        k0, k1, k2 = keys

        def three(ctx: Mapping[str, Any]) -> Any:
            v = ctx.get(k0) if type(ctx) is dict else _step(ctx, k0)
            v = v.get(k1) if type(v) is dict else _step(v, k1)
            return v.get(k2) if type(v) is dict else _step(v, k2)

        return three

    steps = tuple((key, int(key) if key.isdigit() else -1) for key in keys)

    def walk(ctx: Mapping[str, Any]) -> Any:
        value: Any = ctx
        for key, index in steps:
            if type(value) is dict:
                value = value.get(key)
            elif type(value) is list:
                value = value[index] if 0 <= index < len(value) else None
            else:
                value = _step(value, key)
        return value

    return walk


def _compile_string(text: str) -> Render | str:
    matches = list(_PLACEHOLDER.finditer(text))
    if not matches:
        return text
    if len(matches) == 1 and matches[0].span() == (0, len(text)):
        return compile_expression(matches[0].group(1))
    pieces: list[Render | str] = []
    last = 0
    for match in matches:
        pieces.append(text[last : match.start()])
        pieces.append(compile_expression(match.group(1)))
        last = match.end()
    pieces.append(text[last:])

    def render(ctx: Mapping[str, Any]) -> str:
        out = []
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                value = piece(ctx)
                out.append("" if value is None else str(value))
        return "".join(out)

    return render


def _compile(node: Any) -> Any:
    if isinstance(node, str):
        return _compile_string(node)
    if isinstance(node, list):
        items = [_compile(item) for item in node]
        if not any(callable(i) for i in items):
            return node

        def render_list(ctx: Mapping[str, Any]) -> list[Any]:
            out = []
            for item in items:
                value = item(ctx) if callable(item) else item
                if value is not OMIT:
                    out.append(value)
            return out

        return render_list
    if isinstance(node, dict):
        if set(node) == {"$json"}:
            inner = _compile(node["$json"])

            def render_json(ctx: Mapping[str, Any]) -> str:
                value = inner(ctx) if callable(inner) else inner
                return _compact(value)

            return render_json
        entries = [(k, _compile(v)) for k, v in node.items()]
        if not any(callable(v) for _, v in entries):
            return node

        def render_dict(ctx: Mapping[str, Any]) -> dict[str, Any]:
            out = {}
            for key, item in entries:
                value = item(ctx) if callable(item) else item
                if value is not OMIT:
                    out[key] = value
            return out

        return render_dict
    return node


class Template:
    """A compiled template; ``render(ctx)`` returns a fresh JSON-ready value."""

    __slots__ = ("_render", "_static", "_text", "roots", "source")

    def __init__(self, source: Any) -> None:
        self.source = source
        compiled = _compile(source)
        self._render: Render | None = compiled if callable(compiled) else None
        self._static = compiled
        text = json.dumps(source)
        #: The context roots the template reads (``job``, ``body``, ...): what its output depends on.
        self.roots = frozenset(_ROOT.findall(text))
        self._text = text

    def fields(self, root: str) -> frozenset[str] | None:
        """The keys of ``root`` the template reads (``job.id`` reads ``id``); None when it reads
        ``root`` whole (``{{ job | json }}``), so every key counts."""
        if re.search(r"\{\{\s*" + re.escape(root) + r"\s*(\||\}\})", self._text):
            return None
        return frozenset(re.findall(r"\{\{\s*" + re.escape(root) + r"\.([A-Za-z0-9_-]+)", self._text))

    def renderer(self) -> Render:
        """``render`` as a plain function (one call less on hot paths)."""
        if self._render is not None:
            return self._render
        if isinstance(self._static, dict | list):
            return self.render
        static = self._static
        return lambda ctx: static

    def render(self, ctx: Mapping[str, Any]) -> Any:
        if self._render is not None:
            return self._render(ctx)
        if isinstance(self._static, dict | list):
            return copy.deepcopy(self._static)  # a fresh copy: callers may change what they get
        return self._static


def compile_template(source: Any) -> Template:
    return Template(source)

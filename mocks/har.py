"""HAR sessions: read one as exchanges, find each exchange's route in a contract, redact secrets.

A session may come from ``veomock record``, from veomock's own journal (``/_veomock/journal.har``)
or from any tool that exports HAR 1.2 (a browser, a proxy, a user's logs). Reading keeps what
playback and the drift check need and refuses a file that is not HAR with a message that says
what is wrong. Callback attempts that veomock journaled (``_veomock.direction: outbound``) are
not requests to the provider and are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.routing import compile_path
from veomock.contracts import Contract, Operation

__all__ = [
    "REDACTED",
    "Exchange",
    "HarError",
    "extract",
    "find_route",
    "job_fields",
    "literals",
    "placeholders",
    "read_har",
    "redact_headers",
    "redact_json",
    "request_job_id",
    "status_state",
    "value_at",
]

REDACTED = "REDACTED"
_SECRET = re.compile(r"authorization|api[-_]?key|(^|[-_])key$|token$|secret|password|signature|cookie", re.I)
_PLACEHOLDER = re.compile(r"^\{\{\s*([a-z_]+(?:\.[a-z_]+)?)\s*(\|[^}]*)?\}\}$")


class HarError(ValueError):
    """A file that is not a usable HAR session; the message says what to fix."""


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, as read from a HAR entry (header names in lower case)."""

    index: int
    time: float  # epoch seconds the request started
    method: str
    url: str
    path: str
    query: dict[str, str]
    request_headers: dict[str, str]
    request_body: Any  # parsed JSON where it parses, else the text, else None
    status: int  # 0: no answer (a HAR's way of saying the connection failed)
    response_headers: dict[str, str]
    response_body: Any
    response_text: str

    @property
    def json(self) -> bool:
        """Whether the answer parsed as JSON."""
        return self.response_text != "" and not isinstance(self.response_body, str)


def _parse(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _epoch(stamp: Any, where: str) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HarError(f"{where}.startedDateTime is {stamp!r}; HAR wants an ISO 8601 time") from None


def _headers(items: Any) -> dict[str, str]:
    return {str(h.get("name", "")).lower(): str(h.get("value", "")) for h in items or [] if isinstance(h, Mapping)}


def read_har(data: Any) -> list[Exchange]:
    """The requests of a HAR session (text, bytes or the parsed object), in the order they started."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise HarError(f"not JSON ({exc.msg} at line {exc.lineno}); a HAR file is JSON") from None
    log = data.get("log") if isinstance(data, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise HarError('a HAR file is {"log": {"entries": [...]}}; this one has no log.entries list')
    out = []
    for i, entry in enumerate(entries):
        where = f"log.entries[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("request"), Mapping):
            raise HarError(f"{where} has no request object")
        own = entry.get("_veomock") or {}
        if isinstance(own, Mapping) and own.get("direction") == "outbound":
            continue
        request, response = entry["request"], entry.get("response") or {}
        url = str(request.get("url", ""))
        parts = urlsplit(url)
        text = str((response.get("content") or {}).get("text") or "")
        try:
            status = int(response.get("status") or 0)
        except (TypeError, ValueError):
            raise HarError(f"{where}.response.status is {response.get('status')!r}; use a number") from None
        out.append(
            Exchange(
                index=i,
                time=_epoch(entry.get("startedDateTime"), where),
                method=str(request.get("method", "GET")).upper(),
                url=url,
                path=parts.path or "/",
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                request_headers=_headers(request.get("headers")),
                request_body=_parse((request.get("postData") or {}).get("text")),
                status=status,
                response_headers=_headers(response.get("headers")),
                response_body=_parse(text),
                response_text=text,
            )
        )
    return sorted(out, key=lambda x: (x.time, x.index))


def find_route(contract: Contract, method: str, path: str) -> tuple[Operation | None, dict[str, str]] | None:
    """The operation serving ``method path`` (None for the media route) and its path parameters;
    None where the contract has no such route."""
    for op in contract.operations:
        regex, _, _ = compile_path(op.path)
        found = regex.match(path)
        if found and op.method == method:
            return op, found.groupdict()
    regex, _, _ = compile_path(contract.media_path)
    found = regex.match(path)
    if found and method in ("GET", "HEAD"):
        return None, found.groupdict()
    return None


def request_job_id(op: Operation, exchange: Exchange, params: Mapping[str, str]) -> str | None:
    """The job a status request asks about, read where the contract says (``id_from``)."""
    if op.id_from is None:
        return None
    ctx = {
        "query": exchange.query,
        "path": dict(params),
        "header": exchange.request_headers,
        "body": exchange.request_body if isinstance(exchange.request_body, Mapping) else {},
    }
    try:
        value = op.id_from.render(ctx)
    except (KeyError, TypeError, ValueError):
        return None
    return None if value in (None, "") else str(value)


def placeholders(source: Any, path: tuple[Any, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Where a response template puts each value that a placeholder fills whole:
    ``{"data": {"taskId": "{{ job.id }}"}, "msg": "{{ message }}"}`` ->
    ``{"job.id": ("data", "taskId"), "message": ("msg",)}`` (the first place of each)."""
    out: dict[str, tuple[Any, ...]] = {}
    items = source.items() if isinstance(source, Mapping) else enumerate(source) if isinstance(source, list) else ()
    for key, value in items:
        for name, where in placeholders(value, (*path, key)).items():
            out.setdefault(name, where)
    if isinstance(source, str):
        found = _PLACEHOLDER.match(source.strip())
        if found:
            out[found.group(1)] = path
    return out


def job_fields(source: Any) -> dict[str, tuple[Any, ...]]:
    """:func:`placeholders` of the job: ``{"id": ("data", "taskId"), "status": ("data", "state")}``."""
    return {name[4:]: where for name, where in placeholders(source).items() if name.startswith("job.")}


def literals(source: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every fixed value of a response template (no placeholder in it), with its path."""
    items = source.items() if isinstance(source, Mapping) else enumerate(source) if isinstance(source, list) else ()
    for key, value in items:
        yield from literals(value, (*path, key))
    if not isinstance(source, Mapping | list) and not (isinstance(source, str) and "{{" in source):
        yield path, source


def _walk(node: Any, parts: list[str]) -> Iterable[Any]:
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    if head == "$json":
        if isinstance(node, str):
            try:
                yield from _walk(json.loads(node), rest)
            except json.JSONDecodeError:
                return
        return
    if head == "*":
        if isinstance(node, list):
            for item in node:
                yield from _walk(item, rest)
        return
    if isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest)
    elif isinstance(node, list) and head.isdigit() and int(head) < len(node):
        yield from _walk(node[int(head)], rest)


def extract(body: Any, path: str) -> list[Any]:
    """Every value at ``path`` in ``body``; lists at the end are flattened one level. A path is
    dotted keys and list indices, with ``*`` for every item of a list and ``$json`` for a string
    that holds JSON (the contracts' ``result`` paths); ``a.b | c.d`` names alternatives: the
    values of the first that yields any."""
    for alternative in path.split("|"):
        out: list[Any] = []
        for value in _walk(body, alternative.strip().split(".")):
            if isinstance(value, list):
                out.extend(value)
            elif value is not None:
                out.append(value)
        if out:
            return out
    return []


def value_at(body: Any, path: Sequence[Any], default: Any = None) -> Any:
    """The value at ``path`` (keys and list indices) in ``body``, or ``default``."""
    node = body
    for part in path:
        listed = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if listed or (isinstance(node, Mapping) and part in node):
            node = node[part]
        else:
            return default
    return node


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        yield from _leaves(value[0], (*path, 0))
    else:
        yield path


def _fit(source: Any, body: Any) -> int | None:
    """How well a body fits a response template: None when a fixed value of the template differs,
    else the fields they share less the fields only the body has."""
    absent = object()
    if any(value_at(body, path, absent) != value for path, value in literals(source)):
        return None
    wanted, have = set(_leaves(source)), set(_leaves(body))
    return len(wanted & have) - len(have - wanted)


def status_state(contract: Contract, body: Any) -> tuple[frozenset[str], str | None, str | int | None]:
    """What a status answer shows: the canonical states it may be, the state name it gives (where
    the contract's bodies carry one) and the failure code it gives.

    The name narrows the states (several may share one); the body's fit to each state's template
    decides between them, and alone where the bodies carry no name. No state: the name is not one
    of the contract's, or the body fits no state's template.
    """
    named = [job_fields(spec.body.source).get("status") for spec in contract.status.values()]
    paths = [path for path in dict.fromkeys(named) if path is not None]
    name = next((str(v) for v in (value_at(body, p) for p in paths) if v is not None), None)
    if paths:
        states = [c for c, n in contract.states.items() if str(n) == name] if name is not None else []
    else:
        states = list(contract.status)
    fits = {c: _fit(contract.status[c].body.source, body) for c in states}
    scored = {c: f for c, f in fits.items() if f is not None}
    if scored:
        best = max(scored.values())
        states = [c for c in states if scored.get(c) == best]
    elif not paths:
        states = []
    code = None
    for state in states:
        where = job_fields(contract.status[state].body.source).get("fail_code")
        if where is not None and value_at(body, where) is not None:
            code = value_at(body, where)
            break
    return frozenset(states), name, code


def _secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def redact_headers(headers: Iterable[tuple[str, str]], also: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Headers with every credential replaced (a ``Bearer`` scheme is kept, so the format still shows)."""
    extra = {name.lower() for name in also}
    out = []
    for name, value in headers:
        if _secret(name) or name.lower() in extra:
            scheme = value.split(" ", 1)[0] if " " in value.strip() else ""
            value = f"{scheme} {REDACTED}" if scheme else REDACTED
        out.append((name, value))
    return out


def redact_json(value: Any) -> Any:
    """A JSON value with every field whose name says it holds a key, token or secret replaced."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _secret(str(k)) and isinstance(v, str | int | float) else redact_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value

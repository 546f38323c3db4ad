"""The journal: one list of inbound requests and outbound webhook attempts, filtered and exported.

An inbound entry (``mocks.app``) carries ``direction: inbound``, provider, operation, method, path,
url, status, key, job, and the exchange as ``request`` / ``response`` objects with ``headers``
(a list of ``[name, value]``) and ``body`` (text). An outbound entry (``mocks.webhooks``) carries
``direction: outbound``, url, status, ``headers`` and ``body`` of the callback it sent.
:func:`to_har` turns either kind into HAR 1.2 entries.

Memory is bounded two ways. A body longer than :data:`BODY_LIMIT` bytes is kept as its first
:data:`BODY_LIMIT` bytes, its length and its SHA-256 (read back as the text followed by
``… [1048576 bytes, sha256 …]``), so a refused 1 MiB body costs 16 KiB. And the journal holds at
most ``maxlen`` entries and about ``max_bytes`` (default :data:`JOURNAL_BYTES`, 64 MiB): each entry
is weighed when it is added (its bodies and headers plus :data:`ENTRY_BYTES` for the rest), and
the oldest entries go first.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "BODY_LIMIT",
    "ENTRY_BYTES",
    "EXCHANGE",
    "FILTERS",
    "JOURNAL_BYTES",
    "Journal",
    "exchange",
    "expanded",
    "mask_secret",
    "masked",
    "select",
    "to_har",
]

BODY_LIMIT = 16 * 1024  # bytes of a body kept whole; past it, this many, the length and the SHA-256
JOURNAL_BYTES = 64 * 1024 * 1024  # what the journal holds at most, about
ENTRY_BYTES = 1024  # what an entry costs beyond its bodies and headers (its dict, times, names)
FILTERS = ("provider", "direction", "operation", "key", "status", "job")
_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _kept(body: Any) -> Any:
    """A body as the journal keeps it: whole up to :data:`BODY_LIMIT` bytes, else (head, length, sha256)."""
    if isinstance(body, bytes | bytearray | memoryview) and len(body) > BODY_LIMIT:
        return (bytes(body[:BODY_LIMIT]), len(body), hashlib.sha256(body).hexdigest())
    return body


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, tuple):
        head, size, digest = raw
        return bytes(head).decode("utf-8", errors="replace") + f"… [{size} bytes, sha256 {digest}]"
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw).decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)


def _exchange_fields(raw: tuple[Any, ...]) -> dict[str, Any]:
    """The ``url``, ``request``, ``response`` (and ``fault``) of an entry, from what :func:`exchange` kept."""
    scheme, root, path, query, request_headers, request_body, response_headers, response_body, fault = raw
    host = next((v for k, v in request_headers if k == b"host"), b"").decode("latin-1")
    url = f"{scheme}://{host}{root}{path}" + ("?" + query.decode("latin-1") if query else "")
    out: dict[str, Any] = {
        "url": url,
        "request": {
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request_headers],
            "body": _text(request_body),
        },
        "response": {
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response_headers],
            "body": _text(response_body),
        },
    }
    if fault is not None:
        out["fault"] = {"delay": fault[0], "fault": fault[1]}
    return out


def exchange(request: Request, response: Response) -> tuple[Any, ...]:
    """The exchange, to be stored under :data:`EXCHANGE` in a journal entry; :class:`Journal`
    expands it when read.

    Decoding headers and bodies on every request would cost more than serving it; the journal is
    read rarely (control API, HAR, conformance grading), so that work happens there, once. What is
    kept is one tuple of strings, bytes and tuples: once the collector has seen such an entry it
    stops tracking it, so a full journal costs the collector nothing.
    """
    scope = request.scope
    fault = scope.get("veomock.fault")
    sent = getattr(request, "_body", None)
    body = getattr(response, "body", None)
    return (
        scope.get("scheme", "http"),
        scope.get("root_path", ""),
        scope["path"],
        scope.get("query_string", b""),
        tuple(scope["headers"]),
        None if sent is None else _kept(sent),
        tuple(response.raw_headers),
        body if type(body) is bytes and len(body) <= BODY_LIMIT else _kept(body),
        None if fault is None else (fault.delay, fault.fault),
    )


EXCHANGE = "_exchange"  # the entry key of the raw exchange, until the entry is read


def expanded(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with its raw exchange (under :data:`EXCHANGE`, if any) replaced, in place, by the
    ``url``, ``request``, ``response`` (and ``fault``) it stands for."""
    raw = entry.pop(EXCHANGE, None)
    if raw is not None:
        entry.update(_exchange_fields(raw))
    return entry


def _size(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, tuple):
        return BODY_LIMIT + 128
    if isinstance(body, bytes | bytearray | memoryview | str):
        return len(body)
    return len(json.dumps(body, default=str))


def weigh(entry: Mapping[str, Any]) -> int:
    """About how many bytes ``entry`` holds: its bodies and headers, plus :data:`ENTRY_BYTES`."""
    raw = entry.get(EXCHANGE)
    if raw is not None:
        heads = 0
        for name, value in raw[4]:  # a plain loop: a few headers add up faster than through map and chain
            heads += len(name) + len(value)
        for name, value in raw[6]:
            heads += len(name) + len(value)
        request, response = raw[5], raw[7]
        bodies = 0 if request is None else _size(request)
        bodies += len(response) if type(response) is bytes else _size(response)
        return ENTRY_BYTES + heads + len(raw[3]) + len(raw[2]) + bodies
    headers = entry.get("headers")
    heads = sum(len(str(k)) + len(str(v)) for k, v in headers.items()) if isinstance(headers, Mapping) else 0
    return (
        ENTRY_BYTES
        + heads
        + len(str(entry.get("url", "")))
        + len(str(entry.get("error") or ""))
        + _size(entry.get("body"))
    )


class Journal:
    """A log of entries, newest last, bounded by count and by bytes (the oldest go first).
    Iterating expands captured exchanges in place."""

    def __init__(self, maxlen: int, max_bytes: int = JOURNAL_BYTES) -> None:
        self._entries: deque[dict[str, Any]] = deque()
        self._weights: deque[int] = deque()
        self._maxlen = maxlen
        self.max_bytes = max_bytes
        self.bytes = 0  # what the entries held weigh, about

    @property
    def maxlen(self) -> int | None:
        return self._maxlen

    def append(self, entry: dict[str, Any]) -> None:
        weight = weigh(entry)
        self._entries.append(entry)
        self._weights.append(weight)
        self.bytes += weight
        while len(self._entries) > self._maxlen or (self.bytes > self.max_bytes and len(self._entries) > 1):
            self._entries.popleft()
            self.bytes -= self._weights.popleft()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in list(self._entries):  # a snapshot: the server may append while someone reads
            yield expanded(entry)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return list(self)[index]

    def drop(self, key: str) -> None:
        """Forget the entries of one API key."""
        kept = [(e, w) for e, w in zip(self._entries, self._weights, strict=True) if e.get("key") != key]
        self._entries = deque(e for e, _ in kept)
        self._weights = deque(w for _, w in kept)
        self.bytes = sum(self._weights)


def mask_secret(secret: str) -> str:
    """An API key or token as listings show it: enough to tell keys apart, not enough to use one."""
    if len(secret) >= 12:
        return f"{secret[:4]}…{secret[-4:]}"
    return f"{secret[:2]}…{secret[-2:]}" if len(secret) >= 6 else "…"


def _mask_header(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    return f"{scheme} {mask_secret(token.strip())}" if token and scheme.lower() == "bearer" else mask_secret(value)


def masked(entries: Iterable[Mapping[str, Any]], secret_headers: Collection[str]) -> list[dict[str, Any]]:
    """Copies of ``entries`` with every API key shown as :func:`mask_secret` shows it: the ``key``
    field, the values of ``secret_headers`` (lower-case names), and the key wherever else it appears
    in a header or the URL."""
    out = []
    for entry in entries:
        copy = dict(entry)
        key = entry.get("key")
        hidden = mask_secret(key) if isinstance(key, str) and key else None

        def clean(name: Any, value: Any, key: Any = key, hidden: str | None = hidden) -> str:
            text = str(value)
            if str(name).lower() in secret_headers:
                return _mask_header(text)
            return text.replace(key, hidden) if hidden is not None else text

        if hidden is not None:
            copy["key"] = hidden
            if "url" in entry:
                copy["url"] = clean("", entry["url"])
        for part in ("request", "response"):
            section = entry.get(part)
            if isinstance(section, Mapping):
                headers = [[name, clean(name, value)] for name, value in section.get("headers") or []]
                copy[part] = {**section, "headers": headers}
        if isinstance(entry.get("headers"), Mapping):
            copy["headers"] = {name: clean(name, value) for name, value in entry["headers"].items()}
        out.append(copy)
    return out


def _status_matches(actual: Any, wanted: str) -> bool:
    if actual is None:
        return wanted in ("none", "null")
    text = str(actual)
    if len(wanted) == 3 and wanted.endswith("xx"):
        return text[:1] == wanted[0]
    return text == wanted


def select(entries: Iterable[Mapping[str, Any]], filters: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Entries matching every filter given: provider, direction, operation, key, job, status (429, 4xx)."""
    unknown = [k for k, v in filters.items() if v is not None and k not in FILTERS]
    if unknown:
        raise ValueError(f"unknown journal filter {unknown[0]!r}; filters: {', '.join(FILTERS)}")
    wanted = {k: v for k, v in filters.items() if v is not None and k != "status"}
    status = filters.get("status")
    return [
        dict(e)
        for e in entries
        if all(str(e.get(k)) == v for k, v in wanted.items())
        and (status is None or _status_matches(e.get("status"), status))
    ]


def _iso(seconds: Any) -> str:
    moment = datetime.fromtimestamp(float(seconds or 0), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _pairs(headers: Any) -> list[dict[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    return [{"name": str(k), "value": str(v)} for k, v in items]


def _mime(headers: list[dict[str, str]], default: str) -> str:
    return next((h["value"] for h in headers if h["name"].lower() == "content-type"), default)


def _har_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    outbound = entry.get("direction") == "outbound"
    if outbound:
        req: Mapping[str, Any] = {"headers": entry.get("headers"), "body": _text(entry.get("body"))}
        res: Mapping[str, Any] = {"headers": [], "body": entry.get("error")}
        method, url = str(entry.get("method", "POST")), str(entry.get("url", ""))
    else:
        req, res = entry.get("request") or {}, entry.get("response") or {}
        method, url = str(entry.get("method", "GET")), str(entry.get("url") or entry.get("path", ""))
    req_headers, res_headers = _pairs(req.get("headers")), _pairs(res.get("headers"))
    status = int(entry.get("status") or 0)
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": req_headers,
        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query)],
        "headersSize": -1,
        "bodySize": len((req.get("body") or "").encode()),
    }
    if req.get("body"):
        request["postData"] = {"mimeType": _mime(req_headers, "application/json"), "text": req["body"]}
    body = res.get("body") or ""
    response = {
        "status": status,
        "statusText": _REASONS.get(status, ""),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": res_headers,
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": len(str(body).encode()),
        "content": {
            "size": len(str(body).encode()),
            "mimeType": _mime(res_headers, "application/json"),
            "text": str(body),
        },
    }
    latency = entry.get("latency_ms")
    extra = {k: v for k, v in entry.items() if k not in ("request", "response", "headers", "body")}
    return {
        "startedDateTime": _iso(entry.get("time")),
        "time": float(latency or 0),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": float(latency or 0), "receive": 0},
        "_veomock": extra,
    }


def to_har(entries: Iterable[Mapping[str, Any]], version: str = "0") -> dict[str, Any]:
    """HAR 1.2 of journal entries (provider clock times; veomock's own fields under ``_veomock``)."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "veomock", "version": version},
            "pages": [],
            "entries": [_har_entry(e) for e in entries],
        }
    }

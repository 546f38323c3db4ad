"""The journal: one list of inbound requests and outbound webhook attempts, filtered and exported.

An inbound entry (``mocks.app``) carries ``direction: inbound``, provider, operation, method, path,
url, status, key, job, and the exchange as ``request`` / ``response`` objects with ``headers``
(a list of ``[name, value]``) and ``body`` (text, cut at :data:`BODY_LIMIT`). An outbound entry
(``mocks.webhooks``) carries ``direction: outbound``, url, status, ``headers`` and ``body`` of the
callback it sent. :func:`to_har` turns either kind into HAR 1.2 entries.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["BODY_LIMIT", "EXCHANGE", "FILTERS", "Journal", "exchange", "select", "to_har"]

BODY_LIMIT = 64 * 1024
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


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        cut = data[:BODY_LIMIT].decode("utf-8", errors="replace")
        return cut + ("…" if len(data) > BODY_LIMIT else "")
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
    return (
        scope.get("scheme", "http"),
        scope.get("root_path", ""),
        scope["path"],
        scope.get("query_string", b""),
        tuple(scope["headers"]),
        getattr(request, "_body", None),
        tuple(response.raw_headers),
        getattr(response, "body", None),
        None if fault is None else (fault.delay, fault.fault),
    )


EXCHANGE = "_exchange"  # the entry key of the raw exchange, until the entry is read


class Journal:
    """A bounded log of entries, newest last. Iterating expands captured exchanges in place."""

    def __init__(self, maxlen: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)

    @property
    def maxlen(self) -> int | None:
        return self._entries.maxlen

    def append(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in list(self._entries):  # a snapshot: the server may append while someone reads
            raw = entry.pop(EXCHANGE, None)
            if raw is not None:
                entry.update(_exchange_fields(raw))
            yield entry

    def __getitem__(self, index: int) -> dict[str, Any]:
        return list(self)[index]

    def drop(self, key: str) -> None:
        """Forget the entries of one API key."""
        self._entries = deque((e for e in self._entries if e.get("key") != key), maxlen=self._entries.maxlen)


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

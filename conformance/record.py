"""``veomock record``: a reverse proxy that a client points at instead of the provider.

Each request goes on to the upstream unchanged (less the hop-by-hop headers); each answer comes
back to the client with the upstream's own base URL replaced by the proxy's, so that a polling URL
in a body leads back through the proxy. Every exchange, as the upstream sent it, is written to a
HAR 1.2 file after each request (so the file is whole whenever the proxy stops), with credentials
redacted: the contract's auth header, every header and JSON field whose name says key, token,
secret or password, and query parameters of that kind. ``veomock drift`` and ``veomock serve
--from`` read the file.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from veomock.contracts import Contract, ContractError, load
from veomock.mocks.har import REDACTED, find_route, redact_headers, redact_json
from veomock.mocks.journal import to_har

__all__ = ["Recorder", "add_arguments", "proxy_app", "run_record"]

# Headers that belong to one connection, not to the exchange (RFC 9110 section 7.6.1), and those
# the proxy recomputes.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)


def _redact_text(text: str, content_type: str) -> str:
    if "json" not in content_type.lower() or not text:
        return text
    try:
        return json.dumps(redact_json(json.loads(text)), ensure_ascii=False, separators=(",", ":"))
    except json.JSONDecodeError:
        return text


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = redact_headers(parse_qsl(parts.query, keep_blank_values=True))
    return parts._replace(query=urlencode(pairs, safe=REDACTED)).geturl()


class Recorder:
    """The exchanges of one session, appended to the HAR file ``out`` as they happen.

    The file is whole after every exchange: each entry goes in just before the closing brackets,
    which are written again after it, so nothing is kept in memory and a long session costs one
    short write per exchange.
    """

    _TAIL = b"\n]}}\n"

    def __init__(self, contract: Contract, out: Path, now: Callable[[], float] = time.time) -> None:
        self.contract, self.out, self.now = contract, out, now
        self.count = 0
        log = {k: v for k, v in to_har([], "record")["log"].items() if k != "entries"}
        log["comment"] = f"veomock record of {contract.provider}; credentials redacted"
        head = json.dumps({"log": {**log, "entries": []}}, ensure_ascii=False)
        cut = head.rindex('"entries": []')
        partial = out.with_name(out.name + ".part")
        partial.write_bytes(head[:cut].encode() + b'"entries": [' + self._TAIL)
        os.replace(partial, out)

    def add(
        self,
        request: Request,
        body: bytes,
        started: float,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
        latency_ms: float,
        error: str | None = None,
    ) -> None:
        contract = self.contract
        route = find_route(contract, request.method, request.url.path)
        operation = None if route is None else route[0].name if route[0] is not None else "media"
        request_headers = redact_headers(
            [(k, v) for k, v in request.headers.items() if k != "x-veomock-token"], also=[contract.auth.header]
        )
        response_headers = redact_headers(headers)
        request_type = request.headers.get("content-type", "")
        response_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        entry = {
            "direction": "inbound",
            "provider": contract.provider,
            "operation": operation,
            "method": request.method,
            "url": _redact_url(str(request.url)),
            "path": request.url.path,
            "status": status,
            "time": started,
            "latency_ms": latency_ms,
            "request": {
                "headers": request_headers,
                "body": _redact_text(body.decode("utf-8", "replace"), request_type),
            },
            "response": {
                "headers": response_headers,
                "body": _redact_text(content.decode("utf-8", "replace"), response_type),
            },
        }
        if error is not None:
            entry["error"] = error
        data = json.dumps(to_har([entry], "record")["log"]["entries"][0], ensure_ascii=False).encode()
        with self.out.open("r+b") as handle:
            handle.seek(-len(self._TAIL), os.SEEK_END)
            handle.write((b",\n" if self.count else b"\n") + data + self._TAIL)
            handle.truncate()
        self.count += 1


def proxy_app(
    contract: Contract,
    upstream: str,
    out: Path,
    now: Callable[[], float] = time.time,
    timeout: float = 120.0,
) -> Starlette:
    """The recording proxy: every method on every path goes to ``upstream``."""
    upstream = upstream.rstrip("/")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(upstream))
    recorder = Recorder(contract, out, now)

    async def forward(request: Request) -> Response:
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k not in _HOP]
        target = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        started, clock = now(), time.perf_counter()
        try:
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
                answer = await client.request(request.method, target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            latency = round((time.perf_counter() - clock) * 1000, 3)
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            recorder.add(request, body, started, 0, [], b"", latency, error=why)
            message = f"veomock record: the upstream {upstream} did not answer ({why})"
            return JSONResponse({"error": message}, status_code=502)
        latency = round((time.perf_counter() - clock) * 1000, 3)
        kept = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in _HOP]
        recorder.add(request, body, started, answer.status_code, kept, answer.content, latency)
        mine = str(request.base_url).rstrip("/")
        content = answer.content.replace(origin.encode(), mine.encode()) if origin != mine else answer.content
        response = Response(content, status_code=answer.status_code)
        for k, v in kept:
            response.headers.append(k, v)
        return response

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", forward, methods=methods)])
    app.state.recorder = recorder
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, help="the contract whose routes the session follows")
    parser.add_argument("--upstream", required=True, metavar="URL", help="the real base URL, e.g. https://api.example.com")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port the client calls (default 8001)")
    parser.add_argument("--out", default="session.har", metavar="FILE.har", help="where to write (default session.har)")


def run_record(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        contract = load(args.provider)
    except ContractError as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    parts = urlsplit(args.upstream)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"veomock: --upstream must be an http(s) URL such as {contract.upstream}, not {args.upstream!r}")
        return 2
    out = Path(args.out)
    app = proxy_app(contract, args.upstream, out)
    try:  # bound before the banner: a client that read it can connect at once
        sock = socket.create_server((args.host, args.port))
    except OSError as exc:
        print(f"veomock: cannot listen on {args.host}:{args.port} ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"veomock record: point the client at http://{args.host}:{args.port} instead of {args.upstream}")
    print(f"  writing {out} after every exchange (credentials redacted); Ctrl-C stops")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0

"""A small HTTP/1.1 client for the soaks: keep-alive connections over asyncio streams.

httpx spends about a millisecond of client CPU on each request, which caps a soak on a shared
machine at a few hundred requests a second; writing the request by hand and reading the answer
by its Content-Length costs a tenth of that, so the server, not the client, sets the pace.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

__all__ = ["Answer", "Connection", "Dropped"]


class Dropped(Exception):
    """The server closed or reset the connection without a whole answer."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Connection:
    """One keep-alive connection to ``host:port``, reopened after the server closes it."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        params: dict[str, str] | None = None,
    ) -> Answer:
        target = path + ("?" + urlencode(params) if params else "")
        lines = [f"{method} {target} HTTP/1.1"]
        given = {k.lower(): v for k, v in (headers or {}).items()}
        given.setdefault("host", f"{self.host}:{self.port}")
        if body or method in ("POST", "PUT", "PATCH"):
            given["content-length"] = str(len(body))
        lines += [f"{k}: {v}" for k, v in given.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(head + body, method == "HEAD")
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await self.close()
            raise Dropped(f"{type(exc).__name__}: {exc}") from None

    async def _exchange(self, data: bytes, head_only: bool) -> Answer:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        reader, writer = self._streams
        writer.write(data)
        await writer.drain()
        raw = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if head_only:
            body = b""
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunks(reader)
        else:
            body = await reader.read()
            await self.close()
            return Answer(status, headers, body)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, headers, body)


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)

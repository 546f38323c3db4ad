"""A webhook receiver for tests and benchmarks: a tiny HTTP/1.1 (or HTTPS) server on 127.0.0.1.

It records every request it gets and answers as its ``answer`` function says: a status code, or
an awaitable of one (to hang until the test lets go). Tests synchronise on :meth:`Receiver.wait_for`
instead of sleeping::

    async with Receiver(failing(2)) as hook:
        ...  # submit with hook.url("/done"), advance the clock, await state.webhooks.run_due()
        first = (await hook.wait_for(1))[0]
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

__all__ = ["Received", "Receiver", "failing", "hanging", "healthy"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int | None = None  # the status sent back; None while hanging or when cut off

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Received], "int | Awaitable[int]"]


def healthy(status: int = 200) -> Answer:
    return lambda _: status


def failing(times: int, status: int = 500, then: int = 200) -> Answer:
    """Answer ``status`` to the first ``times`` requests, ``then`` afterwards."""
    count = 0

    def answer(_: Received) -> int:
        nonlocal count
        count += 1
        return status if count <= times else then

    return answer


def hanging(release: asyncio.Event, status: int = 200) -> Answer:
    """Answer only once ``release`` is set: slower than any timeout."""

    async def answer(_: Received) -> int:
        await release.wait()
        return status

    return answer


class Receiver:
    def __init__(self, answer: Answer | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.answer = answer or healthy()
        self.ssl_context = ssl_context
        self.received: list[Received] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._changed: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def url(self, path: str = "/hook") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Receiver:
        self._changed = asyncio.Condition()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def wait_for(self, count: int, answered: bool = False) -> list[Received]:
        """Wait until ``count`` requests have arrived (and, with ``answered``, been answered)."""
        assert self._changed is not None

        def enough() -> bool:
            done = [r for r in self.received if r.answered is not None] if answered else self.received
            return len(done) >= count

        async with self._changed:
            await self._changed.wait_for(enough)
        return list(self.received)

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                got = Received(method, target, headers, body)
                self.received.append(got)
                await self._notify()
                result = self.answer(got)
                status = result if isinstance(result, int) else await result
                reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok".encode()
                )
                await writer.drain()
                got.answered = status
                await self._notify()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

"""Serve an ASGI app over a real socket: the connection timeouts, and a server in a thread.

uvicorn closes a keep-alive connection left idle after an answer (``timeout_keep_alive``), but
not one that is slow to send a request: a client that opens a connection and sends nothing, or
half a head, or a body that never ends, would hold it for ever (a slowloris). :func:`guarded`
gives uvicorn's httptools protocol two more deadlines, so every connection is closed when:

- idle after an answer for :data:`KEEP_ALIVE` seconds (uvicorn's own timer, 5 s);
- a request's head (request line and headers) is not complete :data:`HEADER_TIMEOUT` seconds
  after the connection opened or after its first byte (10 s);
- its body is not complete :data:`BODY_TIMEOUT` seconds after its head (30 s).

These two are kept by a sweep, about ten times per deadline, so a connection is closed within a
tenth of its deadline after it; nothing runs per request for them.

An answer the mock is still working on has no deadline (a scripted ``hang`` hangs). The size of a
head is capped by the parser (httptools), of a body by the mock (``max_body_bytes``, 1 MiB).
``veomock serve`` and :class:`ServerThread` both serve through :func:`server_options`.

:class:`ServerThread` binds first (port 0: the kernel picks), so its URL is known before it
starts; :class:`Switch` lets one running server hand each request to whichever app is current,
so tests and the conformance runner get a fresh mock per case without a server start each time;
:meth:`ServerThread.call` runs a coroutine on the server's own event loop, from any other thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

T = TypeVar("T")

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "KEEP_ALIVE", "ServerThread", "Switch", "guarded", "server_options"]

KEEP_ALIVE = 5.0
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0


class _Guarded(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on a request's head and body.

    Nothing runs per request: one sweep per event loop (:class:`_Sweep`) reads each connection's
    phase from uvicorn's own state, notes when it entered it, and closes the connections that
    stayed too long in a head or a body (a deadline is met to within a tenth of itself).
    """

    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._sweep = _Sweep.of(self.loop, min(self.header_timeout, self.body_timeout))
        self._sweep.connections.add(self)
        self._phase: tuple[str, object] = ("head", None)  # the first request's head is due from now
        self._since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.connections.discard(self)
        super().connection_lost(exc)

    def phase(self) -> tuple[str, object]:
        """What the connection waits for, and in which request's cycle: a head (none has come
        yet, or bytes of the next one came after an answer), a body, the mock's answer, or
        nothing. The cycle itself, not its id: a later cycle may reuse a freed one's address."""
        cycle = self.cycle
        if cycle is None:
            return "head", None
        if not cycle.response_complete:
            return ("body" if cycle.more_body else "answer"), cycle
        # uvicorn arms its keep-alive timer after an answer and drops it when the next bytes come.
        if self.timeout_keep_alive_task is None and not self.pipeline and not self.transport.is_closing():
            return "head", cycle
        return "idle", cycle

    def expired(self, now: float) -> bool:
        """Whether the connection has been in a head or a body for longer than its deadline."""
        phase = self.phase()
        if phase != self._phase:
            self._phase, self._since = phase, now
        limit = {"head": self.header_timeout, "body": self.body_timeout}.get(phase[0])
        return limit is not None and now - self._since >= limit

    def expire(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


class _Sweep:
    """The guarded connections of one event loop, looked over about ten times per shortest
    deadline; those past their deadline are closed. It runs while the loop has connections."""

    _of: dict[asyncio.AbstractEventLoop, _Sweep] = {}

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self.loop, self.every = loop, every
        self.connections: set[_Guarded] = set()
        self._handle: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, shortest: float) -> _Sweep:
        every = min(1.0, max(0.02, shortest / 10))
        sweep = cls._of.get(loop)
        if sweep is None:
            for stale in [other for other in cls._of if other.is_closed()]:
                del cls._of[stale]
            sweep = cls._of[loop] = cls(loop, every)
        sweep.every = min(sweep.every, every)
        if sweep._handle is None:
            sweep._handle = loop.call_later(sweep.every, sweep.run)
        return sweep

    def run(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.connections if c.expired(now)]:
            connection.expire()
        self._handle = self.loop.call_later(self.every, self.run) if self.connections else None


def guarded(header_timeout: float = HEADER_TIMEOUT, body_timeout: float = BODY_TIMEOUT) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with these deadlines (seconds) on each request's head and body."""
    return type(
        "GuardedHttpToolsProtocol", (_Guarded,), {"header_timeout": header_timeout, "body_timeout": body_timeout}
    )


def server_options(
    keep_alive: float = KEEP_ALIVE, header_timeout: float = HEADER_TIMEOUT, body_timeout: float = BODY_TIMEOUT
) -> dict[str, Any]:
    """The uvicorn options every server of the mock runs with: the connection timeouts above."""
    return {"http": guarded(header_timeout, body_timeout), "timeout_keep_alive": keep_alive, "ws": "none"}


class Switch:
    """An ASGI app that forwards to ``current``, answering lifespan itself (the raw send passes through).
    Its ``loop`` is the event loop it is served on, once ``started`` is set."""

    def __init__(self) -> None:
        self.current: ASGIApp | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.loop = asyncio.get_running_loop()
                    self.started.set()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.current is None:
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"nothing is being served"})
            return
        await self.current(scope, receive, send)


class ServerThread:
    """Uvicorn serving a :class:`Switch` in a daemon thread, on the event loop ``veomock serve`` uses."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **timeouts: float) -> None:
        self.switch = Switch()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: no Nagle delay between a response's head and its body.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host, self.port = self.sock.getsockname()[:2]
        options = server_options(**timeouts)
        config = uvicorn.Config(
            self.switch, log_level="error", access_log=False, timeout_graceful_shutdown=2, **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use(self, app: ASGIApp | None) -> None:
        self.switch.current = app

    def call(self, work: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``work`` on the server's event loop and return what it returns (or raise what it
        raises): from another thread, the same as a request the server handled would do."""
        if not self.switch.started.wait(timeout) or self.switch.loop is None:
            work.close()
            raise RuntimeError(f"the server on {self.base_url} did not start within {timeout:g} s")
        return asyncio.run_coroutine_threadsafe(work, self.switch.loop).result(timeout)

    def stop(self) -> None:
        """Tell the server to stop, without waiting for it (:meth:`close` waits)."""
        self.server.should_exit = True

    def close(self) -> None:
        self.stop()
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

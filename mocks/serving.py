"""Serve an ASGI app over a real socket from a background thread (uvicorn on 127.0.0.1).

:class:`ServerThread` binds first (port 0: the kernel picks), so its URL is known before it
starts; :class:`Switch` lets one running server hand each request to whichever app is current,
so tests and the conformance runner get a fresh mock per case without a server start each time.
"""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ServerThread", "Switch"]


class Switch:
    """An ASGI app that forwards to ``current``, answering lifespan itself (the raw send passes through)."""

    def __init__(self) -> None:
        self.current: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
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

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.switch = Switch()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: no Nagle delay between a response's head and its body.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            self.switch, log_level="error", access_log=False, ws="none", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def use(self, app: ASGIApp | None) -> None:
        self.switch.current = app

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

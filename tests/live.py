"""A real socket for the tests that need one: uvicorn in a thread on 127.0.0.1, port 0.

One server runs for the whole session; each test swaps in its own app, so a test gets a fresh
mock on a real connection without paying for a server start. The swapped-in app's lifespan does
not run: tests drive webhook deliveries with ``state.webhooks.run_due()`` as in-process.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from mocks import MockState, build_app


class Switch:
    """An ASGI app that forwards to whichever app is current (the raw ``send`` passes through)."""

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
        assert self.current is not None, "no app is being served"
        await self.current(scope, receive, send)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


@dataclass
class LiveServer:
    """A mock served over a real socket: ``url`` to call it, ``state`` to drive it."""

    url: str
    state: MockState
    switch: Switch

    def serve(self, state: MockState, control_token: str | None = None) -> LiveServer:
        self.switch.current = build_app(state, control_token=control_token)
        self.state = state
        return self


@contextmanager
def serve_in_thread() -> Iterator[tuple[str, Switch]]:
    switch = Switch()
    config = uvicorn.Config(
        switch, host="127.0.0.1", port=0, log_level="error", access_log=False, timeout_graceful_shutdown=2
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)  # the event loop veomock serve uses
    thread.start()
    if not server.ready.wait(10):
        raise RuntimeError("uvicorn did not start within 10 s")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", switch
    finally:
        server.should_exit = True
        thread.join(10)

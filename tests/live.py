"""A real socket for the tests that need one: the mock in a thread (``mocks.serving``).

One server runs for the whole session; each test swaps in its own app, so a test gets a fresh
mock on a real connection without paying for a server start. The swapped-in app's lifespan does
not run: tests drive webhook deliveries with ``state.webhooks.run_due()`` as in-process.
"""

from __future__ import annotations

from dataclasses import dataclass

from veomock.mocks import MockState, build_app
from veomock.mocks.serving import ServerThread


@dataclass
class LiveServer:
    """A mock served over a real socket: ``url`` to call it, ``state`` to drive it."""

    url: str
    state: MockState
    server: ServerThread

    def serve(self, state: MockState, control_token: str | None = None) -> LiveServer:
        self.server.use(build_app(state, control_token=control_token))
        self.state = state
        return self

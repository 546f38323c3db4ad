"""Drive the mock's ASGI app in-process, without sockets: for benchmarks of its own costs."""

from __future__ import annotations

import json
from typing import Any

from veomock.contracts import Contract
from veomock.mocks import Control, MockState, build_app

from benchmarks.http import KEY, submit_request

__all__ = ["Submitter"]


class Submitter:
    """One provider's documented submit, sent straight to the app; limits and balance lifted."""

    def __init__(self, state: MockState, provider: str) -> None:
        contract: Contract = state.contracts[provider]
        control = Control(state)
        control.set_limits(provider, requests_per_minute=None, concurrent_jobs=None)
        control.set_balance(KEY, 1e15, provider=provider)
        self.app = build_app(state)
        path, headers, body = submit_request(contract)
        self.body = json.dumps(body).encode()
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(self.body)).encode())],
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
        }
        self.status = 0

    async def submit(self) -> int:
        body = self.body

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        await self.app(dict(self.scope), receive, send)
        return self.status

"""The inspector: a page at ``/_veomock/ui`` over the control API, and its live feed.

The page and its assets are files in ``mocks/ui/`` (plain HTML, CSS and JavaScript, no build
step, nothing fetched from elsewhere), so it works with no network access. It reads the control
API like any other client. ``GET /_veomock/events`` is a server-sent event stream that says when
to read again: one event per change of the mock (a journal entry, a control call, a reset, a
forced state) and one whenever a job's timeline reaches its next state on its tenant's clock.
Between the two it waits on :class:`~veomock.mocks.changes.Changes` with a timeout that is the real
time until that next state (none while the clocks are frozen), so it never polls.

    event: change
    data: {"version": 12, "now": 1767965610.0, "speed": 60.0}
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from veomock.mocks.state import MockState

__all__ = ["UI", "event_routes", "next_wait", "page_routes", "stream"]

UI = Path(__file__).resolve().parent / "ui"
_ASSETS = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}
_NO_CACHE = {"Cache-Control": "no-store"}


def next_wait(state: MockState) -> float | None:
    """Real seconds until some job enters a new state, each on its tenant's clock; None when no
    running clock brings one (no job has a state to come, or every such clock is frozen)."""
    soonest = None
    clocks = state.clocks
    for job in state.jobs.values():
        now, speed = clocks.now_and_speed(job.key)  # one read of the tenant's clock (one round trip in Redis)
        if speed == 0:
            continue
        for start, _ in job.timeline:
            if start > now:
                wait = (start - now) / speed
                if soonest is None or wait < soonest:
                    soonest = wait
                break
    return soonest


def page_routes() -> list[BaseRoute]:
    """``/ui`` and its assets: static files holding no data, so no control token guards them."""

    async def page(request: Request) -> Response:
        return FileResponse(UI / "index.html", media_type="text/html; charset=utf-8", headers=_NO_CACHE)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            known = ", ".join(sorted(_ASSETS))
            return Response(f"no inspector asset {name!r}; the assets are {known}", 404, media_type="text/plain")
        return FileResponse(UI / name, media_type=_ASSETS[name], headers=_NO_CACHE)

    return [
        Route("/ui", page, methods=["GET"]),
        Route("/ui/", page, methods=["GET"]),
        Route("/ui/{name}", asset, methods=["GET"]),
    ]


def _event(state: MockState) -> str:
    data = {"version": state.changes.version, "now": state.now(), "speed": state.clock.speed}
    return f"event: change\ndata: {json.dumps(data)}\n\n"


async def stream(state: MockState) -> AsyncIterator[str]:
    """One event now, then one per change or state reached on the mock clock, until the client leaves."""
    changes = state.changes
    yield "retry: 1000\n\n" + _event(state)
    while True:
        version = changes.version
        await changes.wait(version, next_wait(state))
        yield _event(state)


def event_routes(state: MockState) -> list[BaseRoute]:
    async def events(request: Request) -> Response:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(state), media_type="text/event-stream", headers=headers)

    return [Route("/events", events, methods=["GET"])]

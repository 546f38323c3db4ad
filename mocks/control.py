"""The control API under ``/_veomock``: reset, clock, jobs. Generic over contracts.

    GET  /_veomock/health                 providers and their variants
    POST /_veomock/reset                  forget jobs, balances, journal
    GET  /_veomock/clock                  {"now": ..., "speed": ...}
    POST /_veomock/clock                  {"advance": seconds} and/or {"speed": x}
    GET  /_veomock/jobs[?provider=&key=]  every job, with its state now
    GET  /_veomock/jobs/{id}              one job, with its timeline
    POST /_veomock/jobs/{id}              {"state": "failed", "code": "..."} forces a state
    GET  /_veomock/journal                inbound requests, newest last
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contracts import CANONICAL_STATES, TERMINAL_STATES
from mocks.lifecycle import Job, Outcome
from mocks.state import MockState, UnknownJob

__all__ = ["control_routes", "force_state", "job_summary"]


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("send a JSON object")
    return data


def job_summary(state: MockState, job: Job, timeline: bool = False) -> dict[str, Any]:
    now = state.now()
    current = job.state_at(now)
    out: dict[str, Any] = {
        "id": job.id,
        "provider": job.provider,
        "model": job.model,
        "key": job.key,
        "state": current,
        "status": state.contracts[job.provider].states[current],
        "created_at": job.created_at,
        "price": job.price,
        "outcome": {"state": job.outcome.state, "code": job.outcome.code, "message": job.outcome.message},
        "params": job.params,
    }
    if timeline:
        out["timeline"] = [{"at": at, "state": s} for at, s in job.timeline]
    return out


def force_state(state: MockState, job: Job, target: str, code: str | int | None = None) -> None:
    """Force ``job`` into a canonical state now; failures take a code from the contract."""
    if target not in CANONICAL_STATES:
        raise ValueError(f"unknown state {target!r}; use one of {', '.join(CANONICAL_STATES)}")
    contract = state.contracts[job.provider]
    outcome = None
    if target in ("failed", "error"):
        failure = contract.failure(code) if code is not None else next(
            (f for f in contract.failures if f.state == target), contract.failures[0]
        )
        if failure is None:
            known = ", ".join(str(f.code) for f in contract.failures)
            raise ValueError(f"{contract.provider} has no failure code {code!r}; known: {known}")
        outcome = Outcome(target, failure.code, failure.message)
    elif target in TERMINAL_STATES:
        outcome = Outcome(target)
    job.force(target, state.now(), outcome)


def control_routes(state: MockState) -> list[BaseRoute]:
    async def health(request: Request) -> Response:
        providers = {name: {"variants": c.variants} for name, c in state.contracts.items()}
        return JSONResponse({"ok": True, "providers": providers, "now": state.now()})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            try:
                data = await _json(request)
                if "speed" in data:
                    state.clock.set_speed(float(data["speed"]))
                if "advance" in data:
                    state.clock.advance(float(data["advance"]))
            except (ValueError, TypeError) as exc:
                return _problem(400, f"{exc}; send {{\"advance\": seconds}} or {{\"speed\": factor}}")
        return JSONResponse({"now": state.now(), "speed": state.clock.speed})

    async def jobs(request: Request) -> Response:
        provider, key = request.query_params.get("provider"), request.query_params.get("key")
        found = [
            job_summary(state, job)
            for job in state.jobs.values()
            if (provider is None or job.provider == provider) and (key is None or job.key == key)
        ]
        return JSONResponse({"jobs": found})

    async def job(request: Request) -> Response:
        try:
            found = state.find_job(request.path_params["job_id"])
        except UnknownJob:
            return _problem(404, f"no job {request.path_params['job_id']!r}")
        if request.method == "POST":
            try:
                data = await _json(request)
                force_state(state, found, str(data.get("state")), data.get("code"))
            except ValueError as exc:
                return _problem(400, str(exc))
        return JSONResponse(job_summary(state, found, timeline=True))

    async def journal(request: Request) -> Response:
        return JSONResponse({"entries": list(state.journal)})

    return [
        Route("/health", health, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/jobs", jobs, methods=["GET"]),
        Route("/jobs/{job_id}", job, methods=["GET", "POST"]),
        Route("/journal", journal, methods=["GET"]),
    ]

"""One request, one instant: every handler reads the clock once and answers as of that instant.

The clock here moves on every read, so a handler that read it twice would mix two moments in one
answer (a status that says "completed" with no result, a journal time after the job's end). Each
answer is checked against what the contract gives at the instant the mock journaled it.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.contracts import TERMINAL_STATES, Contract
from veomock.mocks import Clock, MockState, build_app, create_state

from tests.conftest import PROVIDERS, START
from tests.helpers import API_KEY, auth_headers, fixtures, media_headers, operation, request_path

BASE = "http://127.0.0.1:8000"


def _moving_state() -> MockState:
    """A clock that moves 3 provider seconds on every read of its monotonic source."""
    ticks = itertools.count()
    return create_state(seed=3, clock=Clock(speed=3.0, start=START, monotonic=lambda: float(next(ticks))))


def _last(state: MockState) -> dict[str, Any]:
    return state.journal[-1]


def _submits(contract: Contract) -> list[tuple[Any, dict[str, Any]]]:
    """Every documented request without a webhook, with its operation: every submit route."""
    out = []
    for _, data in fixtures(contract.provider, "requests"):
        op = operation(contract, data["operation"])
        headers = data.get("headers", {})
        if op.kind != "submit" or any("webhook" in k.lower() for k in headers):
            continue
        if any(k in data["body"] for k in ("webhook", "callback_url")):
            continue
        out.append((op, data))
    return out


def _check_status(state: MockState, contract: Contract, job: Any, response: Any, op: Any, query: Any) -> str:
    entry = _last(state)
    at, current = entry["time"], entry["state"]
    assert job.state_at(at) == current, f"journaled {current} at {at}, but the job was {job.state_at(at)} then"
    spec = contract.status[current]
    assert response.status_code == spec.status
    path_params = {}
    if op.id_from.source.strip("{} ").startswith("path."):
        path_params = {op.id_from.source.strip("{} ").split(".", 1)[1].split("|")[0].strip(): job.id}
    ctx = {
        "body": None,
        "header": {k.lower(): v for k, v in auth_headers(contract).items()},
        "query": query,
        "path": path_params,
        "request": {"base_url": BASE},
        "job": state.view(job, BASE, at=at),
    }
    expected = spec.body.render(ctx)
    assert response.json() == json.loads(json.dumps(expected)), f"{contract.provider} {current} at {at}"
    if current == "succeeded":
        urls = state.view(job, BASE, at=at)["result_urls"]
        assert urls and all(url in response.text for url in urls), "a success carries its result"
    return str(current)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_route_answers_as_of_one_instant(provider: str) -> None:
    state = _moving_state()
    contract = state.contracts[provider]
    submits = _submits(contract)
    assert submits, f"{provider} has documented requests"
    with TestClient(build_app(state), base_url=BASE) as client:
        jobs = []
        for op, data in submits:
            headers = {**auth_headers(contract), **data.get("headers", {})}
            response = client.request(op.method, op.path, json=data["body"], headers=headers)
            assert response.status_code == contract.submit.status, response.text
            entry = _last(state)
            job = state.job(provider, entry["job"], API_KEY)
            assert job.created_at == job.timeline[0][0] == entry["time"], "created and journaled at one instant"
            jobs.append(job)
        for job in jobs:
            status_op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
            path, query = request_path(status_op, job.id)
            seen = []
            for _ in range(300):
                response = client.get(path, params=query, headers=auth_headers(contract))
                seen.append(_check_status(state, contract, job, response, status_op, query))
                if seen[-1] in TERMINAL_STATES:
                    break
            assert seen[-1] == job.outcome.state, seen  # an extension of an unknown job fails, as documented
            if seen[-1] != "succeeded":
                continue
            (url,) = state.view(job, "")["result_urls"]
            response = client.get(url, headers=media_headers(contract))
            entry = _last(state)
            fresh = job.state_at(entry["time"]) == "succeeded" and not state.media_expired(job, entry["time"])
            assert (response.status_code == 200) == fresh
        for op in [o for o in contract.operations if o.kind == "balance"]:
            response = client.request(op.method, op.path, headers=auth_headers(contract))
            entry = _last(state)
            assert contract.balance is not None
            ctx = {"balance": state.balance(provider, API_KEY, entry["time"]), "request": {"base_url": BASE}}
            assert response.json() == json.loads(json.dumps(contract.balance.body.render(ctx)))
        listing = client.get("/_veomock/jobs", params={"provider": provider}).json()["jobs"]
        for summary in listing:
            job = state.job(provider, summary["id"])
            assert summary["state"] == job.state_at(summary["now"])
            assert summary["status"] == contract.states[summary["state"]]

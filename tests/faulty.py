"""Helpers for the failure-mode tests: the catalogue, a documented submit, the triggers.

The expected answers come from ``veomock failures`` (:func:`mocks.failures.catalogue`), so
these tests also prove that what the catalogue promises is what a client gets.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from veomock.contracts import Contract, Model, Operation
from veomock.contracts import load as _load
from veomock.mocks import MockState
from veomock.mocks.failures import catalogue, example_body

from tests.conftest import PROVIDERS
from tests.helpers import API_KEY, auth_headers, request_path

load = cache(_load)
TRIGGERS = ("rule", "prompt", "key", "chaos")
PROMPT = "a red kite over the sea"


@cache
def entries(provider: str) -> dict[str, Any]:
    return catalogue({provider: load(provider)})[0]


def error_cases() -> list[tuple[str, str]]:
    return [(p, e["name"]) for p in PROVIDERS for e in entries(p)["http_errors"]]


def failure_cases() -> list[tuple[str, str]]:
    return [(p, str(f["code"])) for p in PROVIDERS for f in entries(p)["task_failures"]]


def error_entry(provider: str, name: str) -> dict[str, Any]:
    return next(e for e in entries(provider)["http_errors"] if e["name"] == name)


def failure_entry(provider: str, code: str) -> dict[str, Any]:
    return next(f for f in entries(provider)["task_failures"] if str(f["code"]) == code)


def submit_op(contract: Contract) -> tuple[Operation, Model]:
    op = contract.operations_of("submit")[0]
    return op, contract.models[op.models[0]]


def submit_parts(contract: Contract, prompt: str | None = None, key: str = API_KEY) -> dict[str, Any]:
    """method, url, headers and json of a valid submit carrying ``prompt`` and the API ``key``."""
    op, model = submit_op(contract)
    body = example_body(model, prompt or PROMPT)
    assert body is not None, f"no example body for {contract.provider} {model.name}"
    return {"method": op.method, "url": op.path, "headers": auth_headers(contract, key), "json": body}


def status_parts(contract: Contract, job_id: str, key: str = API_KEY) -> dict[str, Any]:
    _, model = submit_op(contract)
    op = next(o for o in contract.operations_of("status") if model.name in o.models)
    path, query = request_path(op, job_id)
    return {"method": op.method, "url": path, "params": query, "headers": auth_headers(contract, key)}


def arm_rule(entry: dict[str, Any], trigger: str) -> tuple[str | None, str, Any]:
    """(prompt, key, control call) that make ``entry`` happen through ``trigger``.

    The control call is ``(path, json)`` to POST under /_veomock (a rule or a chaos profile), or None.
    """
    if trigger == "rule":
        return None, API_KEY, ("/_veomock/scenarios", entry["rule"])
    if trigger == "chaos":
        return None, API_KEY, ("/_veomock/chaos", entry["chaos"])
    if trigger == "prompt":
        return f"{PROMPT} {entry['prompt']}", API_KEY, None
    return None, entry["key"], None


async def arm(client: httpx.AsyncClient, entry: dict[str, Any], trigger: str) -> tuple[str | None, str]:
    prompt, key, call = arm_rule(entry, trigger)
    if call is not None:
        answer = await client.post(call[0], json=call[1])
        assert answer.status_code in (200, 201), answer.text
    return prompt, key


def arm_sync(client: httpx.Client, entry: dict[str, Any], trigger: str) -> tuple[str | None, str]:
    prompt, key, call = arm_rule(entry, trigger)
    if call is not None:
        answer = client.post(call[0], json=call[1])
        assert answer.status_code in (200, 201), answer.text
    return prompt, key


def last_job(state: MockState) -> str:
    job = [e for e in state.journal if e.get("direction") == "inbound" and e.get("job")][-1]["job"]
    return str(job)


def finish(state: MockState, job_id: str) -> None:
    """Move the frozen clock to the moment the job has ended."""
    end = state.find_job(job_id).terminal_at()
    assert end is not None
    state.clock.advance(max(0.0, end - state.now()) + 0.001)

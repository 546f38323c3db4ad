"""Every documented example: requests are accepted, responses come back in the documented shape."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.contracts import load
from veomock.mocks import Clock, MockState, build_app, create_state
from veomock.mocks.control import force_state

from tests.conftest import PROVIDERS, START
from tests.helpers import (
    all_fixtures,
    auth_headers,
    operation,
    request_path,
    sample_request,
    shape_diff,
    strings,
)

REQUESTS = list(all_fixtures(PROVIDERS, "requests"))
RESPONSES = list(all_fixtures(PROVIDERS, "responses"))
INVALID = list(all_fixtures(PROVIDERS, "invalid"))


def _submit(client: TestClient, provider: str, data: dict[str, Any]) -> Any:
    contract = client.app.state.mock.contracts[provider]  # type: ignore[attr-defined]
    op = operation(contract, data["operation"])
    headers = {**auth_headers(contract), **data.get("headers", {})}
    headers = {k: v for k, v in headers.items() if "webhook" not in k.lower()}
    body = {k: v for k, v in data["body"].items() if k not in ("webhook", "callback_url", "request_type")}
    return client.request(op.method, op.path, json=body, headers=headers)


@pytest.mark.parametrize(("provider", "name", "data"), REQUESTS, ids=[f"{p}-{n}" for p, n, _ in REQUESTS])
def test_documented_request_is_accepted(client: TestClient, provider: str, name: str, data: dict[str, Any]) -> None:
    response = _submit(client, provider, data)
    assert response.status_code == load(provider).submit.status, response.text


def test_every_provider_has_documented_examples() -> None:
    for provider in PROVIDERS:
        assert any(p == provider for p, _, _ in REQUESTS), provider
        assert any(p == provider for p, _, _ in RESPONSES), provider


@pytest.mark.parametrize(("provider", "name", "data"), INVALID, ids=[f"{p}-{n}" for p, n, _ in INVALID])
def test_rule_violation_is_rejected_with_its_message(
    client: TestClient, provider: str, name: str, data: dict[str, Any]
) -> None:
    contract = load(provider)
    op = operation(contract, data["operation"])
    response = client.request(op.method, op.path, json=data["body"], headers=auth_headers(contract))
    spec = contract.errors["invalid_request"]
    assert response.status_code == spec.status, response.text
    documented = spec.body.render({"message": "x", "job": {}, "retry_after": 1})
    assert shape_diff(documented, response.json()) == []
    if data["violates"] != "schema":
        rule = next(r for m in contract.models.values() for r in m.rules if r.id == data["violates"])
        assert rule.message in strings(response.json())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_rule_has_a_violating_example(provider: str) -> None:
    contract = load(provider)
    covered = {data["violates"] for p, _, data in INVALID if p == provider}
    rules = {rule.id for model in contract.models.values() for rule in model.rules}
    assert rules - covered == set(), f"rules without an invalid fixture: {sorted(rules - covered)}"


def _answer_for(client: TestClient, state: MockState, provider: str, data: dict[str, Any]) -> Any:
    contract = state.contracts[provider]
    kind = data["operation"]
    if kind == "error":
        return None
    if kind == "balance":
        op = next(o for o in contract.operations if o.kind == "balance")
        return client.get(op.path, headers=auth_headers(contract))
    op_name = data.get("submit_operation")
    _, request = sample_request(contract, op_name)
    submitted = _submit(client, provider, request)
    if kind == "submit":
        return submitted
    job = next(j for j in state.jobs.values() if j.provider == provider)
    target = data.get("state") or "succeeded"
    if target != "queued":
        force_state(state, job, "running")
        state.clock.advance(1)
    if target in ("succeeded", "failed", "error"):
        force_state(state, job, target)
    state.clock.advance(1)
    status_op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
    path, query = request_path(status_op, job.id)
    return client.get(path, params=query, headers=auth_headers(contract))


@pytest.mark.parametrize(("provider", "name", "data"), RESPONSES, ids=[f"{p}-{n}" for p, n, _ in RESPONSES])
def test_mock_answers_in_the_documented_shape(
    client: TestClient, state: MockState, provider: str, name: str, data: dict[str, Any]
) -> None:
    if data.get("variants"):
        state = create_state(
            [provider], seed=1, variants={provider: data["variants"]}, clock=Clock(speed=0, start=START)
        )
        client = TestClient(build_app(state), base_url="http://127.0.0.1:8000")
    contract = state.contracts[provider]
    if data["operation"] == "error":
        spec = contract.errors[data["error"]]
        rendered = spec.body.render({"message": "x", "job": {"model": "m", "price": 1}, "retry_after": 1})
        assert spec.status == data["status"]
        assert shape_diff(data["body"], rendered) == []
        return
    response = _answer_for(client, state, provider, data)
    if data.get("status") is not None:
        assert response.status_code == data["status"], response.text
    assert shape_diff(data["body"], response.json()) == [], response.text

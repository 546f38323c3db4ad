"""A reset rebuilds everything a handler holds: after it, every route works on the new state."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from veomock.mocks import MockState

from tests.conftest import PROVIDERS
from tests.helpers import API_KEY, auth_headers, media_headers, request_path, sample_request


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_route_works_on_the_state_a_reset_built(client: TestClient, state: MockState, provider: str) -> None:
    contract = state.contracts[provider]
    op, data = sample_request(contract)
    headers = {**auth_headers(contract), **data.get("headers", {})}

    def submit() -> object:
        return client.request(op.method, op.path, json=data["body"], headers=headers)

    assert submit().status_code == contract.submit.status  # some state before the reset
    assert client.post("/_veomock/reset").status_code == 200
    assert state.jobs == {}

    drained = {"key": API_KEY, "balance": 0, "provider": provider}
    assert client.post("/_veomock/balances", json=drained).status_code == 200
    refused = submit()
    assert refused.status_code == contract.errors["insufficient_balance"].status, "the balance set after reset governs"
    assert state.jobs == {}

    client.post("/_veomock/balances", json={**drained, "balance": 1000})
    created = submit()
    assert created.status_code == contract.submit.status, created.text
    (job,) = state.jobs.values()
    status_op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
    path, query = request_path(status_op, job.id)
    client.post("/_veomock/clock", json={"advance": 86_400})
    polled = client.get(path, params=query, headers=auth_headers(contract))
    assert polled.status_code == contract.status["succeeded"].status
    (url,) = state.view(job, "")["result_urls"]
    assert client.get(url, headers=media_headers(contract)).status_code == 200

    control = client.get("/_veomock/balances", params={"key": API_KEY, "provider": provider}).json()
    view = control["balances"][provider]
    assert view["remaining"] == pytest.approx(1000 - job.price)
    for balance_op in [o for o in contract.operations if o.kind == "balance"]:
        assert contract.balance is not None
        answer = client.request(balance_op.method, balance_op.path, headers=auth_headers(contract))
        assert answer.status_code == contract.balance.status
        ctx = {"balance": {k: view[k] for k in ("remaining", "initial", "charged")}, "request": {"base_url": ""}}
        expected = json.loads(json.dumps(contract.balance.body.render(ctx)))
        assert answer.json() == expected, "the provider's balance agrees with the control view"

"""Refusals as the documents give them: exact bodies, headers from the contract, hints outside."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from veomock.conformance.facts import body_path
from veomock.contracts.templates import compile_template
from veomock.mocks import MockState
from veomock.mocks.responses import HINT_HEADER, resolve_error

from tests.conftest import PROVIDERS
from tests.helpers import API_KEY, auth_headers, sample_request

BASE = "http://127.0.0.1:8000"


def test_aivideoapi_without_a_model_gets_the_documented_400(client: TestClient, state: MockState) -> None:
    contract = state.contracts["aivideoapi"]
    op, data = sample_request(contract)
    body = {k: v for k, v in data["body"].items() if k != "model"}
    response = client.request(op.method, op.path, json=body, headers=auth_headers(contract))
    assert response.status_code == 400
    error = {"code": "invalid_request", "message": "'model' is required.", "type": "invalid_request_error"}
    assert response.json() == {"error": error}
    assert not state.jobs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_missing_model_is_refused_before_it_is_looked_up(client: TestClient, state: MockState, provider: str) -> None:
    contract = state.contracts[provider]
    for op in [o for o in contract.operations if o.kind == "submit" and body_path(o.model_from)]:
        _, data = sample_request(contract, op.name)
        field = body_path(op.model_from)
        assert field is not None and "." not in field, "the model is a top-level field"
        body = {k: v for k, v in data["body"].items() if k != field}
        response = client.request(op.method, op.path, json=body, headers=auth_headers(contract))
        spec = resolve_error(contract, "model_missing")
        assert response.status_code == spec.status, response.text
        assert "None" not in response.text
        assert response.headers[HINT_HEADER].startswith("the model is required")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", ["missing", "malformed", "pattern"])
def test_auth_refusals_send_the_contracts_body_and_headers(
    client: TestClient, state: MockState, provider: str, fault: str
) -> None:
    contract = state.contracts[provider]
    auth = contract.auth
    if fault == "missing":
        headers, name = {}, "auth_missing"
    elif fault == "malformed":
        headers, name = {auth.header: "Token abc" if auth.scheme == "bearer" else " "}, "auth_invalid"
        name = name if auth.scheme == "bearer" else "auth_missing"
    else:
        if auth.key_pattern is None:
            pytest.skip(f"{provider} declares no key format")
        headers, name = auth_headers(contract, "nope-123"), "auth_invalid"
    op, data = sample_request(contract)
    response = client.request(op.method, op.path, json=data["body"], headers=headers)
    spec = resolve_error(contract, name)
    ctx = {"message": spec.message, "retry_after": 1, "request": {"base_url": BASE}}
    assert response.status_code == spec.status
    assert response.json() == spec.body.render(ctx), "exactly the contract's body"
    for header, template in spec.headers.items():
        assert response.headers[header] == compile_template(template).render(ctx)
    assert response.headers[HINT_HEADER], "what to fix, in the mock's own header"


def test_pixazo_names_its_base_url_as_the_realm(client: TestClient, state: MockState) -> None:
    contract = state.contracts["pixazo"]
    op, data = sample_request(contract)
    response = client.request(op.method, op.path, json=data["body"])
    assert response.json() == {
        "statusCode": 401,
        "message": "Access denied due to missing subscription key. Make sure to include subscription key "
        "when making requests to an API.",
    }
    assert f'realm="{BASE}"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_route_answers_an_empty_balance_with_its_own_pages_body(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = state.contracts[provider]
    for op in contract.operations_of("submit"):
        _, data = sample_request(contract, op.name)
        headers = {**auth_headers(contract), **data.get("headers", {})}
        client.post("/_veomock/balances", json={"key": API_KEY, "balance": 1000, "provider": provider})
        assert client.request(op.method, op.path, json=data["body"], headers=headers).status_code < 300
        price = list(state.jobs.values())[-1].price
        client.post("/_veomock/balances", json={"key": API_KEY, "balance": 0, "provider": provider})
        response = client.request(op.method, op.path, json=data["body"], headers=headers)
        spec = resolve_error(contract, "insufficient_balance", op)
        assert response.status_code == spec.status, (op.name, response.text)
        message = f"Insufficient balance: this job costs {price} {contract.billing['unit']}"
        ctx = {"message": message, "retry_after": 1, "price": price, "job": {"price": price}}
        assert response.json() == spec.body.render(ctx), op.name


def test_pixazo_routes_send_their_pages_402_messages(client: TestClient, state: MockState) -> None:
    contract = state.contracts["pixazo"]
    client.post("/_veomock/balances", json={"key": API_KEY, "balance": 0})
    messages = {}
    for op in contract.operations_of("submit"):
        _, data = sample_request(contract, op.name)
        answer = client.request(op.method, op.path, json=data["body"], headers=auth_headers(contract))
        assert answer.status_code == 402
        messages[op.name] = answer.json()["message"]
    plain = "Your wallet does not have enough balance."
    assert messages["generate"] == messages["fast-reference-to-video"] == plain
    assert messages["fast-generate"].startswith(plain + " Required: $")

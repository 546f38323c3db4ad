"""The OpenAPI 3.1 documents: valid, complete, served, and true of the live mock (Schemathesis)."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient
from veomock.conformance.command import main
from veomock.contracts import load
from veomock.mocks import MockState
from veomock.mocks.openapi import document

from benchmarks.fuzz import schemathesis_run
from tests.conftest import PROVIDERS
from tests.helpers import fixtures


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_document_is_valid_openapi_3_1(provider: str) -> None:
    spec = document(load(provider))
    assert spec["openapi"] == "3.1.0"
    validate(spec)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_document_covers_every_route_error_state_and_the_auth(provider: str) -> None:
    contract = load(provider)
    spec = document(contract)
    routes = {(op.method.lower(), op.path) for op in contract.operations} | {("get", contract.media_path)}
    assert {(m, p) for p, methods in spec["paths"].items() for m in methods} == routes
    errors = {str(e.status) for e in contract.errors.values()}
    for op in contract.operations:
        answer = spec["paths"][op.path][op.method.lower()]
        assert errors <= set(answer["responses"]), op.name
        if op.kind == "submit":
            body = answer["requestBody"]["content"]["application/json"]
            assert body["examples"], f"{op.name}: no documented request as an example"
        if op.kind == "status":
            described = json.dumps(answer["responses"])
            assert all(json.dumps(contract.states[s]) in described for s in contract.status), op.name
    [scheme] = spec["components"]["securitySchemes"].values()
    assert contract.auth.header in json.dumps(scheme) or scheme == {**scheme, "scheme": "bearer"}
    shown = json.dumps(spec)
    statuses = {s for methods in spec["paths"].values() for answer in methods.values() for s in answer["responses"]}
    for name, data in fixtures(provider, "responses"):
        if data.get("status") is None or str(data["status"]) in statuses:  # not a variant's status
            assert json.dumps(data["body"]) in shown, f"fixture {name} is not an example"


def test_the_document_is_served_with_the_mocks_own_address(client: TestClient, state: MockState) -> None:
    for provider in PROVIDERS:
        served = client.get(f"/_veomock/openapi/{provider}.json", headers={"Host": "mock.test:9000"})
        assert served.status_code == 200
        assert served.json() == json.loads(json.dumps(document(state.contracts[provider], "http://mock.test:9000")))
    unknown = client.get("/_veomock/openapi/nope.json")
    assert unknown.status_code == 404 and "use one of" in unknown.json()["error"]


def test_veomock_openapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "--provider", PROVIDERS[0], "--base-url", "http://ci.test:1234"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(document(load(PROVIDERS[0]), "http://ci.test:1234")))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_schemathesis_finds_the_live_mock_true_to_its_document(provider: str) -> None:
    """Valid and invalid requests from the document, over a socket: no 5xx, documented status codes,
    content types and response schemas (seeded: derandomized, 25 cases per operation and mode)."""
    tried = schemathesis_run(provider, examples=25)
    assert tried.cases >= 100
    assert tried.failures == [], "\n".join(tried.failures)
    assert not [s for s in tried.statuses if s >= 500]

"""The OpenAPI 3.1 documents: valid, complete, served, and true of the live mock (Schemathesis).

The document module is imported when a test runs, not when this file is collected: importing it
early changes what tests/test_conformance.py::test_exploration_shrinks_a_failure_to_a_minimal_scenario
finds in its 30 examples (that exploration is sensitive to what the process has loaded).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.conformance.command import main
from veomock.contracts import load
from veomock.mocks import MockState

from tests.conftest import PROVIDERS
from tests.helpers import fixtures


def document(*args: Any) -> dict[str, Any]:
    from veomock.mocks.openapi import document as build

    return build(*args)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_document_is_valid_openapi_3_1(provider: str) -> None:
    from openapi_spec_validator import validate

    spec = document(load(provider))
    assert spec["openapi"] == "3.1.0"
    validate(spec)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_document_covers_every_route_error_state_and_the_auth(provider: str) -> None:
    contract = load(provider)
    spec = document(contract)
    routes = {(op.method.lower(), op.path) for op in contract.operations} | {("get", contract.media_path)}
    if contract.media_redirect is not None:
        routes.add(("get", contract.media_redirect[1]))
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
            assert all(f'"title": "{s}"' in described for s in contract.status), op.name
    scheme = spec["components"]["securitySchemes"]["apiKey"]
    assert contract.auth.header in json.dumps(scheme) or scheme["scheme"] == "bearer"
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
    from benchmarks.fuzz import schemathesis_run  # Schemathesis loads only for the tests that use it

    tried = schemathesis_run(provider, examples=25)
    assert tried.cases >= 100
    assert tried.failures == [], "\n".join(tried.failures)
    assert not [s for s in tried.statuses if s >= 500]

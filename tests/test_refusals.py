"""Validate, then apply: a refused control call changes nothing, and a reset restores the clock."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient
from veomock.mocks import Clock, Control, MockState, create_state

from tests.conftest import PROVIDERS, START
from tests.helpers import API_KEY, auth_headers, sample_request

PYTHON_WORDS = re.compile(r"\b(nan|inf|None|NoneType|float|str|int|dict|list)\b|Error\b|Overflow")

BAD_CLOCK = [
    '{"advance": NaN}',
    '{"advance": Infinity}',
    '{"advance": -Infinity}',
    '{"advance": 1e308}',
    '{"advance": -1}',
    '{"advance": "60"}',
    '{"advance": null, "speed": NaN}',
    '{"speed": NaN}',
    '{"speed": Infinity}',
    '{"speed": -1}',
    '{"speed": true}',
    '{"advance": 60, "speed": NaN}',
    '{"advance": NaN, "speed": 0}',
    '{"advnace": 60}',
]


def _submit_all(client: TestClient, state: MockState) -> None:
    for provider in PROVIDERS:
        contract = state.contracts[provider]
        op, data = sample_request(contract)
        headers = {**auth_headers(contract), **data.get("headers", {})}
        response = client.request(op.method, op.path, json=data["body"], headers=headers)
        assert response.status_code == contract.submit.status, (provider, response.text)


@pytest.mark.parametrize("body", BAD_CLOCK)
def test_a_refused_clock_call_changes_nothing(client: TestClient, state: MockState, body: str) -> None:
    before = client.get("/_veomock/clock").json()
    refused = client.post("/_veomock/clock", content=body)
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]
    assert '"advance"' in message or '"speed"' in message, "says what to send instead"
    assert not PYTHON_WORDS.search(message), message
    assert client.get("/_veomock/clock").json() == before
    _submit_all(client, state)


def test_the_in_process_clock_refuses_before_it_applies() -> None:
    state = create_state(clock=Clock(speed=0, start=START))
    control = Control(state)
    for advance, speed in [(float("nan"), None), (None, float("nan")), (10, float("inf")), (1e308, 2)]:
        with pytest.raises(ValueError):
            control.clock(advance=advance, speed=speed)
        assert control.clock() == {"now": START, "speed": 0, "tenants": {}}
    with pytest.raises(ValueError, match="finite"):
        Clock(speed=float("nan"))


def test_a_refused_balance_changes_nothing(client: TestClient, state: MockState) -> None:
    query = {"key": API_KEY}
    before = client.get("/_veomock/balances", params=query).json()
    for amount in ["NaN", "Infinity", "-Infinity"]:
        body = f'{{"key": "{API_KEY}", "balance": {amount}}}'
        refused = client.post("/_veomock/balances", content=body)
        assert refused.status_code == 400
        assert "finite number" in refused.json()["error"]
    assert client.get("/_veomock/balances", params=query).json() == before
    _submit_all(client, state)


def test_a_refused_webhook_delay_changes_nothing(client: TestClient) -> None:
    before = client.get("/_veomock/webhooks").json()["policies"]
    for seconds in ["NaN", "Infinity", "-5", '"soon"']:
        body = f'{{"policy": {{"mode": "delay", "seconds": {seconds}, "job": "task_1"}}}}'
        refused = client.post("/_veomock/webhooks", content=body)
        assert refused.status_code == 400, refused.text
    assert client.get("/_veomock/webhooks").json()["policies"] == before


def test_reset_restores_the_clock(client: TestClient, state: MockState) -> None:
    client.post("/_veomock/clock", json={"advance": 3600, "speed": 5})
    assert client.post("/_veomock/reset").status_code == 200
    assert client.get("/_veomock/clock").json() == {"now": START, "speed": 0, "tenants": {}}
    assert state.now() == START


@pytest.mark.parametrize("provider", PROVIDERS)
def test_forcing_a_finished_job_is_refused_and_changes_nothing(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = state.contracts[provider]
    op, data = sample_request(contract)
    headers = {**auth_headers(contract), **data.get("headers", {})}
    client.request(op.method, op.path, json=data["body"], headers=headers)
    (job,) = state.jobs.values()
    client.post("/_veomock/clock", json={"advance": 86_400})
    before = client.get(f"/_veomock/jobs/{job.id}").json()
    assert before["state"] == "succeeded"
    for target in ["failed", "running", "queued", "error"]:
        refused = client.post(f"/_veomock/jobs/{job.id}", json={"state": target})
        assert refused.status_code == 409
        assert "already ended as succeeded" in refused.json()["error"]
    assert client.get(f"/_veomock/jobs/{job.id}").json() == before
    unknown = client.post(f"/_veomock/jobs/{job.id}", json={"state": None})
    assert unknown.status_code == 400 and "unknown state null" in unknown.json()["error"]

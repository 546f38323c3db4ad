"""Transport faults over a real socket (uvicorn on 127.0.0.1): hang, reset, truncate, malformed, delay.

Each through every trigger (rule, magic prompt, magic key, chaos) for every provider. The client
sees what a broken network shows it: a timeout, a reset, a cut body, a body that is not JSON.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from veomock.mocks import MockState
from veomock.mocks.failures import magic_key

from tests.conftest import PROVIDERS
from tests.faulty import TRIGGERS, arm_sync, entries, last_job, load, status_parts, submit_parts
from tests.live import LiveServer

CUT = (httpx.RemoteProtocolError, httpx.ReadError)  # what a client sees of a closed or reset connection


def _entry(provider: str, fault: str) -> dict[str, Any]:
    if fault != "delay":
        return next(t for t in entries(provider)["transport"] if t["fault"] == fault)
    contract = load(provider)
    return {
        "prompt": "veomock:delay=0.01",
        "key": magic_key(contract, "delay=0.01"),
        "rule": {"provider": provider, "operation": "submit", "times": 1, "action": {"delay": 0.01}},
        "chaos": {"seed": 1, "provider": provider, "faults": {"delay:0.01": 1.0}},
    }


def _submit(live: LiveServer, provider: str, fault: str, trigger: str, timeout: float = 5.0) -> Any:
    with httpx.Client(base_url=live.url, timeout=timeout) as client:
        prompt, key = arm_sync(client, _entry(provider, fault), trigger)
        parts = submit_parts(load(provider), f"a kite {prompt}" if prompt else None, key)
        return client.request(**parts)


CASES = [(p, t) for p in PROVIDERS for t in TRIGGERS]
IDS = [f"{p}-{t}" for p, t in CASES]


@pytest.mark.parametrize(("provider", "trigger"), CASES, ids=IDS)
def test_hang_until_the_client_gives_up(live_server: LiveServer, provider: str, trigger: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        _submit(live_server, provider, "hang", trigger, timeout=0.3)
    assert len(live_server.state.jobs) == 1, "the work was done; only the answer never came"


@pytest.mark.parametrize(("provider", "trigger"), CASES, ids=IDS)
def test_reset_closes_without_a_response(live_server: LiveServer, provider: str, trigger: str) -> None:
    with pytest.raises(CUT):
        _submit(live_server, provider, "reset", trigger)
    assert len(live_server.state.jobs) == 1, "reset after the work: the job exists, the client cannot know"


@pytest.mark.parametrize(("provider", "trigger"), CASES, ids=IDS)
def test_truncate_sends_headers_and_half_the_body(
    live_server: LiveServer,
    provider: str,
    trigger: str,
) -> None:
    contract = load(provider)
    with httpx.Client(base_url=live_server.url, timeout=5) as client:
        prompt, key = arm_sync(client, _entry(provider, "truncate"), trigger)
        parts = submit_parts(contract, f"a kite {prompt}" if prompt else None, key)
        with client.stream(**parts) as answer:
            assert answer.status_code == contract.submit.status
            declared = int(answer.headers["content-length"])
            got = bytearray()
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in answer.iter_raw():
                    got += chunk
    assert 0 < len(got) < declared


@pytest.mark.parametrize(("provider", "trigger"), CASES, ids=IDS)
def test_malformed_is_a_success_status_with_a_body_that_is_not_json(
    live_server: LiveServer, provider: str, trigger: str
) -> None:
    answer = _submit(live_server, provider, "malformed", trigger)
    assert answer.status_code == load(provider).submit.status
    assert answer.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


@pytest.mark.parametrize(("provider", "trigger"), CASES, ids=IDS)
def test_delay_then_the_normal_answer(live_server: LiveServer, provider: str, trigger: str) -> None:
    answer = _submit(live_server, provider, "delay", trigger)
    assert answer.status_code == load(provider).submit.status
    answer.json()
    [entry] = [e for e in live_server.state.journal if e.get("job")]
    assert entry["fault"] == {"delay": 0.01, "fault": None}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_status_rule_resets_the_poll(live_server: LiveServer, provider: str) -> None:
    contract = load(provider)
    with httpx.Client(base_url=live_server.url, timeout=5) as client:
        assert client.request(**submit_parts(contract)).status_code == contract.submit.status
        job_id = last_job(live_server.state)
        rule = {"provider": provider, "operation": "status", "times": 1, "action": {"reset": True}}
        assert client.post("/_veomock/scenarios", json=rule).status_code == 201
        with pytest.raises(CUT):
            client.request(**status_parts(contract, job_id))
        assert client.request(**status_parts(contract, job_id)).status_code == 200, "a fresh connection works"


def test_a_hang_is_bounded_by_the_cap(live_server: LiveServer) -> None:
    live_server.state.scenarios.hang_cap = 0.2
    with pytest.raises(CUT):
        _submit(live_server, PROVIDERS[0], "hang", "prompt", timeout=10)


@pytest.mark.anyio
async def test_in_process_faults(asgi_client: httpx.AsyncClient, state: MockState) -> None:
    contract = load(PROVIDERS[0])
    with pytest.raises(ConnectionResetError):
        await asgi_client.request(**submit_parts(contract, "a kite veomock:reset"))
    short = await asgi_client.request(**submit_parts(contract, "a kite veomock:truncate"))
    assert short.status_code == contract.submit.status
    assert len(short.content) < int(short.headers["content-length"])
    bad = await asgi_client.request(**submit_parts(contract, "a kite veomock:malformed"))
    with pytest.raises(json.JSONDecodeError):
        bad.json()
    assert len(state.jobs) == 3

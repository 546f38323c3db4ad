"""Chaos profiles: seeded probabilities per fault, deterministic for a seed and a request order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from veomock.conformance.command import _read_chaos
from veomock.mocks import Clock, Control, MockState, create_state

from tests.conftest import PROVIDERS, START
from tests.faulty import load, submit_parts

pytestmark = pytest.mark.anyio


PROFILE = {"seed": 7, "faults": {"error:internal": 0.2, "error:rate_limited": 0.1, "fail": 0.2, "delay:0": 0.1}}


async def _run(
    client: httpx.AsyncClient,
    state: MockState,
    profile: dict[str, Any],
    n: int = 40,
) -> list[Any]:
    assert (await client.post("/_veomock/chaos", json=profile)).status_code == 200
    seen = []
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        answer = await client.request(**submit_parts(load(provider)))
        job = [e for e in state.journal if e.get("direction") == "inbound"][-1].get("job")
        outcome = state.find_job(job).outcome.code if job else None
        seen.append((answer.status_code, outcome))
    return seen


async def test_the_same_seed_and_order_give_the_same_faults(asgi_client: httpx.AsyncClient, state: MockState) -> None:
    first = await _run(asgi_client, state, PROFILE)
    Control(state).reset()
    again = await _run(asgi_client, state, PROFILE)
    assert first == again
    statuses = {status for status, _ in first}
    assert {500, 429} <= statuses and any(code is not None for _, code in first), "the faults do happen"
    Control(state).reset()
    other = await _run(asgi_client, state, {**PROFILE, "seed": 8})
    assert other != first


async def test_scope_by_provider_operation_and_key(asgi_client: httpx.AsyncClient) -> None:
    provider, other = PROVIDERS[0], PROVIDERS[1]
    profile = {
        "seed": 1,
        "provider": provider,
        "operation": "submit",
        "match": {"key": "sk-chaos"},
        "faults": {"error:internal": 1.0},
    }
    shown = (await asgi_client.post("/_veomock/chaos", json=profile)).json()["chaos"]
    assert shown["faults"] == {"error:internal": 1.0}
    assert (await asgi_client.request(**submit_parts(load(provider), key="sk-chaos"))).status_code == 500
    assert (await asgi_client.request(**submit_parts(load(provider), key="sk-calm"))).status_code < 300
    assert (await asgi_client.request(**submit_parts(load(other), key="sk-chaos"))).status_code < 300
    assert (await asgi_client.delete("/_veomock/chaos")).json() == {"chaos": None}
    assert (await asgi_client.request(**submit_parts(load(provider), key="sk-chaos"))).status_code < 300


@pytest.mark.parametrize(
    ("profile", "says"),
    [
        ({"seed": 1, "faults": {"error:internal": 0.7, "fail": 0.5}}, "add up to 1.2"),
        ({"seed": 1, "faults": {"eror:internal": 0.1}}, "did you mean 'error:NAME'?"),
        ({"seed": 1, "faults": {"error:teapot": 0.1}}, "has no error 'teapot'"),
        ({"seed": 1, "faults": {"hang": 2}}, "between 0 and 1"),
        ({"seed": 1}, "a chaos profile looks like"),
        ({"seed": 1, "faults": {}, "sead": 2}, "did you mean 'seed'?"),
    ],
)
async def test_invalid_profiles_say_what_to_fix(
    asgi_client: httpx.AsyncClient, profile: dict[str, Any], says: str
) -> None:
    answer = await asgi_client.post("/_veomock/chaos", json=profile)
    assert answer.status_code == 400 and says in answer.json()["error"]


def test_a_profile_given_at_start_survives_reset(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    path.write_text('{"seed": 7, "faults": {"error:internal": 0.05, "delay:2": 0.1, "fail": 0.05}}')
    profile = _read_chaos(str(path))
    state = create_state(seed=1, clock=Clock(speed=0, start=START), chaos=profile)
    assert state.scenarios.chaos is not None
    Control(state).reset()
    chaos = Control(state).chaos()
    assert chaos is not None and chaos["faults"]["delay:2"] == 0.1
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="a chaos profile is an object"):
        _read_chaos(str(path))
    with pytest.raises(ValueError, match="has no error"):
        create_state(clock=Clock(speed=0), chaos={"seed": 1, "faults": {"error:nope": 0.1}})


def test_chaos_webhook_faults_are_drawn_separately(state: MockState) -> None:
    from veomock.mocks.scenarios import Facts

    Control(state).set_chaos({"seed": 3, "faults": {"webhook:duplicate": 1.0}})
    facts = Facts(PROVIDERS[0], "submit", "submit", "k")
    assert state.scenarios.consult(facts).action is None
    action = state.scenarios.webhook_action(facts)
    assert action is not None and action.webhook == "duplicate"

"""Scenario rules set through the control API: order, times, matching, validation.

Every error and failure code through every trigger (rules included) is in test_triggers.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from veomock.mocks import Control, MockState
from veomock.mocks.scenarios import Facts, RuleError, parse_rule

from tests.conftest import PROVIDERS
from tests.faulty import (
    last_job,
    load,
    status_parts,
    submit_op,
    submit_parts,
)
from tests.helpers import API_KEY

pytestmark = pytest.mark.anyio


async def _submit(
    client: httpx.AsyncClient, provider: str, prompt: str | None = None, key: str = API_KEY
) -> httpx.Response:
    return await client.request(**submit_parts(load(provider), prompt, key))


async def _rules(client: httpx.AsyncClient, rules: Any) -> httpx.Response:
    return await client.post("/_veomock/scenarios", json=rules)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_twice_this_then_that_then_normal(asgi_client: httpx.AsyncClient, provider: str) -> None:
    added = await _rules(
        asgi_client,
        [
            {"provider": provider, "operation": "submit", "times": 2, "action": {"error": "internal"}},
            {"provider": provider, "operation": "submit", "times": 1, "action": {"error": "rate_limited"}},
        ],
    )
    assert added.status_code == 201 and [r["id"] for r in added.json()["added"]] == ["r1", "r2"]
    contract = load(provider)
    seen = [(await _submit(asgi_client, provider)).status_code for _ in range(4)]
    assert seen == [contract.errors["internal"].status] * 2 + [429, contract.submit.status]
    assert (await asgi_client.get("/_veomock/scenarios")).json()["rules"] == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_rules_match_key_prompt_model_and_operation(
    asgi_client: httpx.AsyncClient,
    provider: str,
) -> None:
    contract = load(provider)
    op, model = submit_op(contract)
    await _rules(
        asgi_client,
        [
            {"match": {"key": "sk-worker-1"}, "action": {"error": "internal"}},
            {"match": {"prompt_contains": "storm"}, "operation": op.name, "action": {"error": "rate_limited"}},
            {"match": {"model": "no-such-model"}, "action": {"error": "internal"}},
        ],
    )
    assert (await _submit(asgi_client, provider, key="sk-worker-1")).status_code == 500
    assert (await _submit(asgi_client, provider, key="sk-worker-2")).status_code == contract.submit.status
    assert (await _submit(asgi_client, provider, prompt="a storm at sea")).status_code == 429
    assert (await _submit(asgi_client, provider, prompt="calm sea")).status_code == contract.submit.status
    assert model.name != "no-such-model"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_status_rules_answer_polls_and_end_jobs(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    contract = load(provider)
    code = contract.failures[-1].code
    assert (await _submit(asgi_client, provider)).status_code == contract.submit.status
    job_id = last_job(state)
    await _rules(
        asgi_client,
        [
            {"provider": provider, "operation": "status", "times": 1, "action": {"error": "internal"}},
            {"provider": provider, "operation": "status", "times": 1, "action": {"fail": code}},
        ],
    )
    assert (await asgi_client.request(**status_parts(contract, job_id))).status_code == 500
    poll = await asgi_client.request(**status_parts(contract, job_id))
    failure = contract.failure(code)
    assert failure is not None
    assert state.find_job(job_id).state_at(state.now()) == failure.state, "the poll ended the job at once"
    assert str(code) in poll.text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_state_and_timing_shape_the_job(
    asgi_client: httpx.AsyncClient,
    state: MockState,
    provider: str,
) -> None:
    contract = load(provider)
    await _rules(
        asgi_client,
        [
            {"times": 1, "action": {"state": "error", "timing": {"queued": 0, "running": 0}}},
            {"times": 1, "action": {"timing": {"queued": 2, "running": 3}}},
        ],
    )
    await _submit(asgi_client, provider)
    ended = state.find_job(last_job(state))
    assert ended.state_at(state.now()) == "error" and ended.outcome.state == "error"
    errors = [f.code for f in contract.failures if f.state == "error"] or [contract.failures[0].code]
    assert ended.outcome.code == errors[0]
    await _submit(asgi_client, provider)
    timed = state.find_job(last_job(state))
    assert [at - timed.created_at for at, _ in timed.timeline] == [0, 2, 5]


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"provider": "nobody", "action": {"error": "internal"}}, "unknown provider 'nobody'"),
        ({"action": {"error": "rate_limted"}}, "did you mean 'rate_limited'?"),
        ({"action": {"eror": "internal"}}, "did you mean 'error'?"),
        ({"action": {"fail": "NoSuchCode"}}, "has no failure code 'NoSuchCode'"),
        ({"action": {"state": "exploded"}}, "state must be one of"),
        ({"operation": "status", "action": {"timing": {"queued": 1}}}, "does not apply to status"),
        ({"operation": "sbumit", "action": {"error": "internal"}}, "did you mean 'submit'?"),
        ({"times": 0, "action": {"error": "internal"}}, "times must be a whole number of at least 1"),
        ({"action": {"webhook": "duplicat"}}, "did you mean 'duplicate'?"),
        ({"action": {"reset": True, "truncate": True}}, "one transport fault at a time"),
        ({"action": {"error": "internal", "fail": "X"}}, "cannot also set 'fail'"),
        ({"match": {"keys": "k"}, "action": {"error": "internal"}}, "did you mean 'key'?"),
        ({"action": {"delay": 10_000}}, "delay must be between 0 and 600"),
        ({}, "a rule needs an action"),
    ],
)
async def test_invalid_rules_are_refused_with_what_to_fix(
    asgi_client: httpx.AsyncClient,
    rule: dict[str, Any],
    says: str,
) -> None:
    answer = await _rules(asgi_client, rule)
    assert answer.status_code == 400
    assert says in answer.json()["error"]


async def test_an_unknown_error_lists_the_providers_names(asgi_client: httpx.AsyncClient) -> None:
    provider = PROVIDERS[0]
    answer = await _rules(asgi_client, {"provider": provider, "action": {"error": "teapot"}})
    message = answer.json()["error"]
    assert message.startswith(f"{provider} has no error 'teapot'")
    assert all(name in message for name in load(provider).errors)


async def test_a_list_with_one_bad_rule_adds_none(asgi_client: httpx.AsyncClient) -> None:
    rules = [{"action": {"error": "internal"}}, {"action": {"nope": 1}}]
    answer = await _rules(asgi_client, {"rules": rules})
    assert answer.status_code == 400 and answer.json()["error"].startswith("rule 1:")
    assert (await asgi_client.get("/_veomock/scenarios")).json()["rules"] == []


async def test_list_and_clear_by_key_or_id(asgi_client: httpx.AsyncClient) -> None:
    await _rules(
        asgi_client,
        [
            {"match": {"key": "a"}, "action": {"error": "internal"}},
            {"match": {"key": "b"}, "action": {"error": "internal"}},
            {"id": "mine", "action": {"delay": 1}},
        ],
    )
    assert [r["id"] for r in (await asgi_client.get("/_veomock/scenarios?key=a")).json()["rules"]] == ["r1"]
    assert (await asgi_client.delete("/_veomock/scenarios?key=a")).json() == {"removed": 1}
    assert (await asgi_client.delete("/_veomock/scenarios?id=mine")).json() == {"removed": 1}
    listing = (await asgi_client.get("/_veomock/scenarios")).json()["rules"]
    left = [(r["id"], r["match"], r["action"]) for r in listing]
    assert left == [("r2", {"key": "b"}, {"error": "internal"})]
    assert (await asgi_client.delete("/_veomock/scenarios")).json() == {"removed": 1}


@pytest.mark.parametrize("mode", ["duplicate", "reorder", "delay", "drop", "late"])
def test_webhook_actions_are_stored_for_the_webhook_engine(state: MockState, mode: str) -> None:
    provider = PROVIDERS[0]
    rule = Control(state).add_scenarios({"provider": provider, "action": {"webhook": mode, "seconds": 30}})[0]
    assert rule["action"] == {"webhook": mode, "seconds": 30}
    facts = Facts(provider, "submit", "submit", API_KEY)
    assert state.scenarios.consult(facts).action is None, "a webhook action leaves the answer alone"
    action = state.scenarios.webhook_action(facts)
    assert action is not None and (action.webhook, action.options) == (mode, {"seconds": 30})


def test_rule_ids_are_unique(state: MockState) -> None:
    state.scenarios.add({"id": "x", "action": {"error": "internal"}})
    with pytest.raises(RuleError, match="exists"):
        state.scenarios.add({"id": "x", "action": {"error": "internal"}})
    with pytest.raises(RuleError, match="a rule is an object"):
        parse_rule(["not", "a", "rule"], state.contracts, "r9")

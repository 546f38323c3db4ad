"""Control-plane settings shared through Redis, against a real redis-server: scenario rules, chaos
and webhook targets set through one worker's control API apply on every worker, a rule for a few
requests applies that many times across workers, and a refused control call changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.testclient import TestClient
from veomock.contracts import load_all
from veomock.mocks import Clock, Control, MockState, build_app
from veomock.mocks.store_redis import RedisState

from tests.hooks import request_for
from tests.store_serving import kill, listening, start

pytestmark = pytest.mark.anyio
START = 1_800_000_000.0
CONTRACTS = load_all()
PROVIDER = "apixo"
RULE = {"provider": PROVIDER, "operation": "submit", "action": {"error": "internal"}, "times": 3}
CHAOS = {"seed": 7, "provider": PROVIDER, "faults": {"error:internal": 0.5}}


@asynccontextmanager
async def _workers(store: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two workers on one fresh store, each behind an HTTP client of its own."""
    clients = []
    for _ in range(2):
        state = RedisState(contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=store)
        transport = httpx.ASGITransport(app=build_app(state))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000"))
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


async def _submit(client: httpx.AsyncClient) -> int:
    response = await request_for(PROVIDER, None, None).send(client)
    return int(response.status_code)


async def test_a_rule_set_on_one_worker_applies_on_every_worker_as_many_times_as_it_says(store: str) -> None:
    async with _workers(store) as (one, two):
        added = (await one.post("/_veomock/scenarios", json=RULE)).json()["added"]
        assert [r["id"] for r in added] == ["r1"]
        refused = CONTRACTS[PROVIDER].errors["internal"].status
        assert [await _submit(c) for c in (two, one, two, one)] == [refused] * 3 + [200]
        assert (await two.get("/_veomock/scenarios")).json()["rules"] == []  # used up, on every worker
        again = (await two.post("/_veomock/scenarios", json={**RULE, "times": None})).json()["added"]
        assert [r["id"] for r in again] == ["r2"]  # ids are numbered across workers
        listed = (await one.get("/_veomock/scenarios")).json()["rules"]
        assert [(r["id"], r["used"]) for r in listed] == [("r2", 0)]
        assert (await one.delete("/_veomock/scenarios", params={"id": "r2"})).json() == {"removed": 1}
        assert await _submit(two) == 200


async def test_chaos_and_webhook_targets_set_on_one_worker_are_what_every_worker_has(store: str) -> None:
    async with _workers(store) as (one, two):
        chaos = (await one.post("/_veomock/chaos", json=CHAOS)).json()["chaos"]
        assert (await two.get("/_veomock/chaos")).json()["chaos"] == chaos
        await two.post("/_veomock/webhooks", json={"allow": ["hooks.example.com:443"]})
        assert "hooks.example.com:443" in (await one.get("/_veomock/webhooks")).json()["allowed_targets"]
        limit = {"provider": PROVIDER, "key": "k", "requests_per_minute": 1}
        assert (await two.post("/_veomock/limits", json=limit)).status_code == 200
        listed = (await one.get("/_veomock/limits", params={"provider": PROVIDER, "key": "k"})).json()
        assert listed["limits"][PROVIDER]["requests_per_minute"] == 1
        assert (await two.post("/_veomock/limits", json={**limit, "requests_per_minute": -1})).status_code == 400
        assert (await one.get("/_veomock/limits", params={"provider": PROVIDER, "key": "k"})).json() == listed
        assert (await two.delete("/_veomock/chaos")).status_code == 200
        assert (await one.get("/_veomock/chaos")).json()["chaos"] is None
        await one.post("/_veomock/reset")  # a reset drops rules and chaos for every worker, keeps targets
        assert "hooks.example.com:443" in (await two.get("/_veomock/webhooks")).json()["allowed_targets"]


async def test_a_refused_control_call_changes_nothing_on_any_worker(store: str) -> None:
    async with _workers(store) as (one, two):
        await one.post("/_veomock/scenarios", json={**RULE, "match": {"key": "k"}})
        wrong = [RULE, {**RULE, "action": {"error": "no_such_error"}}]
        assert (await two.post("/_veomock/scenarios", json=wrong)).status_code == 400
        assert (await two.post("/_veomock/chaos", json={"faults": {"error:internal": 2}})).status_code == 400
        allow = {"allow": ["ok.example:443", "not a host"]}
        assert (await two.post("/_veomock/webhooks", json=allow)).status_code == 400
        for client in (one, two):
            listing = (await client.get("/_veomock/scenarios")).json()
            assert [r["match"] for r in listing["rules"]] == [{"key": "k"}] and listing["chaos"] is None
            assert "ok.example:443" not in (await client.get("/_veomock/webhooks")).json()["allowed_targets"]
        await two.post("/_veomock/reset", params={"key": "k"})  # forgetting a key drops its rules everywhere
        assert (await one.get("/_veomock/scenarios")).json()["rules"] == []


def test_a_change_another_worker_shares_meanwhile_is_kept_and_the_call_made_again_on_it(store: str) -> None:
    one, two = (RedisState(contracts=CONTRACTS, store=store) for _ in range(2))
    calls = []

    def add() -> str:
        calls.append(len(calls))
        if len(calls) == 1:  # one shares a rule after two read the settings, before two shares its own
            one.configure(lambda: one.scenarios.add({**RULE, "id": "from-one"}))
        return two.scenarios.add({**RULE, "times": None}).id

    assert two.configure(add) == "r2" and calls == [0, 1]
    for worker in (one, two):
        assert [r.id for r in worker.configure(lambda w=worker: list(w.scenarios.rules))] == ["from-one", "r2"]


def test_reading_the_settings_on_any_worker_shares_nothing(store: str) -> None:
    one, two = (RedisState(contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=store) for _ in range(2))
    Control(one).add_scenarios({**RULE, "times": 1})
    with TestClient(build_app(two), base_url="http://127.0.0.1:8000") as client:
        assert request_for(PROVIDER, None, None).send(client).status_code == 500  # the rule, used up
    version = one.client.hget(one.shared_clocks.shared.name, "settings")
    for worker in (one, two):
        control = Control(worker)
        assert control.scenarios()["rules"] == [] and control.chaos() is None
        assert control.limits(PROVIDER)[PROVIDER]
        assert one.client.hget(one.shared_clocks.shared.name, "settings") == version


def test_a_rule_posted_to_one_served_mock_refuses_a_submit_to_another(store: str) -> None:
    first, second = start(store), start(store)
    try:
        one, two = listening(first), listening(second)
        request = request_for(PROVIDER, None, None)
        with httpx.Client(timeout=10) as client:
            assert client.post(f"{one}/_veomock/scenarios", json={**RULE, "times": 1}).status_code == 201
            answers = [request.send(client, base).status_code for base in (two, one)]
    finally:
        kill(first)
        kill(second)
    assert answers == [CONTRACTS[PROVIDER].errors["internal"].status, 200]


def test_a_worker_serving_fewer_providers_skips_the_rules_it_cannot_hold(store: str) -> None:
    every = RedisState(contracts=CONTRACTS, store=store)
    some = RedisState(contracts={PROVIDER: CONTRACTS[PROVIDER]}, store=store)
    every.configure(lambda: every.scenarios.add({**RULE, "provider": "pixazo", "id": "elsewhere"}))
    every.configure(lambda: every.scenarios.add({**RULE, "id": "here"}))
    every.configure(lambda: every.scenarios.set_chaos({**CHAOS, "provider": "pixazo"}))
    some.now()  # a request reads the settings
    assert [r.id for r in some.scenarios.rules] == ["here"] and some.scenarios.chaos is None
    some.configure(lambda: some.scenarios.add({**RULE, "id": "later"}))  # shares them on untouched
    every.now()
    assert [r.id for r in every.scenarios.rules] == ["elsewhere", "here", "later"]
    assert every.scenarios.chaos is not None and every.scenarios.chaos.provider == "pixazo"


async def test_each_worker_draws_its_own_faults_from_the_chaos_profiles_seed(store: str) -> None:
    async with _workers(store) as (one, two):
        await one.post("/_veomock/chaos", json=CHAOS)
        drawn = [[await _submit(client) for _ in range(12)] for client in (one, two)]
    refused = CONTRACTS[PROVIDER].errors["internal"].status
    assert all(set(codes) == {200, refused} for codes in drawn)  # the profile applies on both
    assert drawn[0] != drawn[1]  # seeded per worker, as ids are: not the same faults twice over


def test_a_session_served_again_on_the_same_store_is_armed_once(store: str) -> None:
    """``veomock serve --from`` started twice on one store (a restart): the session's rules once."""
    recorded = MockState(contracts=CONTRACTS, clock=Clock(speed=0, start=START))
    request = request_for(PROVIDER, None, None)
    Control(recorded).add_scenarios(RULE)
    with TestClient(build_app(recorded), base_url="http://127.0.0.1:8000") as client:
        for _ in range(2):
            request.send(client)
    session = Control(recorded).har()
    counts = []
    for _ in range(2):  # the first start, then a start again on the same store
        state = RedisState(contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=store)
        armed = Control(state).playback(session, once=True)["rules"]
        counts.append(len(Control(state).scenarios()["rules"]))
        assert armed and all(rule["id"].startswith("playback-") for rule in armed)
    assert counts[0] == counts[1] > 0
    again = RedisState(contracts=CONTRACTS, clock=Clock(speed=0, start=START), store=store)
    Control(again).playback(session)  # armed through the control API: as many times as asked
    assert len(Control(again).scenarios()["rules"]) == 2 * counts[0]

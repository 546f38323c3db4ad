"""A clock per tenant, and a clock that drives webhooks: moving time delivers what came due."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest
from starlette.testclient import TestClient
from veomock.mocks import Clock, Control, MockState, build_app, create_state
from veomock.mocks.receiver import Receiver, failing

from tests.conftest import PROVIDERS, START
from tests.helpers import auth_headers, request_path, sample_request
from tests.hooks import channel_of, mock, request_for

ALICE, BOB = "sk-tenant-alice", "sk-tenant-bob"


def _submit(client: TestClient, state: MockState, provider: str, key: str) -> str:
    contract = state.contracts[provider]
    op, data = sample_request(contract)
    headers = {**auth_headers(contract, key), **data.get("headers", {})}
    response = client.request(op.method, op.path, json=data["body"], headers=headers)
    assert response.status_code == contract.submit.status, response.text
    return str(state.journal[-1]["job"])


def _status(client: TestClient, state: MockState, provider: str, key: str, job_id: str) -> str:
    contract = state.contracts[provider]
    job = state.job(provider, job_id)
    op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
    path, query = request_path(op, job_id)
    assert client.get(path, params=query, headers=auth_headers(contract, key)).status_code < 300
    return str(state.journal[-1]["state"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_moving_one_tenants_clock_never_moves_another_tenants_jobs(
    client: TestClient, state: MockState, provider: str
) -> None:
    alice, bob = _submit(client, state, provider, ALICE), _submit(client, state, provider, BOB)
    moved = client.post("/_veomock/clock", json={"key": ALICE, "advance": 86_400})
    assert moved.status_code == 200 and moved.json()["own"] is True
    assert _status(client, state, provider, ALICE, alice) == "succeeded"
    assert _status(client, state, provider, BOB, bob) == "queued"
    assert client.get("/_veomock/clock", params={"key": BOB}).json() == {
        "now": START,
        "speed": 0,
        "key": BOB,
        "own": False,
    }
    client.post("/_veomock/clock", json={"advance": 5})  # the default clock: Bob's, not Alice's
    assert client.get("/_veomock/clock", params={"key": ALICE}).json()["now"] == START + 86_400
    assert client.get("/_veomock/clock").json()["tenants"] == {ALICE: {"now": START + 86_400, "speed": 0}}
    listing = client.get("/_veomock/jobs", params={"provider": provider, "reveal": 1}).json()["jobs"]
    summaries = {s["key"]: s for s in listing}
    assert summaries[ALICE]["now"] == START + 86_400 and summaries[ALICE]["state"] == "succeeded"
    assert summaries[BOB]["now"] == START + 5
    charged = client.get("/_veomock/balances", params={"key": ALICE, "provider": provider}).json()
    assert charged["balances"][provider]["charged"] == state.job(provider, alice).price, "billed on Alice's clock"

    assert client.post("/_veomock/reset", params={"key": ALICE}).status_code == 200
    assert client.get("/_veomock/clock", params={"key": ALICE}).json()["own"] is False
    client.post("/_veomock/clock", json={"key": BOB, "speed": 2})
    client.post("/_veomock/reset")
    assert client.get("/_veomock/clock").json() == {"now": START, "speed": 0, "tenants": {}}


def test_a_frozen_tenant_stays_still_while_the_default_clock_runs() -> None:
    ticks = itertools.count()
    state = create_state(seed=2, clock=Clock(speed=1, start=START, monotonic=lambda: float(next(ticks))))
    control = Control(state)
    frozen = control.clock(speed=0, key=ALICE)["now"]
    assert state.now(ALICE) == state.now(ALICE) == frozen
    assert state.now(BOB) < state.now(BOB), "everyone else runs on the default clock"
    assert control.clock(key=ALICE, advance=30)["now"] == frozen + 30
    with pytest.raises(ValueError, match="key must be an API key"):
        control.clock(advance=1, key=7)


def test_the_control_api_refuses_a_key_that_is_not_a_string(client: TestClient) -> None:
    default = client.post("/_veomock/clock", json={"key": None, "advance": 1, "speed": None})
    assert default.status_code == 200, "a null key is the default clock"
    refused = client.post("/_veomock/clock", json={"key": ["k"], "advance": 1})
    assert refused.status_code == 400 and "key must be an API key (a string), not [" in refused.json()["error"]
    assert client.get("/_veomock/clock").json()["now"] == START + 1


@pytest.mark.anyio
async def test_advancing_the_clock_through_the_control_api_delivers_webhooks() -> None:
    channel = channel_of("apixo", "callback")
    async with mock("apixo") as m, Receiver(failing(1)) as hook:
        job = await m.job_for("apixo", channel, hook.url(), key=ALICE)
        other = await m.job_for("apixo", channel, hook.url(), key=BOB)
        assert (await m.client.get("/_veomock/webhooks")).json()["outstanding"] == []
        moved = await m.client.post("/_veomock/clock", json={"key": ALICE, "advance": 86_400})
        assert moved.json()["webhook_attempts"] == 1
        (first,) = hook.received
        assert first.answered == 500
        (retry,) = (await m.client.get("/_veomock/webhooks")).json()["outstanding"]
        assert retry["job"] == job.id and retry["attempts"] == 1, "a failed attempt waits for its retry"
        assert all(e["job"] != other.id for e in m.outbound()), "Bob's clock has not moved"
        m.state.clock.advance(86_400)  # the raw clock: nothing is sent, but the due delivery is listed
        listed = (await m.client.get("/_veomock/webhooks")).json()["outstanding"]
        assert {d["job"] for d in listed} == {job.id, other.id}


@pytest.mark.anyio
async def test_advancing_the_clock_in_process_delivers_webhooks() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        job = await m.job_for("aivideoapi", channel, hook.url())
        Control(m.state).clock(advance=86_400)
        (got,) = await hook.wait_for(1, answered=True)
        assert got.json() == (await m.status(job)).json()


def test_in_process_advance_delivers_before_it_returns(state: MockState) -> None:
    """Synchronous code (a script, a sync test) gets the deliveries done by the time clock() returns."""
    loop = asyncio.new_event_loop()
    hook = Receiver()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(hook.__aenter__())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()
    try:
        state.allow_http_webhooks = True
        channel = channel_of("aivideoapi", "callback")
        with TestClient(build_app(state), base_url="http://127.0.0.1:8000") as client:
            request = request_for("aivideoapi", channel, hook.url())
            response = request.send(client)
            assert response.status_code == 200, response.text
            Control(state).clock(advance=86_400)
            assert len(hook.received) == 1
    finally:
        asyncio.run_coroutine_threadsafe(hook.__aexit__(None, None, None), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

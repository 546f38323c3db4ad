"""Rate limits, concurrency caps and balances as each contract declares them, on the mock clock."""

from __future__ import annotations

import httpx
import pytest
from veomock.mocks import Control, MockState
from veomock.mocks.limits import Limiter

from tests.conftest import PROVIDERS
from tests.faulty import failure_cases, failure_entry, finish, last_job, load, submit_parts
from tests.helpers import API_KEY, auth_headers

pytestmark = pytest.mark.anyio


def _retry_after_shown(provider: str) -> bool:
    """Whether the contract's 429 carries Retry-After: declared, or templated in the error's headers."""
    contract = load(provider)
    templated = any("retry_after" in v for v in contract.errors["rate_limited"].headers.values())
    return contract.rate_limits.get("retry_after") is not None or templated


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_limits_are_the_contracts(state: MockState, provider: str) -> None:
    declared = load(provider).rate_limits
    assert Control(state).limits(provider)[provider] == {
        k: declared.get(k) for k in ("requests_per_minute", "concurrent_jobs", "retry_after")
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_declared_per_minute_limits_hold_at_their_number(provider: str) -> None:
    contract = load(provider)
    limiter = Limiter({provider: contract})
    rpm = contract.rate_limits.get("requests_per_minute")
    if rpm is None:
        assert all(limiter.admit(provider, "k", 0.0) is None for _ in range(100))
        return
    assert all(limiter.admit(provider, "k", 0.0) is None for _ in range(rpm))
    refusal = limiter.admit(provider, "k", 0.0)
    assert refusal is not None and refusal.error == "rate_limited"
    assert limiter.admit(provider, "other-key", 0.0) is None, "each key has its own window"
    assert limiter.admit(provider, "k", 60.0) is None, "the window slides with the clock"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_requests_per_minute_on_the_clock(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    contract = load(provider)
    answer = await asgi_client.post("/_veomock/limits", json={"provider": provider, "requests_per_minute": 2})
    assert answer.json()["limits"]["requests_per_minute"] == 2
    ok = contract.submit.status
    assert [(await asgi_client.request(**submit_parts(contract))).status_code for _ in range(2)] == [ok, ok]
    state.clock.advance(30)
    refused = await asgi_client.request(**submit_parts(contract))
    assert refused.status_code == contract.errors["rate_limited"].status == 429
    if _retry_after_shown(provider):
        declared = contract.rate_limits.get("retry_after")
        assert refused.headers["Retry-After"] == str(declared if declared is not None else 30)
    else:
        assert "Retry-After" not in refused.headers
    state.clock.advance(30)
    assert (await asgi_client.request(**submit_parts(contract))).status_code == ok


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_concurrency_counts_jobs_that_have_not_ended(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    contract = load(provider)
    Control(state).set_limits(provider, concurrent_jobs=1)
    assert (await asgi_client.request(**submit_parts(contract))).status_code == contract.submit.status
    first = last_job(state)
    refused = await asgi_client.request(**submit_parts(contract))
    assert refused.status_code == 429
    other = await asgi_client.request(**submit_parts(contract, key="sk-another-worker"))
    assert other.status_code == contract.submit.status, "the cap is per API key"
    finish(state, first)
    assert (await asgi_client.request(**submit_parts(contract))).status_code == contract.submit.status


async def test_a_key_override_beats_the_provider_one(asgi_client: httpx.AsyncClient) -> None:
    provider = PROVIDERS[0]
    contract = load(provider)
    await asgi_client.post("/_veomock/limits", json={"provider": provider, "requests_per_minute": 1})
    big = {"provider": provider, "key": "sk-big", "requests_per_minute": 5}
    await asgi_client.post("/_veomock/limits", json=big)
    statuses = [(await asgi_client.request(**submit_parts(contract, key="sk-big"))).status_code for _ in range(3)]
    assert statuses == [contract.submit.status] * 3
    shown = (await asgi_client.get(f"/_veomock/limits?provider={provider}&key=sk-big")).json()["limits"]
    assert shown[provider]["requests_per_minute"] == 5
    cleared = (await asgi_client.delete(f"/_veomock/limits?provider={provider}")).json()["limits"]
    assert cleared[provider]["requests_per_minute"] == contract.rate_limits.get("requests_per_minute")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"provider": "nobody", "requests_per_minute": 1}, "unknown provider"),
        ({"provider": PROVIDERS[0], "requests_per_minte": 1}, "unknown limit"),
        ({"provider": PROVIDERS[0], "concurrent_jobs": 0}, "at least 1"),
    ],
)
async def test_bad_limits_are_refused(
    asgi_client: httpx.AsyncClient,
    body: dict[str, object],
    says: str,
) -> None:
    answer = await asgi_client.post("/_veomock/limits", json=body)
    assert answer.status_code == 400 and says in answer.json()["error"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_set_and_show_a_balance_and_run_out(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    contract = load(provider)
    empty = {"key": API_KEY, "balance": 0, "provider": provider}
    answer = await asgi_client.post("/_veomock/balances", json=empty)
    assert answer.json()["balances"][provider]["remaining"] == 0
    broke = await asgi_client.request(**submit_parts(contract))
    assert broke.status_code == contract.errors["insufficient_balance"].status
    assert not state.jobs
    await asgi_client.post("/_veomock/balances", json={"key": API_KEY, "balance": 50})
    shown = (await asgi_client.get(f"/_veomock/balances?key={API_KEY}")).json()["balances"]
    assert set(shown) == set(PROVIDERS) and all(v["remaining"] == 50 for v in shown.values())
    assert (await asgi_client.request(**submit_parts(contract))).status_code == contract.submit.status
    view = state.runtime(provider).ledger.view(API_KEY, state.now())
    price = state.find_job(last_job(state)).price
    assert view["charged"] == (price if contract.billing["charge_at"] == "submit" else 0)
    assert view["remaining"] == 50 - view["charged"]
    for op in contract.operations_of("balance"):
        assert contract.balance is not None
        seen = await asgi_client.request(op.method, op.path, headers=auth_headers(contract))
        assert seen.json() == contract.balance.body.render({"balance": view})


@pytest.mark.parametrize(("provider", "code"), failure_cases())
async def test_refunds_follow_the_contracts_refund_states(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str, code: str
) -> None:
    contract, entry = load(provider), failure_entry(provider, code)
    failure = contract.failure(code)
    assert failure is not None
    refunded = failure.state in contract.billing["refund_states"]
    if failure.refund is not None:
        assert failure.refund == refunded, f"{code} says refund={failure.refund}; refund_states disagree"
    assert entry["refunded"] == refunded
    await asgi_client.request(**submit_parts(contract, f"a kite {entry['prompt']}"))
    job = state.find_job(last_job(state))
    before = Control(state).balance(API_KEY, provider)[provider]["charged"]
    assert before == (job.price if contract.billing["charge_at"] == "submit" else 0)
    finish(state, job.id)
    after = Control(state).balance(API_KEY, provider)[provider]["charged"]
    assert after == (0 if refunded else job.price)


async def test_bad_balances_are_refused(asgi_client: httpx.AsyncClient) -> None:
    assert (await asgi_client.post("/_veomock/balances", json={"key": "k"})).status_code == 400
    wordy = {"key": "k", "balance": "lots"}
    assert (await asgi_client.post("/_veomock/balances", json=wordy)).status_code == 400
    assert (await asgi_client.get("/_veomock/balances")).status_code == 400

"""Magic inputs: ``veomock:<directive>`` in a prompt and ``veomock-<directive>`` in an API key."""

from __future__ import annotations

import httpx
import pytest
from veomock.mocks import MockState
from veomock.mocks.failures import magic_key
from veomock.mocks.scenarios import RuleError, magic_in_key, magic_in_prompt, parse_magic

from tests.conftest import PROVIDERS
from tests.faulty import finish, last_job, load, status_parts, submit_parts
from tests.helpers import API_KEY

pytestmark = pytest.mark.anyio


def test_the_prompt_token_and_the_key_form() -> None:
    found = magic_in_prompt("a cat veomock:error=rate_limited, then veomock:delay=1")
    assert found == ["error=rate_limited,", "delay=1"]
    assert magic_in_key("veomock-error=insufficient_balance") == "error=insufficient_balance"
    assert magic_in_key("sk-veomock-fail=Unknown%20error") == "fail=Unknown%20error"
    assert magic_in_key("sk-veomock-hang") == "hang"
    assert magic_in_key(API_KEY) is None, "a key that merely contains veomock- is an ordinary key"
    assert magic_in_key("veomock-eror=internal") is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parsed_directives(provider: str) -> None:
    contract = load(provider)
    magic = parse_magic("error=rate_limited,retry_after=7,on=status,times=2", contract)
    parsed = (magic.action.error, magic.action.retry_after, magic.on, magic.times)
    assert parsed == ("rate_limited", 7, "status", 2)
    timed = parse_magic("queued=0,running=5", contract)
    assert timed.action.timing == {"queued": 0.0, "running": 5.0}
    assert parse_magic("hang", contract).action.fault == "hang"
    assert parse_magic("webhook=drop", contract).action.webhook == "drop"
    with pytest.raises(RuleError, match="did you mean 'truncate'"):
        parse_magic("truncat", contract)
    with pytest.raises(RuleError, match="does not apply to status"):
        parse_magic("queued=1,on=status", contract)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_bad_magic_prompt_is_the_providers_400_saying_what_to_fix(
    asgi_client: httpx.AsyncClient, provider: str
) -> None:
    contract = load(provider)
    answer = await asgi_client.request(**submit_parts(contract, "a cat veomock:error=rate_limted"))
    assert answer.status_code == contract.errors["invalid_request"].status
    assert "did you mean 'rate_limited'?" in answer.text and "veomock:error=rate_limted" in answer.text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_times_fails_the_first_n_then_succeeds(asgi_client: httpx.AsyncClient, provider: str) -> None:
    contract = load(provider)
    prompt = "a cat veomock:error=internal,times=2"
    seen = [(await asgi_client.request(**submit_parts(contract, prompt))).status_code for _ in range(3)]
    assert seen == [500, 500, contract.submit.status]
    other_key = magic_key(contract, "x").replace("veomock-x", "worker-2")
    again = await asgi_client.request(**submit_parts(contract, prompt, other_key))
    assert again.status_code == 500, "each API key counts its own uses"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_on_status_answers_the_polls_of_that_job(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str
) -> None:
    contract = load(provider)
    prompt = "a cat veomock:error=service_unavailable,on=status,times=1"
    assert (await asgi_client.request(**submit_parts(contract, prompt))).status_code == contract.submit.status
    job_id = last_job(state)
    first = await asgi_client.request(**status_parts(contract, job_id))
    second = await asgi_client.request(**status_parts(contract, job_id))
    assert first.status_code >= 500 and second.status_code == 200


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_retry_after_and_message(asgi_client: httpx.AsyncClient, provider: str) -> None:
    contract = load(provider)
    key = magic_key(contract, "error=rate_limited,retry_after=7,message=slow%20down")
    answer = await asgi_client.request(**submit_parts(contract, key=key))
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    templated = str(contract.errors["rate_limited"].body.source)
    assert "slow down" in answer.text or "{{ message }}" not in templated


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_state_and_timing_from_a_prompt(
    asgi_client: httpx.AsyncClient,
    state: MockState,
    provider: str,
) -> None:
    contract = load(provider)
    prompt = "a cat veomock:state=failed,queued=0,running=0"
    assert (await asgi_client.request(**submit_parts(contract, prompt))).status_code == contract.submit.status
    job = state.find_job(last_job(state))
    assert job.state_at(state.now()) == "failed", "the job ended at once"
    finish(state, job.id)
    poll = await asgi_client.request(**status_parts(contract, job.id))
    assert contract.states["failed"] in poll.text


async def test_a_magic_key_sets_the_jobs_webhook_policy() -> None:
    from veomock.mocks.failures import magic_key as key_for
    from veomock.mocks.receiver import Receiver

    from tests.hooks import CHANNELS, channel_of, mock, request_for

    provider, name = CHANNELS[0]
    async with mock(provider) as m, Receiver() as hook:
        key = key_for(load(provider), "webhook=delay,seconds=30")
        response = await m.submit(provider, request_for(provider, channel_of(provider, name), hook.url(), key=key))
        assert response.status_code == load(provider).submit.status, response.text
        job = list(m.state.jobs.values())[-1]
        assert m.state.webhooks.policies()["jobs"] == {job.id: {"mode": "delay", "seconds": 30.0}}

"""Every contract error and every failure code, through each of the three triggers.

A control-API rule, a magic prompt token, a magic API key and a chaos profile must all give the
client the same thing: the catalogue's answer (``veomock failures``). One expectation, four ways in.
"""

from __future__ import annotations

import httpx
import pytest
from veomock.mocks import Control, MockState

from tests.faulty import arm as arm_trigger
from tests.faulty import (
    error_cases,
    error_entry,
    failure_cases,
    failure_entry,
    finish,
    last_job,
    load,
    status_parts,
    submit_op,
    submit_parts,
)
from tests.helpers import shape

pytestmark = pytest.mark.anyio

TRIGGERS = ["rule", "prompt", "key", "chaos"]


async def check_error(
    client: httpx.AsyncClient,
    state: MockState,
    provider: str,
    name: str,
    trigger: str,
) -> None:
    """The trigger makes the submit answer the contract's error ``name``, as the catalogue shows it."""
    entry, contract = error_entry(provider, name), load(provider)
    prompt, key = await arm_trigger(client, entry, trigger)
    answer = await client.request(**submit_parts(contract, prompt, key))
    assert answer.status_code == entry["status"], answer.text
    assert answer.json() == entry["body"]
    for header, value in entry["headers"].items():
        assert answer.headers[header] == value
    assert not state.jobs, "an error answer creates no job"
    [seen] = [e for e in state.journal if e.get("operation") == submit_op(contract)[0].name]
    assert seen["status"] == entry["status"] and seen["scenario"]


async def check_failure(
    client: httpx.AsyncClient,
    state: MockState,
    provider: str,
    code: str,
    trigger: str,
) -> None:
    """The trigger makes the job end with failure ``code``; polling then shows it."""
    entry, contract = failure_entry(provider, code), load(provider)
    prompt, key = await arm_trigger(client, entry, trigger)
    answer = await client.request(**submit_parts(contract, prompt, key))
    assert answer.status_code == contract.submit.status, answer.text
    job_id = last_job(state)
    outcome = Control(state).job(job_id)["outcome"]
    assert (str(outcome["code"]), outcome["state"]) == (code, entry["state"])
    finish(state, job_id)
    poll = await client.request(**status_parts(contract, job_id, key))
    assert poll.status_code == contract.status[entry["state"]].status
    assert shape(poll.json()) == shape(entry["status_body"])
    assert entry["status"] in poll.text
    assert code in poll.text or entry["message"] in poll.text, "the poll shows the failure (code or message)"


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("provider", "name"), error_cases())
async def test_every_error_through_every_trigger(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str, name: str, trigger: str
) -> None:
    await check_error(asgi_client, state, provider, name, trigger)


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("provider", "code"), failure_cases())
async def test_every_failure_code_through_every_trigger(
    asgi_client: httpx.AsyncClient, state: MockState, provider: str, code: str, trigger: str
) -> None:
    await check_failure(asgi_client, state, provider, code, trigger)

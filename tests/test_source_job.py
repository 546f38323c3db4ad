"""A job built on an earlier one (an extension) ends as the contract says when that one is bad."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.conformance.facts import body_path
from veomock.contracts import Contract, load
from veomock.mocks import MockState

from tests.conftest import PROVIDERS
from tests.helpers import API_KEY, auth_headers, request_path, sample_request

BUILT_ON = [(p, name) for p in PROVIDERS for name, model in load(p).models.items() if model.source_job]


def _submit(client: TestClient, state: MockState, contract: Contract, model: str, key: str, parent: str | None) -> Any:
    op = next(o for o in contract.operations_of("submit") if model in o.models)
    _, data = sample_request(contract, op.name)
    body = copy.deepcopy(data["body"])
    source = contract.models[model].source_job
    if parent is not None and source is not None:
        where = body_path(source.id_from)
        assert where is not None
        *parents, last = where.split(".")
        node = body
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = parent
    response = client.request(op.method, op.path, json=body, headers=auth_headers(contract, key))
    assert response.status_code == contract.submit.status, response.text
    return state.job(contract.provider, str(state.journal[-1]["job"]))


def _ended(client: TestClient, state: MockState, contract: Contract, job: Any, key: str) -> Any:
    client.post("/_veomock/clock", json={"advance": 3600})
    op = next(o for o in contract.operations_of("status") if job.model in o.models)
    path, query = request_path(op, job.id)
    return client.get(path, params=query, headers=auth_headers(contract, key))


@pytest.mark.parametrize(("provider", "model"), BUILT_ON)
def test_a_job_built_on_a_bad_one_fails_with_the_documented_code(
    client: TestClient, state: MockState, provider: str, model: str
) -> None:
    contract = state.contracts[provider]
    source = contract.models[model].source_job
    assert source is not None
    failure = contract.failure(source.fail)
    assert failure is not None
    earlier = _submit(client, state, contract, source.models[0], API_KEY, None)
    unfinished = _submit(client, state, contract, model, API_KEY, earlier.id)
    never = _submit(client, state, contract, model, API_KEY, "task_00000000")
    elsewhere = _submit(client, state, contract, model, "sk-someone-else", earlier.id)
    for job, key in [(unfinished, API_KEY), (never, API_KEY), (elsewhere, "sk-someone-else")]:
        answer = _ended(client, state, contract, job, key)
        assert answer.status_code == contract.status[failure.state].status
        assert str(failure.code) in answer.text and job.outcome.code == failure.code
    built = _submit(client, state, contract, model, API_KEY, earlier.id)  # the earlier one has succeeded now
    assert _ended(client, state, contract, built, API_KEY).status_code == contract.status["succeeded"].status
    assert built.outcome.state == "succeeded"


def test_apixo_extending_a_task_that_never_existed_answers_taskid_error(client: TestClient, state: MockState) -> None:
    contract = state.contracts["apixo"]
    job = _submit(client, state, contract, "veo-3-1-extend", API_KEY, "task_99999999")
    data = _ended(client, state, contract, job, API_KEY).json()["data"]
    assert data["state"] == "failed" and data["failCode"] == "TASKID_ERROR"

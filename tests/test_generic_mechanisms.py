"""Mechanisms a contract may select: the key in a query parameter, resource names with slashes as
ids, result downloads that need the key and redirect to storage. Each test runs over every
contract that selects the mechanism, and checks the others keep their behaviour."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.conformance.protocol import Capabilities
from veomock.conformance.runner import PythonAdapter, Runner
from veomock.conformance.scenarios import catalogue
from veomock.contracts import Contract, load
from veomock.mocks import MockState
from veomock.mocks.control import force_state

from examples.clients.base import Client, run
from tests.conftest import PROVIDERS
from tests.helpers import API_KEY, auth_headers, mp4_facts, request_path, sample_request

QUERY_KEY = [p for p in PROVIDERS if load(p).auth.query]
REDIRECTING = [p for p in PROVIDERS if load(p).media_redirect]
SLASHED = [p for p in PROVIDERS if "/" in load(p).raw["job_id"]["format"]]


def test_each_mechanism_is_used_by_a_contract() -> None:
    assert QUERY_KEY and REDIRECTING and SLASHED


def _submit(client: TestClient, contract: Contract, **kwargs: Any) -> Any:
    op, data = sample_request(contract)
    return client.request(op.method, op.path, json=data["body"], **kwargs)


def _succeeded(client: TestClient, state: MockState, contract: Contract) -> Any:
    assert _submit(client, contract, headers=auth_headers(contract)).status_code == contract.submit.status
    job = next(j for j in state.jobs.values() if j.provider == contract.provider)
    force_state(state, job, "running")
    state.clock.advance(1)
    force_state(state, job, "succeeded")
    state.clock.advance(1)
    return job


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_key_in_the_query_counts_only_where_the_contract_names_it(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = state.contracts[provider]
    name = contract.auth.query or "key"
    response = _submit(client, contract, params={name: API_KEY})
    if contract.auth.query is None:
        assert response.status_code == contract.errors["auth_missing"].status
        return
    assert response.status_code == contract.submit.status, response.text
    job = next(j for j in state.jobs.values() if j.provider == provider)
    assert job.key == API_KEY  # the same account as the header's
    path, query = request_path(next(o for o in contract.operations if o.kind == "status"), job.id)
    assert client.get(path, params={**query, name: API_KEY}).status_code == contract.status["queued"].status
    other = client.get(path, params={**query, name: "another"}, headers=auth_headers(contract))
    assert other.status_code == contract.status["queued"].status  # the header wins


@pytest.mark.parametrize("provider", REDIRECTING)
def test_a_download_needs_the_key_and_redirects_to_the_file(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = state.contracts[provider]
    job = _succeeded(client, state, contract)
    (url,) = state.view(job, "http://127.0.0.1:8000")["result_urls"]
    assert url.endswith("?" + contract.media_query) if contract.media_query else "?" not in url
    assert client.get(url).status_code == contract.errors["auth_missing"].status
    stranger = client.get(url, headers=auth_headers(contract, "sk-stranger"), follow_redirects=False)
    assert stranger.status_code == contract.media_expired.status  # another account's file is not there
    hop = client.get(url, headers=auth_headers(contract), follow_redirects=False)
    status, storage = contract.media_redirect or (0, "")
    assert hop.status_code == status
    assert hop.headers["location"] == "http://127.0.0.1:8000" + storage.replace("{job_id}", job.id)
    video = client.get(hop.headers["location"])  # storage needs no key
    assert video.status_code == 200 and video.headers["content-type"] == contract.media_type
    assert mp4_facts(video.content)["fps"] == 24
    state.clock.advance((contract.media_expires_after or 0) + 1)
    if contract.media_expires_after is not None:
        assert client.get(hop.headers["location"]).status_code == contract.media_expired.status
        assert client.get(url, headers=auth_headers(contract)).status_code == contract.media_expired.status


@pytest.mark.parametrize("provider", SLASHED)
def test_ids_holding_slashes_are_polled_and_forced_by_their_name(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = state.contracts[provider]
    submitted = _submit(client, contract, headers=auth_headers(contract)).json()
    job = next(j for j in state.jobs.values() if j.provider == provider)
    assert "/" in job.id and job.id in str(submitted)
    forced = client.post(f"/_veomock/jobs/{job.id}", json={"state": "succeeded"})
    assert forced.status_code == 200 and forced.json()["id"] == job.id
    path, query = request_path(next(o for o in contract.operations if o.kind == "status"), job.id)
    polled = client.get(path, params=query, headers=auth_headers(contract))
    assert polled.json() == contract.status["succeeded"].body.render(
        {"job": state.view(job, "http://127.0.0.1:8000"), "request": {"base_url": "http://127.0.0.1:8000"}}
    )


def _reference_class(provider: str) -> type[Client]:
    module = importlib.import_module(f"examples.clients.{provider}")
    return next(c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, Client) and c is not Client)


@pytest.mark.parametrize("provider", QUERY_KEY)
def test_a_client_sending_the_key_in_the_query_passes_the_auth_check(provider: str) -> None:
    name = load(provider).auth.query
    assert name is not None

    class KeyInQuery(_reference_class(provider)):  # type: ignore[misc]
        def headers(self) -> dict[str, str]:
            return {}

        def send(self, method: str, path: str, **kwargs: Any) -> Any:
            return super().send(method, path, params={name: self.api_key}, **kwargs)

        def download(self, url: str) -> int:
            response = self.http.get(url, params={name: self.api_key}, follow_redirects=True)
            response.raise_for_status()
            return len(response.content)

    def generate(job: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
        return run(KeyInQuery, job, env)

    contract, caps = load(provider), Capabilities()
    chosen = [s for s in catalogue(contract, caps) if s.kind == "success"]
    with Runner(provider, PythonAdapter(generate, "key-in-query"), caps) as runner:
        results = runner.run_all(chosen)
    assert results and not [f.render() for r in results for f in r.failures]
    assert {"request.auth", "result.download"} <= {name for r in results for name in r.applied}

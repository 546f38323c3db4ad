"""The generic engine against every contract: states, auth, unknown ids, bad input, media, expiry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from veomock.contracts import Contract
from veomock.mocks import MockState
from veomock.mocks.control import force_state
from veomock.mocks.responses import resolve_error

from tests.conftest import PROVIDERS
from tests.helpers import (
    auth_headers,
    media_headers,
    mp4_facts,
    names_states,
    operation,
    request_path,
    sample_request,
    shape_diff,
)


def _contract(state: MockState, provider: str) -> Contract:
    return state.contracts[provider]


def _submit(client: TestClient, contract: Contract, key: str | None = None) -> tuple[Any, Any]:
    op, data = sample_request(contract)
    headers = {
        **auth_headers(contract, *([key] if key else [])),
        **{k: v for k, v in data.get("headers", {}).items() if "webhook" not in k.lower()},
    }
    body = {k: v for k, v in data["body"].items() if k not in ("webhook", "callback_url", "request_type")}
    return op, client.request(op.method, op.path, json=body, headers=headers)


def _status(client: TestClient, state: MockState, contract: Contract, job_id: str, key: str | None = None) -> Any:
    job = state.job(contract.provider, job_id)
    op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
    path, query = request_path(op, job_id)
    return client.get(path, params=query, headers=auth_headers(contract, *([key] if key else [])))


def _only_job(state: MockState, provider: str) -> Any:
    jobs = [j for j in state.jobs.values() if j.provider == provider]
    assert len(jobs) == 1
    return jobs[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_job_walks_through_its_lifecycle_on_the_clock(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    _, submitted = _submit(client, contract)
    assert submitted.status_code == contract.submit.status, submitted.text
    job = _only_job(state, provider)
    seen = []
    for _ in range(400):
        body = _status(client, state, contract, job.id).json()
        now = job.state_at(state.now())
        view = {"job": state.view(job, "http://127.0.0.1:8000"), "request": {"base_url": "http://127.0.0.1:8000"}}
        assert body == contract.status[now].body.render(view)
        if names_states(contract):
            assert contract.states[now] in str(body)
        seen.append(now)
        if seen[-1] == "succeeded":
            break
        state.clock.advance(5)
    assert seen[0] == "queued"
    assert "running" in seen
    assert seen[-1] == "succeeded"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("target", ["queued", "running", "succeeded", "failed", "error"])
def test_every_state_renders_the_contract_shape(
    client: TestClient, state: MockState, provider: str, target: str
) -> None:
    contract = _contract(state, provider)
    _submit(client, contract)
    job = _only_job(state, provider)
    if target != "queued":
        force_state(state, job, "running")
        state.clock.advance(2)
    if target in ("succeeded", "failed", "error"):
        force_state(state, job, target)
    state.clock.advance(1)
    response = _status(client, state, contract, job.id)
    spec = contract.status[target]
    assert response.status_code == spec.status
    expected = spec.body.render({"job": state.view(job, "http://127.0.0.1:8000"), "request": {"base_url": "x"}})
    assert shape_diff(expected, response.json()) == []
    assert response.json() == expected
    if target in ("failed", "error"):
        assert str(job.outcome.code) in str(response.json()) or job.outcome.message in str(response.json())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_auth_gets_the_providers_401(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    op, data = sample_request(contract)
    response = client.request(op.method, op.path, json=data["body"])
    spec = contract.errors["auth_missing"]
    assert response.status_code == spec.status
    assert response.json() == spec.body.render({"message": spec.message}), "the contract's body, exactly"
    assert contract.auth.header in response.headers["X-Veomock-Hint"], "what to fix, outside the body"


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p])
def test_malformed_auth_gets_the_providers_401(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    op, data = sample_request(contract)
    value = "Token abc" if contract.auth.scheme == "bearer" else ""
    response = client.request(op.method, op.path, json=data["body"], headers={contract.auth.header: value})
    expected = resolve_error(contract, "auth_invalid" if contract.auth.scheme == "bearer" else "auth_missing")
    assert response.status_code == expected.status


def test_key_pattern_is_enforced(client: TestClient, state: MockState) -> None:
    patterned = [c for c in state.contracts.values() if c.auth.key_pattern]
    assert patterned, "at least one contract declares a key format"
    for contract in patterned:
        op, data = sample_request(contract)
        response = client.request(op.method, op.path, json=data["body"], headers=auth_headers(contract, "nope-123"))
        assert response.status_code == resolve_error(contract, "auth_invalid").status, contract.provider
        assert contract.auth.key_pattern in response.headers["X-Veomock-Hint"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_job_id_gets_the_providers_not_found(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    op = next(o for o in contract.operations if o.kind == "status")
    path, query = request_path(op, "does-not-exist")
    response = client.get(path, params=query, headers=auth_headers(contract))
    assert response.status_code == contract.errors["not_found"].status
    assert "does-not-exist" in str(response.json())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_jobs_are_private_to_their_api_key(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    _submit(client, contract, key="sk-owner")
    job = _only_job(state, provider)
    assert _status(client, state, contract, job.id, key="sk-owner").status_code == contract.status["queued"].status
    assert _status(client, state, contract, job.id, key="sk-other").status_code == contract.errors["not_found"].status


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("content", "ctype", "needle"),
    [
        (b"{not json", "application/json", "Malformed JSON"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b"prompt=hi", "application/x-www-form-urlencoded", "Content-Type must be application/json"),
        (b"\xff\xfe", "application/json", "Malformed JSON"),
        (b"[" * 100_000, "application/json", "nested too deeply"),
        (b'{"input":' * 100_000, "application/json", "nested too deeply"),
    ],
)
def test_bad_bodies_get_a_provider_shaped_400(
    client: TestClient, state: MockState, provider: str, content: bytes, ctype: str, needle: str
) -> None:
    contract = _contract(state, provider)
    op, _ = sample_request(contract)
    headers = {**auth_headers(contract), "content-type": ctype}
    response = client.request(op.method, op.path, content=content, headers=headers)
    spec = contract.errors["invalid_request"]
    assert response.status_code == spec.status
    assert any(needle in s for s in _strings(response.json()))


def _strings(value: Any) -> list[str]:
    from tests.helpers import strings

    return strings(value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_oversized_body_is_refused(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    op, _ = sample_request(contract)
    blob = b'{"prompt": "' + b"x" * (state.max_body_bytes + 10) + b'"}'
    response = client.request(
        op.method, op.path, content=blob, headers={**auth_headers(contract), "content-type": "application/json"}
    )
    assert response.status_code == contract.errors["invalid_request"].status
    assert any("limit" in s for s in _strings(response.json()))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_result_media_is_a_real_mp4_until_it_expires(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    _submit(client, contract)
    job = _only_job(state, provider)
    media_url = state.view(job, "")["result_urls"]
    assert media_url == []  # no result before success
    force_state(state, job, "succeeded")
    state.clock.advance(1)
    (url,) = state.view(job, "http://127.0.0.1:8000")["result_urls"]
    assert url in str(_status(client, state, contract, job.id).json()).replace("\\/", "/")
    if contract.media_auth:
        assert client.get(url).status_code == contract.errors["auth_missing"].status
    video = client.get(url, headers=media_headers(contract))
    assert video.status_code == 200
    assert video.headers["content-type"] == contract.media_type
    facts = mp4_facts(video.content)
    assert facts["fps"] == 24
    ratio = facts["width"] / facts["height"]
    expected = 16 / 9 if job.params["aspect_ratio"] != "9:16" else 9 / 16
    assert abs(ratio - expected) < 0.01
    assert abs(facts["duration"] - min(16, max(4, int(job.params["duration"])))) < 0.1
    if contract.media_expires_after is None:
        state.clock.advance(10 * 365 * 86400)
        assert client.get(url, headers=media_headers(contract)).status_code == 200
    else:
        state.clock.advance(contract.media_expires_after - 5)
        assert client.get(url, headers=media_headers(contract)).status_code == 200
        state.clock.advance(10)
        assert client.get(url, headers=media_headers(contract)).status_code == contract.media_expired.status


def test_portrait_request_gets_a_portrait_clip(client: TestClient, state: MockState) -> None:
    found = False
    for provider in PROVIDERS:
        for job in list(state.jobs.values()):
            del state.jobs[(job.provider, job.id)]
        contract = _contract(state, provider)
        from tests.helpers import fixtures

        for _, data in fixtures(provider, "requests"):
            op = operation(contract, data["operation"])
            if "9:16" not in str(data["body"]) or op.kind != "submit":
                continue
            headers = {
                **auth_headers(contract),
                **{k: v for k, v in data.get("headers", {}).items() if "webhook" not in k.lower()},
            }
            body = {k: v for k, v in data["body"].items() if k not in ("webhook", "callback_url", "request_type")}
            assert client.request(op.method, op.path, json=body, headers=headers).status_code < 300
            job = next(j for j in state.jobs.values() if j.provider == provider)
            force_state(state, job, "succeeded")
            state.clock.advance(1)
            (url,) = state.view(job, "http://127.0.0.1:8000")["result_urls"]
            facts = mp4_facts(client.get(url, headers=media_headers(contract)).content)
            assert facts["height"] > facts["width"]
            found = True
            break
    assert found


def test_unknown_media_is_answered_as_expired(client: TestClient, state: MockState) -> None:
    for contract in state.contracts.values():
        url = contract.media_url("nothing-here")
        assert client.get(url, headers=media_headers(contract)).status_code == contract.media_expired.status


def test_unknown_route_lists_the_routes_of_the_closest_provider(client: TestClient, state: MockState) -> None:
    for contract in state.contracts.values():
        first = contract.operations[0].path.split("{")[0].rstrip("/")
        response = client.get(first + "/nowhere", headers=auth_headers(contract))
        assert response.status_code in (400, 404), contract.provider
        assert contract.operations[0].path.split("{")[0] in response.text
    response = client.get("/totally/unknown")
    assert response.status_code == 404
    assert response.json()["routes"]


def test_wrong_method_says_which_method_to_use(client: TestClient, state: MockState) -> None:
    for contract in state.contracts.values():
        op = next(o for o in contract.operations if o.kind == "submit")
        response = client.get(op.path, headers=auth_headers(contract))
        assert "POST" in response.text, contract.provider


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "PATCH"])
def test_any_method_gets_a_provider_shaped_answer(client: TestClient, state: MockState, method: str) -> None:
    for contract in state.contracts.values():
        op = next(o for o in contract.operations if o.kind == "submit")
        response = client.request(method, op.path, headers=auth_headers(contract))
        assert response.headers["content-type"].startswith("application/json"), (contract.provider, response.text)
        assert "POST" in response.text, contract.provider
    response = client.request(method, "/totally/unknown")
    assert response.status_code == 404 and response.json()["routes"]


def test_same_seed_gives_same_ids_timings_and_outcomes() -> None:
    from veomock.mocks import Clock, create_state

    runs = []
    for _ in range(2):
        state = create_state(seed=42, clock=Clock(speed=0, start=1_767_965_610.0))
        with TestClient(__import__("mocks").build_app(state)) as c:
            for contract in state.contracts.values():
                for _ in range(3):
                    _submit(c, contract)
        runs.append(sorted((j.id, tuple(j.timeline), j.outcome) for j in state.jobs.values()))
    assert runs[0] == runs[1]
    other = create_state(seed=43, clock=Clock(speed=0, start=1_767_965_610.0))
    with TestClient(__import__("mocks").build_app(other)) as c:
        for contract in other.contracts.values():
            _submit(c, contract)
    assert {j.id for j in other.jobs.values()}.isdisjoint({i for i, _, _ in runs[0]})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_balance_is_charged_and_runs_out(client: TestClient, state: MockState, provider: str) -> None:
    contract = _contract(state, provider)
    _submit(client, contract)
    job = _only_job(state, provider)
    runtime = state.runtime(provider)
    key = job.key
    if contract.billing["charge_at"] == "completion":
        force_state(state, job, "succeeded")
        state.clock.advance(1)
    assert runtime.ledger.remaining(key, state.now()) == pytest.approx(contract.billing["initial_balance"] - job.price)
    runtime.ledger.set_balance(key, 0.0, state.now())
    if job.price > 0:
        _, refused = _submit(client, contract)
        assert (
            refused.status_code
            == contract.errors.get("insufficient_balance", contract.errors["invalid_request"]).status
        )


@pytest.mark.parametrize("provider", PROVIDERS)  # static routes (found by dict) and routes with parameters
def test_a_bug_in_the_mock_still_answers_in_the_providers_envelope(state: MockState, provider: str) -> None:
    from veomock.mocks import build_app

    contract = state.contracts[provider]
    op = next(o for o in contract.operations if o.kind == "status")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("planted")

    state.job = broken  # type: ignore[method-assign]
    path, query = request_path(op, "any-id")
    with TestClient(build_app(state), raise_server_exceptions=False) as c:
        response = c.get(path, params=query, headers=auth_headers(contract))
    assert response.status_code == contract.errors["internal"].status
    assert any("bug in the mock" in s for s in _strings(response.json()))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_repeated_polls_reuse_the_body_only_while_nothing_changed(
    client: TestClient, state: MockState, provider: str
) -> None:
    contract = _contract(state, provider)
    _submit(client, contract)
    job = _only_job(state, provider)
    force_state(state, job, "running")
    first, again = (_status(client, state, contract, job.id).json() for _ in range(2))
    assert first == again
    state.clock.advance(1)
    force_state(state, job, "succeeded")
    done = _status(client, state, contract, job.id).json()
    assert done != first
    assert contract.states["succeeded"] in str(done) or not names_states(contract)
    op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
    path, query = request_path(op, job.id)
    elsewhere = client.get(path, params=query, headers={**auth_headers(contract), "host": "mock.test:9"})
    assert "mock.test:9" in str(elsewhere.json())
    assert "mock.test:9" not in str(done)


@given(st.text(alphabet="ab=&%+;2F é", max_size=24))
def test_query_strings_parse_as_the_standard_library_parses_them(text: str) -> None:
    from urllib.parse import parse_qsl

    from veomock.mocks.app import parse_query

    raw = text.encode("utf-8")
    assert parse_query(raw) == dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


@given(
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=16)
    | st.sampled_from(["Bearer sk-1", " bearer\tk ", "BEARER  a\xa0", "Bearer", "Bearer a b"])
)
def test_bearer_tokens_are_read_as_the_bearer_pattern_reads_them(value: str) -> None:
    import re

    from veomock.mocks.app import bearer_token

    match = re.match(r"^\s*bearer\s+(\S+)\s*$", value, re.IGNORECASE)
    assert bearer_token(value) == (match.group(1) if match else None)

"""Bounded memory: the journal by bytes, long bodies as a head and a digest, prompts, jobs held."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import pytest
from starlette.testclient import TestClient
from veomock.mocks import Clock, MockState, build_app, create_state
from veomock.mocks.failures import example_body
from veomock.mocks.journal import BODY_LIMIT, EXCHANGE, Journal
from veomock.mocks.lifecycle import Outcome
from veomock.mocks.retention import PROMPT_KEEP, kept_params

from tests.conftest import PROVIDERS, START
from tests.helpers import auth_headers, sample_request


def _state(**options: object) -> MockState:
    state = create_state(seed=1, clock=Clock(speed=0, start=START))
    for name, value in options.items():
        setattr(state, name, value)
    state.reset()
    return state


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refused_megabyte_bodies_pin_no_more_than_the_journal_budget(provider: str) -> None:
    state = _state(journal_bytes=512 * 1024)
    contract = state.contracts[provider]
    op, _ = sample_request(contract)
    headers = {**auth_headers(contract), "content-type": "application/json"}
    blob = b'{"prompt": "' + b"x" * (state.max_body_bytes - 100) + b'", "extra": [}'  # malformed, near the limit
    with TestClient(build_app(state), base_url="http://127.0.0.1:8000") as client:
        client.request(op.method, op.path, content=blob, headers=headers)  # warm up
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(40):
                assert client.request(op.method, op.path, content=blob, headers=headers).status_code == 400
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert state.journal.bytes <= 512 * 1024 and len(state.journal) < 40
    assert held < 4 * 1024 * 1024, held  # 40 MiB when every body was kept whole
    entry = list(state.journal)[-1]
    body = entry["request"]["body"]
    assert body.startswith('{"prompt": "xxx') and len(body) < BODY_LIMIT + 200
    assert body.endswith(f"… [{len(blob)} bytes, sha256 {hashlib.sha256(blob).hexdigest()}]")


def test_the_journal_drops_its_oldest_entries_past_its_byte_budget() -> None:
    journal = Journal(maxlen=1000, max_bytes=20_000)
    for i in range(100):
        journal.append({"direction": "outbound", "key": "k" if i % 2 else "j", "body": {"n": i, "pad": "x" * 500}})
    assert journal.bytes <= 20_000 and 5 < len(journal) < 100
    assert [e["body"]["n"] for e in journal][-1] == 99
    journal.drop("k")
    assert all(e["key"] == "j" for e in journal) and journal.bytes <= 20_000
    assert journal.bytes == sum(journal._weights)


def test_a_short_body_is_kept_whole() -> None:
    state = _state()
    contract = state.contracts[PROVIDERS[0]]
    op, data = sample_request(contract)
    with TestClient(build_app(state), base_url="http://127.0.0.1:8000") as client:
        client.request(op.method, op.path, json=data["body"], headers=auth_headers(contract))
    [entry] = list(state.journal)
    assert EXCHANGE not in entry and json.loads(entry["request"]["body"]) == data["body"]


def test_a_long_prompt_keeps_its_head_and_its_magic_words() -> None:
    prompt = "a" * 10_000 + " then veomock:fail=Timeout and more " + "b" * 100
    kept = kept_params({"prompt": prompt, "duration": 8})
    assert kept["duration"] == 8
    assert kept["prompt"] == "a" * PROMPT_KEEP + "… veomock:fail=Timeout"
    short = {"prompt": "a kite"}
    assert kept_params(short) is short


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_accepted_long_prompt_is_not_kept_whole(provider: str) -> None:
    state = _state()
    contract = state.contracts[provider]
    prompt = "p" * 9000 + " veomock:webhook=duplicate"
    models = [(m, b) for m in contract.models.values() if (b := example_body(m, prompt)) is not None]
    assert models, f"{provider}: no model takes a 9000-character prompt"
    model, body = models[0]
    op = next(o for o in contract.operations if o.kind == "submit" and model.name in o.models)
    with TestClient(build_app(state), base_url="http://127.0.0.1:8000") as client:
        response = client.request(op.method, op.path, json=body, headers=auth_headers(contract))
    assert response.status_code == contract.submit.status, response.text
    [job] = state.jobs.values()
    assert len(job.params["prompt"]) < PROMPT_KEEP + 100 and job.params["prompt"].endswith("veomock:webhook=duplicate")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_max_jobs_evicts_the_oldest_ended_job_and_never_a_running_one(provider: str) -> None:
    state = _state(max_jobs=3)
    runtime = state.runtime(provider)
    model = next(iter(runtime.contract.models.values()))
    hung = state.create_job(provider, model, "k", {"prompt": "hang"}, Outcome("succeeded"), {"queued": (1e9, 1e9)})
    first = state.create_job(provider, model, "k", {"prompt": "1"})
    second = state.create_job(provider, model, "k", {"prompt": "2"})
    state.clock.advance(86_400)  # the last two have ended; the first never will
    third = state.create_job(provider, model, "k", {"prompt": "3"})
    assert [j.id for j in state.jobs.values()] == [hung.id, second.id, third.id]
    fourth = state.create_job(provider, model, "k", {"prompt": "4"})
    assert [j.id for j in state.jobs.values()] == [hung.id, third.id, fourth.id]
    assert first.id not in {j for _, j in state.jobs} and state.job_cap.evicted == 2
    fifth = state.create_job(provider, model, "k", {"prompt": "5"})  # nothing has ended: held above the cap
    assert len(state.jobs) == 4 and fifth in state.jobs.values()
    state.clock.advance(86_400)
    state.create_job(provider, model, "k", {"prompt": "6"})
    assert hung in state.jobs.values() and len(state.jobs) == 3

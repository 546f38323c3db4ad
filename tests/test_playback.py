"""Playback: a session recorded from one mock, replayed by a fresh one, gives the client the same answers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from veomock.contracts import Contract
from veomock.mocks import Clock, Control, MockState, build_app, create_state
from veomock.mocks.har import job_fields, value_at
from veomock.mocks.playback import playback
from veomock.mocks.scenarios import Action, RuleError, parse_action

from tests.conftest import PROVIDERS, START
from tests.helpers import ROOT, auth_headers, request_path, sample_request

OFFSETS = (0, 2, 10, 40)  # provider seconds after the submit at which the client polls
KEY = "sk-playback-client"
Answer = tuple[str, int, str]


def _session(client: Any, contract: Contract, advance: Callable[[float], None]) -> list[Answer]:
    """Submit until accepted (three tries), then poll at :data:`OFFSETS`: every answer, in order."""
    op, data = sample_request(contract)
    headers = auth_headers(contract, KEY)
    answers: list[Answer] = []
    for _ in range(3):
        submitted = client.post(op.path, json=data["body"], headers=headers)
        answers.append(("submit", submitted.status_code, submitted.text))
        if submitted.status_code < 300:
            break
    job_id = str(value_at(submitted.json(), job_fields(contract.submit.body.source)["id"]))
    model = op.models[0]
    status_op = next(o for o in contract.operations_of("status") if model in o.models)
    path, query = request_path(status_op, job_id)
    at = 0.0
    for offset in OFFSETS:
        advance(offset - at)
        at = offset
        polled = client.get(path, params=query, headers=headers)
        answers.append(("status", polled.status_code, polled.text))
    return answers


def _without_progress(answers: list[Answer]) -> list[tuple[str, int, Any]]:
    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k != "progress"}
        return [drop(v) for v in value] if isinstance(value, list) else value

    return [(kind, status, drop(json.loads(text))) for kind, status, text in answers]


def _mock() -> MockState:
    return create_state(seed=5, clock=Clock(speed=0, start=START))


def _production(contract: Contract) -> list[dict[str, Any]]:
    """What went wrong in "production": two refused submits, a failing job, an error on the second poll."""
    op, _ = sample_request(contract)
    status_op = next(o for o in contract.operations_of("status") if op.models[0] in o.models)
    failure = contract.failures[-1]
    return [
        {"provider": contract.provider, "operation": op.name, "times": 2, "action": {"error": "rate_limited"}},
        {
            "provider": contract.provider,
            "operation": op.name,
            "times": 1,
            "action": {"timing": {"queued": 4, "running": 30}, "fail": str(failure.code)},
        },
        {"provider": contract.provider, "operation": status_op.name, "times": 1, "action": {"pass": True}},
        {"provider": contract.provider, "operation": status_op.name, "times": 1, "action": {"error": "internal"}},
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_recorded_failure_replays_answer_for_answer(provider: str) -> None:
    recorded = _mock()
    contract = recorded.contracts[provider]
    Control(recorded).add_scenarios(_production(contract))
    with TestClient(build_app(recorded), base_url="http://127.0.0.1:8000") as client:
        seen = _session(client, contract, recorded.clock.advance)
        har = client.get("/_veomock/journal.har").json()
    assert [status for _, status, _ in seen[:3]] == [429, 429, seen[2][1]] and seen[2][1] < 300
    assert seen[4][1] == 500

    replayed = _mock()
    with TestClient(build_app(replayed), base_url="http://127.0.0.1:8000") as client:
        armed = client.post("/_veomock/playback", content=json.dumps(har))
        assert armed.status_code == 201, armed.text
        again = _session(client, contract, replayed.clock.advance)
    # The same statuses and bodies: ids, states, timings, failure code, errors. Only a progress figure
    # may differ: it depends on when the job started running, which a session only bounds by two polls.
    assert _without_progress(again) == _without_progress(seen)
    (job,) = replayed.jobs.values()
    assert str(job.outcome.code) == str(contract.failures[-1].code)


@pytest.mark.parametrize(
    ("provider", "code"), [(p, str(f.code)) for p in PROVIDERS for f in create_state([p]).contracts[p].failures]
)
def test_every_failure_code_replays_answer_for_answer(provider: str, code: str) -> None:
    recorded = _mock()
    contract = recorded.contracts[provider]
    op, _ = sample_request(contract)
    failing = {"timing": {"queued": 4, "running": 30}, "fail": code}
    Control(recorded).add_scenarios({"provider": provider, "operation": op.name, "action": failing})
    with TestClient(build_app(recorded), base_url="http://127.0.0.1:8000") as client:
        seen = _session(client, contract, recorded.clock.advance)
        har = client.get("/_veomock/journal.har").json()
    replayed = _mock()
    with TestClient(build_app(replayed), base_url="http://127.0.0.1:8000") as client:
        assert client.post("/_veomock/playback", content=json.dumps(har)).status_code == 201
        again = _session(client, contract, replayed.clock.advance)
    assert _without_progress(again) == _without_progress(seen)
    (job,) = replayed.jobs.values()
    # A code the answers show is the one replayed; one they never show (a contract may name
    # failures no body carries, as Pixazo's) replays as the code the body does show.
    if code in seen[-1][2]:
        assert str(job.outcome.code) == code
    else:
        assert job.outcome.state == contract.failure(code).state


def test_the_scenario_says_what_it_replays() -> None:
    recorded = _mock()
    contract = recorded.contracts[PROVIDERS[0]]
    Control(recorded).add_scenarios(_production(contract))
    with TestClient(build_app(recorded), base_url="http://127.0.0.1:8000") as client:
        _session(client, contract, recorded.clock.advance)
    replay = playback(recorded.contracts, Control(recorded).har())
    assert replay.provider == contract.provider
    ((job),) = replay.jobs
    assert [s["state"] for s in job.to_json()["seen"]] == ["queued", "running", contract.failures[-1].state]
    # first seen at the polls: queued at the submit, running at +10 (the +2 poll failed), ended at +40
    assert [s["at"] for s in job.to_json()["seen"]] == [0, 10, 40]
    op, _ = sample_request(contract)
    status_op = next(o for o in contract.operations_of("status") if op.models[0] in o.models)
    rules = [(r["operation"], r["times"], r["action"]) for r in replay.rules]
    refused = contract.errors[rules[0][2]["error"]]
    assert refused.status == 429 and rules[0][:2] == (op.name, 2)
    # the job's times as the provider's bodies show them where they do, else as the client saw them
    timing = rules[1][2]["timing"]
    assert rules[1][:2] == (op.name, 1) and rules[1][2]["fail"] == str(contract.failures[-1].code)
    assert timing["queued"] in (4, 10) and timing["queued"] + timing["running"] in (34, 40)
    assert rules[2:] == [(status_op.name, 1, {"pass": True}), (status_op.name, 1, rules[3][2])]
    assert contract.errors[rules[3][2]["error"]].status == 500


def test_a_hand_exported_har_of_the_real_api_is_understood() -> None:
    """A HAR of the provider's real host (as a browser or proxy exports it), no veomock fields."""
    contract = _mock().contracts[PROVIDERS[-1]]
    op, _ = sample_request(contract)
    status_op = next(o for o in contract.operations_of("status") if op.models[0] in o.models)
    mock = _mock()
    with TestClient(build_app(mock), base_url="http://127.0.0.1:8000") as client:
        _session(client, contract, mock.clock.advance)
    entries = Control(mock).har()["log"]["entries"]
    for entry in entries:
        entry.pop("_veomock")
        entry["request"]["url"] = entry["request"]["url"].replace("http://127.0.0.1:8000", contract.upstream)
    replay = playback(mock.contracts, {"log": {"version": "1.2", "entries": entries}})
    assert replay.provider == contract.provider
    (job,) = mock.jobs.values()
    last = [s["state"] for s in replay.jobs[0].to_json()["seen"]][-1]
    assert contract.states[last] == contract.states[job.state_at(mock.now())]  # the name the client saw
    assert replay.rules[0]["operation"] == op.name and status_op.name not in [r["operation"] for r in replay.rules]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"log": {}}', "log.entries"),
        (b'{"log": {"entries": [{"request": {"method": "GET", "url": "http://x/none"}, '
         b'"startedDateTime": "2026-01-09T13:33:30.000Z"}]}}', "no request of the session"),
        (b'{"log": {"entries": [{"request": {}, "startedDateTime": "yesterday"}]}}', "ISO 8601"),
    ],
)
def test_a_file_that_is_not_a_session_is_refused_with_what_to_fix(
    client: TestClient, body: bytes, message: str
) -> None:
    answer = client.post("/_veomock/playback", content=body)
    assert answer.status_code == 400 and message in answer.json()["error"]
    assert client.get("/_veomock/scenarios").json()["rules"] == []


def test_pass_is_the_normal_answer_and_stands_alone(state: MockState) -> None:
    assert parse_action({"pass": True}, state.contracts.values()) == Action()
    assert Action().to_json() == {"pass": True}
    with pytest.raises(RuleError, match="alone"):
        parse_action({"pass": True, "error": "internal"}, state.contracts.values())


def test_serve_from_a_session_replays_it(tmp_path: Path) -> None:
    recorded = _mock()
    contract = recorded.contracts[PROVIDERS[0]]
    Control(recorded).add_scenarios(_production(contract))
    with TestClient(build_app(recorded), base_url="http://127.0.0.1:8000") as client:
        seen = _session(client, contract, recorded.clock.advance)
    session = tmp_path / "session.har"
    session.write_text(json.dumps(Control(recorded).har()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "veomock.conformance.command", "serve", "--port", str(port), "--speed", "0"]
    command += ["--seed", "5", "--from", str(session), "--log-level", "info"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = ""
        while "playback" not in banner:
            line = proc.stdout.readline()
            assert line, f"serve ended: {proc.stderr.read()}"
            banner += line
        assert str(session) in banner and "4 rules" in banner
        for line in proc.stderr:  # uvicorn says when it listens
            if "Uvicorn running on" in line:
                break
        op, data = sample_request(contract)
        answer = httpx.post(f"http://127.0.0.1:{port}{op.path}", json=data["body"], headers=auth_headers(contract, KEY))
        assert (answer.status_code, answer.text) == seen[0][1:]
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

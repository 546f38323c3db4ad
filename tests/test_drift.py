"""``veomock drift``: a session recorded through the proxy, compared with the contract.

Two upstreams on loopback: veomock itself, which must show no drift, and a stand-in that serves a
deliberately altered copy of a contract, whose every alteration must be reported with the
contract path to change, and nothing else.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from veomock.conformance.drift import drift, id_pattern, kinds
from veomock.conformance.record import proxy_app
from veomock.contracts import Contract, load
from veomock.contracts.loader import CONTRACTS_DIR
from veomock.mocks import Clock, Control, MockState, create_state
from veomock.mocks.control import force_state
from veomock.mocks.har import job_fields, value_at
from veomock.mocks.serving import ServerThread

from tests.conftest import PROVIDERS, START
from tests.helpers import ROOT, auth_headers, fixtures, request_path, sample_request
from tests.live import LiveServer

KEY = "sk-drift-session-key"


@pytest.fixture(scope="module")
def _proxy_socket() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


def _poll(client: httpx.Client, contract: Contract, job_id: str, model: str) -> httpx.Response:
    op = next(o for o in contract.operations_of("status") if model in o.models)
    path, query = request_path(op, job_id)
    return client.get(path, params=query)


def _submit(client: httpx.Client, contract: Contract) -> str:
    op, data = sample_request(contract)
    return str(value_at(client.post(op.path, json=data["body"]).json(), job_fields(contract.submit.body.source)["id"]))


def _session(
    client: httpx.Client,
    contract: Contract,
    state: MockState,
    offsets: tuple[float, ...] = (0, 5, 100, 3600),
    served: Contract | None = None,
) -> None:
    """What a client does: a job polled at ``offsets``, a job that fails, a refused body, no key,
    the balance (at the route the upstream serves, from ``served``)."""
    op, data = sample_request(contract)
    model = op.models[0]
    job = _submit(client, contract)
    at = 0.0
    for offset in offsets:
        state.clock.advance(offset - at)
        at = offset
        _poll(client, contract, job, model)
    failing = _submit(client, contract)
    force_state(state, state.find_job(failing), "failed")
    _poll(client, contract, failing, model)
    invalid = next(body for _, body in fixtures(contract.provider, "invalid") if body["operation"] == op.name)
    assert client.post(op.path, json=invalid["body"]).status_code == 400
    refused = client.post(op.path, json=data["body"], headers={contract.auth.header: ""})
    assert refused.status_code == contract.errors["auth_missing"].status
    balance = (served or contract).operations_of("balance")
    if balance:
        client.get(balance[0].path)


def _record(
    proxy: ServerThread,
    upstream: LiveServer,
    contract: Contract,
    out: Path,
    then: Callable[[httpx.Client], None] | None = None,
    **session: Any,
) -> dict[str, Any]:
    proxy.use(proxy_app(contract, upstream.url, out, now=upstream.state.now))
    with httpx.Client(base_url=proxy.base_url, headers=auth_headers(contract, KEY), timeout=10) as client:
        _session(client, contract, upstream.state, **session)
        if then is not None:
            then(client)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_veomock_itself_shows_no_drift(
    provider: str, live_server: LiveServer, state: MockState, _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    contract = state.contracts[provider]
    recorded = _record(_proxy_socket, live_server, contract, tmp_path / "session.har")
    assert len(recorded["log"]["entries"]) >= 8
    assert drift(contract, recorded) == []
    assert drift(contract, Control(state).har()) == []  # the journal's own HAR of the same session


# -- the stand-in: a contract altered in known ways --------------------------------------------

STANDIN = "apixo"


def _altered(tmp_path: Path) -> Contract:
    raw = yaml.safe_load((CONTRACTS_DIR / f"{STANDIN}.yaml").read_text())
    raw = copy.deepcopy(raw)
    raw["job_id"]["format"] = "job-{hex:12}"  # 1. ids of another shape
    raw["responses"]["submit"]["status"] = 201  # 2. another success status
    raw["lifecycle"]["states"]["succeeded"] = "done"  # 3. a state name the contract lacks
    raw["lifecycle"]["timing"]["running"] = [600, 600]  # 4. running far longer than documented (so the
    # whole job too: lifecycle.timing)
    failed = raw["responses"]["status"]["failed"]
    failed["body"]["data"].pop("costTime")  # 5. a field missing ...
    failed["body"]["data"]["progress"] = 100  # 6. ... and one added, in the failed body
    raw["errors"]["invalid_request"]["body"] = {"error": {"message": "{{ message }}"}}  # 7. another envelope
    for op in raw["operations"]:
        if op["kind"] == "balance":
            op["path"] = "/api/v1/balance"  # 8. a route the contract does not have
    folder = tmp_path / "standin"
    folder.mkdir()
    (folder / f"{STANDIN}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return load(STANDIN, directory=folder)


EXPECTED = {
    ("id", "job_id.format"),
    ("status", "responses.submit.status"),
    ("state", "lifecycle.states"),
    ("timing", "lifecycle.timing.running"),
    ("timing", "lifecycle.timing"),
    ("shape", "responses.status.failed.body.data.costTime"),
    ("shape", "responses.status.failed.body.data.progress"),
    ("envelope", "errors.invalid_request.body.code"),
    ("envelope", "errors.invalid_request.body.message"),
    ("envelope", "errors.invalid_request.body.data"),
    ("envelope", "errors.invalid_request.body.error"),
    ("route", "operations"),
    ("order", "lifecycle.states"),  # 9. the stand-in sends a running job back to the queue
}


@pytest.fixture
def standin(_live_socket: ServerThread, tmp_path: Path) -> tuple[Contract, LiveServer]:
    """The altered contract, and a mock of it on loopback: the stand-in upstream."""
    altered = _altered(tmp_path)
    mock = MockState(contracts={STANDIN: altered}, clock=Clock(speed=0, start=START), seed=3)
    return altered, LiveServer(_live_socket.base_url, mock, _live_socket).serve(mock)


def test_every_difference_of_the_stand_in_is_reported(
    standin: tuple[Contract, LiveServer], _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    altered, upstream = standin
    contract = load(STANDIN)
    model = sample_request(contract)[0].models[0]

    def back_to_the_queue(client: httpx.Client) -> None:
        job = upstream.state.find_job(_submit(client, contract))
        force_state(upstream.state, job, "running")
        _poll(client, contract, job.id, model)
        force_state(upstream.state, job, "queued")
        _poll(client, contract, job.id, model)

    offsets = (0, 5, 200, 400, 3600)
    out = tmp_path / "s.har"
    recorded = _record(_proxy_socket, upstream, contract, out, back_to_the_queue, offsets=offsets, served=altered)
    differences = drift(contract, recorded)
    assert kinds(differences) == EXPECTED, "\n\n".join(d.render(contract) for d in differences)


def test_the_drift_command_prints_each_difference_and_exits_1(
    standin: tuple[Contract, LiveServer], _live_socket: ServerThread, _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    altered, upstream = standin
    session = tmp_path / "session.har"
    _record(_proxy_socket, upstream, load(STANDIN), session, served=altered)
    command = [sys.executable, "-m", "veomock.conformance.command", "drift", "--provider", STANDIN, str(session)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"change:   contracts/{STANDIN}.yaml: job_id.format" in done.stdout
    assert "observed: status 201" in done.stdout
    clean = create_state([STANDIN], seed=3, clock=Clock(speed=0, start=START))
    mirror = LiveServer(_live_socket.base_url, clean, _live_socket).serve(clean)
    _record(_proxy_socket, mirror, clean.contracts[STANDIN], session)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("no drift"), done.stdout


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ids_the_mock_makes_match_the_format(provider: str) -> None:
    state = create_state([provider], seed=9, clock=Clock(speed=0, start=START))
    contract = state.contracts[provider]
    pattern = id_pattern(contract)
    for model in contract.models.values():
        job = state.create_job(provider, model, "sk-x", {"prompt": "p"})
        assert pattern.match(job.id), (job.id, pattern.pattern)
    assert not pattern.match("not-an-id-at-all")

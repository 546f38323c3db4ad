"""``veomock record``: a real proxy on loopback in front of a stand-in upstream (a mock on loopback)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from veomock.conformance.record import proxy_app
from veomock.mocks import MockState
from veomock.mocks.har import find_route, read_har, redact_headers, redact_json
from veomock.mocks.serving import ServerThread

from tests.conftest import PROVIDERS, START
from tests.helpers import ROOT, auth_headers, request_path, sample_request
from tests.live import LiveServer

SECRET = "sk-record-secret-7f3a9c"


@pytest.fixture(scope="module")
def _proxy_socket() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_session_through_the_proxy_is_recorded_redacted(
    provider: str, live_server: LiveServer, state: MockState, _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    contract = state.contracts[provider]
    out = tmp_path / "session.har"
    _proxy_socket.use(proxy_app(contract, live_server.url, out, now=state.now))
    proxy = _proxy_socket.base_url
    op, data = sample_request(contract)
    headers = auth_headers(contract, SECRET)
    with httpx.Client(base_url=proxy, headers=headers, timeout=10) as client:
        submitted = client.post(op.path, json=data["body"])
        assert submitted.status_code < 300, submitted.text
        assert live_server.url not in submitted.text  # URLs in answers lead back through the proxy
        (job,) = state.jobs.values()
        status_op = next(o for o in contract.operations_of("status") if job.model in o.models)
        path, query = request_path(status_op, job.id)
        first = client.get(path, params=query)
        state.clock.advance(3600)
        last = client.get(path, params=query)

    text = out.read_text()
    assert SECRET not in text
    har = json.loads(text)
    assert "credentials redacted" in har["log"]["comment"] and har["log"]["version"] == "1.2"
    entries = har["log"]["entries"]
    assert [e["response"]["status"] for e in entries] == [submitted.status_code, first.status_code, last.status_code]
    assert [e["_veomock"]["operation"] for e in entries] == [op.name, status_op.name, status_op.name]
    sent = {h["name"].lower(): h["value"] for h in entries[0]["request"]["headers"]}
    assert "REDACTED" in sent[contract.auth.header.lower()]
    assert json.loads(entries[0]["request"]["postData"]["text"]) == redact_json(data["body"])
    recorded = entries[2]["response"]["content"]["text"]  # as the upstream sent it; the client saw the proxy's URLs
    assert json.loads(recorded.replace(live_server.url, proxy)) == last.json()
    exchanges = read_har(har)
    assert [x.time for x in exchanges] == [START, START, START + 3600]  # the injected clock: the upstream's
    assert find_route(contract, exchanges[1].method, exchanges[1].path) is not None


def test_an_upstream_that_does_not_answer_is_a_502_and_recorded(
    state: MockState, _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    contract = state.contracts[PROVIDERS[0]]
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    out = tmp_path / "down.har"
    _proxy_socket.use(proxy_app(contract, dead, out))
    answer = httpx.get(_proxy_socket.base_url + "/anything", timeout=10)
    assert answer.status_code == 502 and dead in answer.json()["error"]
    (entry,) = json.loads(out.read_text())["log"]["entries"]
    assert entry["response"]["status"] == 0 and "ConnectError" in entry["_veomock"]["error"]


def test_query_parameters_holding_keys_are_redacted(
    state: MockState, _proxy_socket: ServerThread, tmp_path: Path
) -> None:
    contract = state.contracts[PROVIDERS[0]]
    out = tmp_path / "query.har"
    _proxy_socket.use(proxy_app(contract, "http://127.0.0.1:9", out))
    httpx.get(_proxy_socket.base_url + "/x", params={"api_key": SECRET, "taskId": "t1"}, timeout=10)
    text = out.read_text()
    assert SECRET not in text
    (entry,) = json.loads(text)["log"]["entries"]
    assert {q["name"]: q["value"] for q in entry["request"]["queryString"]} == {"api_key": "REDACTED", "taskId": "t1"}


def test_redaction_covers_keys_tokens_and_secrets_by_name() -> None:
    body = {"prompt": "a cat", "api_key": "k1", "nested": [{"access_token": "t1", "taskId": "task_1"}], "secret": 7}
    assert redact_json(body) == {
        "prompt": "a cat",
        "api_key": "REDACTED",
        "nested": [{"access_token": "REDACTED", "taskId": "task_1"}],
        "secret": "REDACTED",
    }
    headers = [("Authorization", "Bearer sk-1"), ("X-Api-Key", "k"), ("X-Auth", "raw"), ("Accept", "*/*")]
    assert redact_headers(headers, also=["X-Auth"]) == [
        ("Authorization", "Bearer REDACTED"),
        ("X-Api-Key", "REDACTED"),
        ("X-Auth", "REDACTED"),
        ("Accept", "*/*"),
    ]


def test_the_record_command_proxies_and_writes_the_file(live_server: LiveServer, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    contract = live_server.state.contracts[PROVIDERS[0]]
    out = tmp_path / "cli.har"
    command = [sys.executable, "-m", "veomock.conformance.command", "record", "--provider", contract.provider]
    command += ["--upstream", live_server.url, "--port", str(port), "--out", str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # printed once the socket listens
        assert f"http://127.0.0.1:{port}" in banner and live_server.url in banner
        answer = httpx.get(f"http://127.0.0.1:{port}/no/such/route", timeout=10)
        assert answer.status_code == 404
        assert json.loads(out.read_text())["log"]["entries"][0]["response"]["status"] == 404
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()

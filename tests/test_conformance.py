"""The conformance suite graded: reference clients pass, every broken client is caught.

Runs in-process (PythonAdapter) for speed, plus a few scenarios through the subprocess adapter,
the CLI, the replay files, the reports and the pytest plugin. Time is the mock's virtual clock:
nothing here sleeps.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from veomock import conformance
from veomock.conformance.checks import AREAS, CHECKS
from veomock.conformance.cli import explore
from veomock.conformance.command import main as veomock
from veomock.conformance.facts import extract, result_paths
from veomock.conformance.protocol import Capabilities, Outcome, ProtocolError
from veomock.conformance.runner import CommandAdapter, PythonAdapter, Runner, read_replay
from veomock.conformance.scenarios import Scenario, catalogue, scenarios
from veomock.conformance.server import Harness
from veomock.contracts import available, load

from examples.broken import CATALOGUE, Broken
from examples.clients.base import Receiver, _SystemTrust

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = sorted(available())
REFERENCE = {p: f"examples.clients.{p}" for p in PROVIDERS}


def _reference(provider: str) -> PythonAdapter:
    module = importlib.import_module(REFERENCE[provider])
    return PythonAdapter(module.generate, f"{REFERENCE[provider]}:generate")


def _capabilities(provider: str) -> Capabilities:
    module = importlib.import_module(REFERENCE[provider])
    return Capabilities.from_json(getattr(module, "CAPABILITIES", {}))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reference_client_passes_every_applicable_check(provider: str) -> None:
    contract, caps = load(provider), _capabilities(provider)
    with Runner(provider, _reference(provider), caps) as runner:
        results = runner.run_all(catalogue(contract, caps))
    failures = [f.render() for r in results for f in r.failures]
    assert not failures, "\n\n".join(failures)
    applied = {name for r in results for name in r.applied}
    wanted = {n for n in CHECKS if caps.webhooks or not n.startswith("webhook.")}
    assert applied >= wanted, sorted(wanted - applied)


def test_every_check_is_exercised_by_a_reference_client() -> None:
    assert any(_capabilities(p).webhooks for p in PROVIDERS)


def test_reference_receiver_keeps_a_callback_before_answering_it() -> None:
    # The sender's 200 is the moment the mock counts a callback delivered; the client must see it by then.
    class Checking(Receiver):
        def answer(self) -> int:
            return 200 if self.received() else 500

    receiver = Checking("127.0.0.1:0")
    try:
        host, port = receiver.server.server_address[:2]
        response = httpx.post(f"http://{host}:{port}/hook", json={"id": "t1", "status": "completed"})
    finally:
        receiver.close()
    assert response.status_code == 200
    assert receiver.received() == [{"id": "t1", "status": "completed"}]


def test_reference_client_trusts_as_the_default_context_once_it_connects_over_tls() -> None:
    # The system's CAs load at the first TLS connection (a run over http never needs them); until
    # then, and after, the context verifies exactly as ssl.create_default_context() does.
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import trustme

    trust, default = _SystemTrust(ssl.PROTOCOL_TLS_CLIENT), ssl.create_default_context()
    assert (trust.verify_mode, trust.check_hostname, trust.options) == (
        default.verify_mode,
        default.check_hostname,
        default.options,
    )
    assert trust.cert_store_stats()["x509_ca"] == 0

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    authority = trustme.CA()
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(served)
    server = HTTPServer(("127.0.0.1", 0), Ok)
    server.socket = served.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    try:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(url, verify=trust)
        assert trust.cert_store_stats() == default.cert_store_stats()
        authority.configure_trust(trust)
        assert httpx.get(url, verify=trust).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def test_in_process_failures_name_the_scenario_to_rerun() -> None:
    broken = next(b for b in CATALOGUE if b.name == "pixazo-error-as-failed")
    contract, caps = load(broken.provider), Capabilities(webhooks=broken.webhooks)
    chosen = [s for s in catalogue(contract, caps) if s.kind == "job-failure"]
    with Runner(broken.provider, PythonAdapter(broken.generate, broken.name), caps, seed=7) as runner:
        failed = next(r for r in runner.run_all(chosen) if r.failures)
    command = failed.failures[0].reproduce
    assert f"--scenario {failed.scenario.id} " in command and "--seed 7" in command, command


@pytest.mark.parametrize("broken", CATALOGUE, ids=[b.name for b in CATALOGUE])
def test_broken_client_is_caught_by_its_check(broken: Broken) -> None:
    contract = load(broken.provider)
    caps = Capabilities(webhooks=broken.webhooks)
    chosen = [s for s in catalogue(contract, caps) if not broken.kinds or s.kind in broken.kinds]
    with Runner(broken.provider, PythonAdapter(broken.generate, broken.name), caps) as runner:
        results = runner.run_all(chosen)
    caught = {f.check for r in results for f in r.failures}
    assert broken.catches in caught, f"{broken.name} ({broken.defect}) was not caught; failed checks: {caught}"


def test_https_only_callbacks_reach_a_receiver_with_the_suites_certificate() -> None:
    contract, caps = load("apixo"), _capabilities("apixo")
    assert caps.webhooks and any(channel.https_only for channel in contract.webhook_channels)
    scenario = next(s for s in catalogue(contract, caps) if s.kind == "webhook" and not s.webhook)
    with Runner("apixo", _reference("apixo"), caps) as runner:
        result = runner.run(scenario)
    assert result.passed, [f.render() for f in result.failures]
    assert str(result.run.job.webhook_url).startswith("https://127.0.0.1:")
    deliveries = result.run.webhooks()
    assert deliveries and all(e["outcome"] == "delivered" and e["url"].startswith("https://") for e in deliveries)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_invalid_fixture_is_a_scenario_refused_by_the_rule_it_names(provider: str) -> None:
    from veomock.mocks.validation import validator_for

    contract = load(provider)
    chosen = {s.id: s for s in catalogue(contract) if s.kind == "invalid-request" and not s.variants}
    files = sorted((ROOT / "fixtures" / provider / "invalid").glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text())
        found = [s for i, s in chosen.items() if i.endswith(f"/invalid-request-{path.stem}")]
        assert len(found) == 1, path.name
        scenario = found[0]
        assert scenario.request == data["body"] and scenario.expect["categories"] == ["invalid_request"]
        refused = validator_for(contract.models[scenario.model]).check(scenario.request)
        assert refused is not None and (refused.rule or "schema") == data["violates"], path.name


def test_the_catalogue_spreads_over_providers_and_checks() -> None:
    assert len(CATALOGUE) >= 20
    assert {b.provider for b in CATALOGUE} == set(PROVIDERS)
    assert all(b.catches in CHECKS for b in CATALOGUE)
    families = Counter(b.catches.split(".")[0] for b in CATALOGUE)
    assert set(families) >= {"request", "polling", "result", "failure", "retry", "outcome", "webhook"}
    assert len({b.name for b in CATALOGUE}) == len(CATALOGUE)


def test_the_published_sdk_is_graded_as_its_record_says() -> None:
    from examples import seaart_adapter

    caps = Capabilities.from_json(seaart_adapter.CAPABILITIES)
    with Runner("vtrix", PythonAdapter(seaart_adapter.generate), caps) as runner:
        results = runner.run_all(catalogue(load("vtrix"), caps))
    graded = {r.scenario.id: {f.check for f in r.failures} for r in results}
    assert graded == {sid: seaart_adapter.recorded(sid) for sid in graded}
    names = {sid.rsplit("/", 1)[-1] for sid in graded} | {sid.rsplit("/", 1)[-1].split("[")[0] for sid in graded}
    assert set(seaart_adapter.RECORD) <= names  # no entry for a scenario that is gone
    assert sum(r.passed for r in results) >= 60  # success, refusals, resets and hangs, time-out, variants


def test_the_published_sdk_runs_as_a_subprocess() -> None:
    scenario = next(s for s in catalogue(load("vtrix")) if s.kind == "success")
    adapter = CommandAdapter([sys.executable, "-m", "examples.seaart_adapter"], cwd=str(ROOT))
    with Runner("vtrix", adapter, Capabilities(downloads=False)) as runner:
        result = runner.run(scenario)
    assert result.passed, [f.render() for f in result.failures]
    assert result.run.exchanges[0].headers["user-agent"].startswith("sa-python/")


def test_the_published_sdk_is_graded_in_real_time_without_a_clock() -> None:
    from examples import seaart_adapter

    chosen = [s for s in catalogue(load("vtrix")) if s.kind in ("success", "job-failure") and not s.variants]
    chosen = [s for s in chosen if "documented" not in s.id][:2]  # success, and one failure
    caps = Capabilities.from_json(seaart_adapter.CAPABILITIES)
    with Runner("vtrix", PythonAdapter(seaart_adapter.generate), caps, speed=50) as runner:
        results = runner.run_all(chosen)
    failed = {r.scenario.id: {f.check for f in r.failures} for r in results}
    assert failed == {s.id: seaart_adapter.recorded(s.id) for s in chosen}
    # It polled more than once, and none of its waits went through the mock's clock.
    assert seaart_adapter._TIME.waiting.elapsed == 0.0
    assert all(len(r.run.polls(r.run.jobs[0])) > 1 for r in results)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reference_client_passes_as_a_subprocess(provider: str) -> None:
    contract = load(provider)
    wanted = ("success", "job-failure", "transient")
    chosen = [s for s in catalogue(contract) if s.kind in wanted and not s.variants][:3]
    adapter = CommandAdapter([sys.executable, "-m", REFERENCE[provider]], cwd=str(ROOT))
    with Runner(provider, adapter) as runner:
        results = runner.run_all(chosen)
    failures = [f.render() for r in results for f in r.failures]
    assert not failures, "\n\n".join(failures)


def test_a_broken_subprocess_client_is_caught_and_replayed(tmp_path: Path) -> None:
    broken = next(b for b in CATALOGUE if b.name == "pixazo-polls-fast")
    contract = load(broken.provider)
    scenario = next(s for s in catalogue(contract) if s.kind == "success")
    adapter = CommandAdapter([sys.executable, "-m", "examples.broken", broken.name], cwd=str(ROOT))
    with Runner(broken.provider, adapter, replay_dir=tmp_path) as runner:
        result = runner.run(scenario)
    assert {f.check for f in result.failures} == {"polling.interval"}
    failure = result.failures[0]
    assert failure.contract == "contracts/pixazo.yaml: lifecycle.poll_interval.min"
    assert result.replay is not None and str(result.replay) in failure.reproduce
    assert failure.reproduce.startswith("veomock check --provider pixazo --replay ")
    replayed, data = read_replay(result.replay)
    assert replayed == scenario
    assert data["journal"] and data["seed"] == 0 and data["failures"][0]["check"] == "polling.interval"


def test_cli_check_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    status = veomock(
        [
            "check",
            "--provider",
            "pixazo",
            "--kind",
            "job-failure",
            "--python",
            "examples.clients.pixazo:generate",
            "--replay-dir",
            str(tmp_path),
            "-q",
            "--junit",
            str(junit),
            "--json",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.search(r"^\d+ passed, 0 failed$", out, re.MULTILINE)
    data = json.loads(report.read_text())
    assert data["failed"] == 0 and data["passed"] == len(data["scenarios"]) > 0
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests", "0")) > 0


def test_cli_check_fails_a_broken_client_and_replays_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "check",
        "--provider",
        "pixazo",
        "--kind",
        "job-failure",
        "--replay-dir",
        str(tmp_path),
        "-q",
        "--",
        sys.executable,
        "-m",
        "examples.broken",
        "pixazo-error-as-failed",
    ]
    assert veomock(args) == 1
    out = capsys.readouterr().out
    assert "failure.kind failed in pixazo/veo-3-1-fast/error-ERROR" in out
    command = re.search(r"Reproduce with: veomock (.*)$", out, re.MULTILINE)
    assert command is not None
    replay = next(tmp_path.glob("*.json"))
    assert veomock(["check", "--provider", "pixazo", "--replay", str(replay), "--replay-dir", str(tmp_path), "-q"]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out


def test_traffic_only_grades_a_program_that_prints_no_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    script = [sys.executable, "-m", "examples.pixazo_script"]
    base = ["check", "--provider", "pixazo", "--traffic-only", "--speed", "100", "--replay-dir", str(tmp_path), "-q"]
    kinds = ["--kind", "success", "--kind", "transient", "--scenario", "pixazo/veo-3-1-fast/success"]
    kinds += ["--scenario", "pixazo/veo-3-1-fast/transient-status-internal"]
    assert veomock([*base, *kinds, "--json", str(report), "--", *script]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "traffic-only: the client's requests are graded, no outcome is read; skipped:" in out
    assert "result.success: needs the client's outcome" in out and "scenarios of kind webhook:" in out
    data = json.loads(report.read_text())
    assert data["mode"]["traffic_only"] and set(data["mode"]["skipped_checks"]) == {
        n for n, spec in CHECKS.items() if spec.outcome
    }
    applied = {name for scenario in data["scenarios"] for name in scenario["checks"]}
    assert {"polling.interval", "retry.transient", "retry.backoff", "request.body"} <= applied
    assert not applied & set(data["mode"]["skipped_checks"])
    # The same script polling every second is caught from its traffic alone.
    assert veomock([*base, "--scenario", "pixazo/veo-3-1-fast/success", "--", *script, "--interval", "1"]) == 1
    assert "polling.interval failed in pixazo/veo-3-1-fast/success" in capsys.readouterr().out


def test_traffic_only_reports_a_program_that_never_calls() -> None:
    scenario = next(s for s in catalogue(load("vtrix")) if s.kind == "success")
    with Runner("vtrix", CommandAdapter([sys.executable, "-c", "pass"]), speed=100, traffic_only=True) as runner:
        result = runner.run(scenario)
    assert [f.check for f in result.failures] == ["outcome.protocol"]
    assert "sent no request to VEOMOCK_BASE_URL" in result.failures[0].observed


def test_real_time_grading_passes_a_sleeping_client_and_catches_a_fast_poller() -> None:
    contract = load("pixazo")
    wanted = ("pixazo/veo-3-1-fast/success", "pixazo/veo-3-1-fast/transient-submit-rate_limited-retry-after")
    chosen = [s for s in catalogue(contract) if s.id in wanted]
    with Runner("pixazo", _reference("pixazo"), speed=50) as runner:
        results = runner.run_all(chosen)
        assert runner.mode()["tolerance"] == pytest.approx(0.5)
    assert [f.render() for r in results for f in r.failures] == []
    assert {"polling.interval", "retry.retry_after", "result.download"} <= {n for r in results for n in r.applied}
    broken = next(b for b in CATALOGUE if b.name == "pixazo-polls-fast")
    with Runner("pixazo", PythonAdapter(broken.generate), speed=50) as runner:
        caught = runner.run(chosen[0])
    assert {f.check for f in caught.failures} == {"polling.interval"}
    assert "--speed 50" in caught.failures[0].reproduce


def test_parallel_runs_grade_as_one_at_a_time_each_as_its_own_tenant() -> None:
    contract = load("pixazo")
    chosen = [s for s in catalogue(contract) if s.kind in ("success", "transient", "transport") and not s.variants]
    broken = next(b for b in CATALOGUE if b.name == "pixazo-polls-fast")
    graded = []
    for jobs in (1, 3):
        with Runner("pixazo", PythonAdapter(broken.generate), jobs=jobs) as runner:
            results = runner.run_all(chosen)
        graded.append([(r.scenario.id, r.applied, sorted({f.check for f in r.failures})) for r in results])
        assert len({r.run.api_key for r in results}) == len(results)
    assert graded[0] == graded[1]
    assert any("polling.interval" in failed for _, _, failed in graded[1])


def test_a_check_starts_from_cached_examples_without_hypothesis(tmp_path: Path) -> None:
    code = (
        "import sys; from veomock.conformance.scenarios import catalogue; from veomock.contracts import load; "
        "print(len(catalogue(load('vtrix'))), 'hypothesis' in sys.modules)"
    )
    env = {**os.environ, "VEOMOCK_CACHE_DIR": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True) for _ in "12"
    ]
    assert [run.stdout.split()[1] for run in runs] == ["True", "False"]  # the second finds every example
    assert runs[0].stdout.split()[0] == runs[1].stdout.split()[0]
    assert len(list(tmp_path.glob("examples-vtrix-*.json"))) == 1


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert veomock(["check", "--provider", "apixo"]) == 2
    assert "name the client" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("client", "mode", "complaint"),
    [
        ("missing-client", None, "no such file"),
        ("client.py", 0o644, "not executable; chmod +x it, or name its interpreter"),
        ("client.py", 0o755, "a script needs a #! line"),
    ],
    ids=["missing", "not-executable", "no-interpreter-line"],
)
def test_cli_a_client_that_cannot_start_is_one_error_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    client: str,
    mode: int | None,
    complaint: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    if mode is not None:
        (tmp_path / client).write_text("print('no #! line')\n")
        (tmp_path / client).chmod(mode)
    replays = tmp_path / "replays"
    assert veomock(["check", "--provider", "apixo", "-q", "--replay-dir", str(replays), "--", f"./{client}"]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith(f"veomock check: the client './{client}' cannot start: ") and complaint in line
    assert "veomock conformance" not in out
    assert not replays.exists()


def test_cli_finds_a_python_client_from_the_current_directory(tmp_path: Path) -> None:
    """``--python examples.clients.apixo:generate`` from the checkout, with no PYTHONPATH, as
    ``python -m`` would find it (the console script's own directory is not the checkout)."""
    script = Path(sys.executable).parent / "veomock"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["check", "--provider", "apixo", "-q", "--scenario", "apixo/veo-3-1/success", "--replay-dir", str(tmp_path)]
    done = subprocess.run(
        [str(script), *args, "--python", "examples.clients.apixo:generate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 passed, 0 failed" in done.stdout


def test_exploration_shrinks_a_failure_to_a_minimal_scenario(tmp_path: Path) -> None:
    broken = next(b for b in CATALOGUE if b.name == "apixo-message-as-code")
    contract = load(broken.provider)
    with Runner(broken.provider, PythonAdapter(broken.generate), replay_dir=tmp_path) as runner:
        # Exploration over the job failures, where this client goes wrong (the catalogue has many
        # kinds; thirty draws over all of them may meet none).
        failures = scenarios(contract).filter(lambda s: s.kind == "job-failure")
        minimal = explore(runner, failures, 30)
    assert minimal is not None and minimal.replay is not None
    assert minimal.scenario.kind == "job-failure"
    assert {f.check for f in minimal.failures} == {"failure.code"}
    # One replay file, the minimal scenario's, under an id no catalogue scenario has.
    assert list(tmp_path.iterdir()) == [minimal.replay]
    assert minimal.scenario.id not in {s.id for s in catalogue(contract)}
    assert read_replay(minimal.replay)[0] == minimal.scenario
    assert all(str(minimal.replay) in f.reproduce for f in minimal.failures)


def test_an_explored_failure_without_replay_files_names_a_command_that_reproduces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = tmp_path / "no_bearer.py"
    client.write_text(
        "from examples.broken import CATALOGUE\n\n"
        "generate = next(b for b in CATALOGUE if b.name == 'apixo-no-bearer').generate\n"
    )
    spec = f"{client}:generate"
    quiet = ["--replay-dir", "", "-q"]
    first = ["check", "--provider", "apixo", "--scenario", "apixo/veo-3-1/success", "--explore", "3", *quiet]
    assert veomock([*first, "--python", spec]) == 1
    failure = r"failed in (\S+/explored-\S+)\n(?:  .*\n)*?  Reproduce with: veomock (.*)"
    lines = re.findall(failure, capsys.readouterr().out)
    assert lines, "no explored failure"
    explored, command = lines[0]
    # The catalogue holds no such id: the command explores again, alone, and meets it.
    assert explored not in {s.id for s in catalogue(load("apixo"))}
    assert veomock([*shlex.split(command), *quiet]) == 1
    again = capsys.readouterr().out
    assert set(re.findall(r"failed in (\S+)", again)) == {explored}, again
    assert again.rstrip().endswith("0 passed, 1 failed")


def test_a_reproduce_command_carries_the_capabilities_that_chose_the_scenario() -> None:
    caps = Capabilities(webhooks=True, downloads=False, models=("veo-3-1",), max_retries=5)
    command = Runner("apixo", _reference("apixo"), caps).reproduce(None, "apixo/veo-3-1/webhook")
    assert " --webhooks --no-downloads --model veo-3-1 --max-retries 5 --scenario apixo/veo-3-1/webhook " in command
    assert "--webhooks" not in Runner("apixo", _reference("apixo")).reproduce(None, "apixo/veo-3-1/success")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_exploration_passes_every_reference_client(provider: str) -> None:
    contract, caps = load(provider), _capabilities(provider)
    with Runner(provider, _reference(provider), caps) as runner:
        minimal = explore(runner, scenarios(contract, caps), 8)
    assert minimal is None, "\n\n".join(f.render() for f in minimal.failures)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_explored_scenarios_are_valid_by_the_contract_and_have_ids_of_their_own(provider: str) -> None:
    contract, caps = load(provider), _capabilities(provider)
    taken = {s.id for s in catalogue(contract, caps)}
    seen: dict[str, Scenario] = {}

    @settings(max_examples=40, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(scenarios(contract, caps))
    def check(scenario: Scenario) -> None:
        assert scenario.id not in taken
        assert seen.setdefault(scenario.id, scenario) == scenario, "two scenarios share an id"
        if scenario.kind != "invalid-request":
            model = load(provider, scenario.variants or None).models[scenario.model]
            errors = [e.message for e in Draft202012Validator(model.full_schema).iter_errors(scenario.request)]
            assert not errors, (scenario.request, errors)

    check()
    assert len(seen) > 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_result_paths_read_what_the_mock_serves(provider: str) -> None:
    harness = Harness(provider)
    contract = harness.contract
    paths = result_paths(contract)
    for failure in contract.failures:
        harness.begin({"outcome": {"state": failure.state, "code": failure.code}, "timing": (0, 1)})
        job = _submit(harness)
        harness.clock.advance(5)
        view = harness.state.view(job, "http://mock")
        body = contract.status[view["state"]].body.render({"job": view})
        codes = extract(body, paths.failure_code)
        assert len(codes) == 1 and str(codes[0]).strip(), (failure, body)
    harness.begin({"timing": (0, 1)})
    job = _submit(harness)
    harness.clock.advance(5)
    view = harness.state.view(job, "http://mock")
    body = contract.status["succeeded"].body.render({"job": view})
    assert extract(body, paths.urls) == view["result_urls"]
    submit = contract.submit.body.render({"job": view, "request": {"base_url": "http://mock"}})
    assert extract(submit, paths.job_id) == [job.id]


def _submit(harness: Harness) -> Any:
    from starlette.testclient import TestClient
    from veomock.conformance.facts import api_key, auth_headers, submit_operation
    from veomock.conformance.scenarios import example_request

    contract = harness.contract
    model = next(iter(contract.models))
    op = submit_operation(contract, model)
    with TestClient(harness.app) as client:
        response = client.post(
            op.path, json=example_request(contract, model), headers=auth_headers(contract, api_key(contract))
        )
    assert response.is_success, response.text
    return harness.jobs()[-1]


def test_protocol_refuses_bad_outcomes() -> None:
    assert Outcome.from_json({"status": "succeeded", "urls": ["u"]}).urls == ("u",)
    with pytest.raises(ProtocolError, match="category"):
        Outcome.from_json({"status": "failed"})
    with pytest.raises(ProtocolError, match="status"):
        Outcome.from_json({"result": "ok"})
    with pytest.raises(ProtocolError, match="unknown capabilities"):
        Capabilities.from_json({"polling": True, "telepathy": True})


def test_conformance_names_no_provider() -> None:
    names = set(PROVIDERS) | {load(p).title.lower() for p in PROVIDERS}
    for path in sorted((ROOT / "conformance").rglob("*")):
        if path.suffix not in (".py", ".md"):
            continue
        text = path.read_text().lower()
        for name in names:
            assert not re.search(rf"\b{re.escape(name)}\b", text), f"{path.name} names {name!r}"


def test_every_check_cites_what_it_judges() -> None:
    protocol = (ROOT / "conformance" / "PROTOCOL.md").read_text()
    raws = [load(p).raw for p in PROVIDERS]

    def resolves(raw: Any, path: str) -> bool:
        for part in path.split("."):
            if not isinstance(raw, dict) or part not in raw:
                return False
            raw = raw[part]
        return True

    for spec in CHECKS.values():
        assert spec.cites, f"{spec.name} cites no contract path"
        for cite in spec.cites:
            section = re.fullmatch(r"PROTOCOL\.md \((\w+)\)", cite)
            if section:
                assert re.search(rf"^##+ {section.group(1)}\b", protocol, re.MULTILINE), (spec.name, cite)
            else:
                assert any(resolves(raw, cite) for raw in raws), (spec.name, cite)
    assert {spec.func.__module__.rsplit(".", 1)[-1] for spec in CHECKS.values()} == set(AREAS)


def test_public_api() -> None:
    for name in conformance.__all__:
        assert hasattr(conformance, name), name
    assert sorted(conformance.__all__) == conformance.__all__


def test_pytest_plugin(tmp_path: Path) -> None:
    test_file = tmp_path / "test_client.py"
    test_file.write_text(
        "import pytest\n"
        "from examples.clients.vtrix import generate\n\n"
        "@pytest.mark.veomock(provider='vtrix', kinds=['success', 'job-failure'])\n"
        "def test_vtrix_client(veomock_check):\n"
        "    veomock_check(generate)\n\n"
        "def test_mock_fixture(veomock_mock):\n"
        "    assert veomock_mock.base_url.startswith('http://127.0.0.1:')\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout

"""Run a client through scenarios against the mock and grade it.

Two adapters start a client: :class:`CommandAdapter` runs any program (the subprocess protocol of
PROTOCOL.md), :class:`PythonAdapter` calls a Python function in this process with the same job and
environment, and in exact mode with the scenario's :class:`SuiteClock` when the function takes a
``clock``. :class:`Runner` owns one server (a real socket on 127.0.0.1), one :class:`Harness`
per variant set, and turns each scenario into a :class:`Result`: the checks that applied, their
failures, and a replay file when something failed.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from veomock.conformance.checks import Failure, Run, run_checks
from veomock.conformance.checks.core import REAL_SLACK, skipped
from veomock.conformance.facts import api_key
from veomock.conformance.protocol import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_CLOCK_URL,
    ENV_PROVIDER,
    ENV_SPEED,
    ENV_WEBHOOK_ADDR,
    ENV_WEBHOOK_CERT,
    ENV_WEBHOOK_KEY,
    Capabilities,
    Job,
    Outcome,
    ProtocolError,
)
from veomock.conformance.scenarios import HOOK_PATH, NOT_TRAFFIC, Scenario
from veomock.conformance.server import Harness, ServerThread
from veomock.contracts import Contract
from veomock.mocks import CONTROL_PREFIX
from veomock.mocks.lifecycle import Job as MockJob
from veomock.mocks.media import clip_for

__all__ = ["Adapter", "CommandAdapter", "PythonAdapter", "Result", "Runner", "StartError", "SuiteClock", "load_python"]

ClientFunc = Callable[..., Mapping[str, Any]]  # (job, env) or (job, env, clock=SuiteClock | None)


class StartError(Exception):
    """The client cannot start at all (no such program, not executable): no scenario can run."""


class SuiteClock:
    """Exact mode's clock for a client in this process: :meth:`sleep` waits on the mock's clock
    exactly as ``POST {"advance": s}`` to ``VEOMOCK_CLOCK_URL`` does (the clock moves on, the
    callbacks that fell due are delivered, then it returns), without a request; :meth:`now` is
    provider time in epoch seconds."""

    def __init__(self, server: ServerThread, harness: Harness) -> None:
        self._server, self._harness = server, harness

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of provider time; :class:`ValueError` for a wait the clock refuses."""
        self._server.call(self._harness.wait(seconds))

    def now(self) -> float:
        return self._harness.clock.now()


class Adapter(Protocol):
    """Starts the client on one job and returns (outcome JSON or None, problem, stderr). ``clock``
    is exact mode's clock (None in real-time mode); an adapter whose client runs in another
    process ignores it: that client waits through ``VEOMOCK_CLOCK_URL``."""

    def describe(self) -> str: ...

    def run(
        self, job: Job, env: Mapping[str, str], clock: SuiteClock | None = None
    ) -> tuple[Any, str | None, str]: ...


def _takes_clock(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): call it as (job, env)
        return False
    return any(p.name == "clock" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class PythonAdapter:
    """A client as a Python function ``func(job: dict, env: Mapping[str, str]) -> outcome dict``.
    A function that takes a ``clock`` keyword is also given exact mode's :class:`SuiteClock`
    (None in real-time mode), so that it waits without a request to the clock URL."""

    def __init__(self, func: ClientFunc, spec: str | None = None) -> None:
        self.func = func
        self.spec = spec or f"{func.__module__}:{getattr(func, '__qualname__', func)}"
        self.takes_clock = _takes_clock(func)

    def describe(self) -> str:
        return f"--python {self.spec}"

    def run(
        self, job: Job, env: Mapping[str, str], clock: SuiteClock | None = None
    ) -> tuple[Any, str | None, str]:
        extra = {"clock": clock} if self.takes_clock else {}
        try:
            return dict(self.func(job.to_json(), dict(env), **extra)), None, ""
        except Exception as exc:
            return None, f"the client raised {type(exc).__name__}: {exc}", ""


def load_python(spec: str) -> ClientFunc:
    """``package.module:function`` (a file path works for the module too) -> the function.

    A module name is looked up from the current directory first, as ``python -m`` does."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"{spec!r} must look like module:function")
    if module_name.endswith(".py") or "/" in module_name:
        path = Path(module_name).resolve()
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    func: ClientFunc = getattr(module, attr)
    return func


_DID_NOT_RUN = ("the client could not start", "the client ran past")


class CommandAdapter:
    """A client as a program: job JSON on stdin, outcome JSON (the last line) on stdout."""

    def __init__(self, argv: Sequence[str], timeout: float = 120.0, cwd: str | None = None) -> None:
        if not argv:
            raise ValueError("give the client command after --")
        self.argv = list(argv)
        self.timeout = timeout
        self.cwd = cwd

    def describe(self) -> str:
        return "-- " + shlex.join(self.argv)

    def run(
        self, job: Job, env: Mapping[str, str], clock: SuiteClock | None = None
    ) -> tuple[Any, str | None, str]:
        try:
            done = subprocess.run(
                self.argv,
                input=json.dumps(job.to_json()),
                capture_output=True,
                text=True,
                env={**os.environ, **env},
                timeout=self.timeout,
                cwd=self.cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return None, f"the client ran past {self.timeout:g} real seconds and was stopped", stderr
        except OSError as exc:
            raise StartError(self._why_not_started(exc)) from None
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0:
            return None, f"the client exited with status {done.returncode}", done.stderr
        if not lines:
            return None, "the client printed no outcome", done.stderr
        try:
            return json.loads(lines[-1]), None, done.stderr
        except json.JSONDecodeError as exc:
            return None, f"the last line of stdout is not JSON ({exc.msg}): {lines[-1][:200]!r}", done.stderr


    def _why_not_started(self, exc: OSError) -> str:
        program = self.argv[0]
        where = f" (from {self.cwd})" if self.cwd else ""
        if isinstance(exc, FileNotFoundError):
            looked = "no such file" if os.sep in program else "not found on PATH"
            return f"the client {program!r} cannot start: {looked}{where}; check the command after --"
        if isinstance(exc, PermissionError):
            return (
                f"the client {program!r} cannot start: it is not executable{where}; "
                f"chmod +x it, or name its interpreter (-- python3 {program})"
            )
        return (
            f"the client {program!r} cannot start: {exc.strerror or exc}{where}; "
            "a script needs a #! line, or name its interpreter after --"
        )


@dataclass
class Result:
    scenario: Scenario
    applied: list[str]
    failures: list[Failure]
    run: Run
    replay: Path | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def _media_size(contract: Contract, job: MockJob) -> int:
    clip = clip_for(job.params.get("aspect_ratio"), job.params.get("duration"), contract.default_aspect)
    return clip.stat().st_size if clip.exists() else 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def _https_only(provider: str) -> bool:
    from veomock.contracts import load

    return any(channel.https_only for channel in load(provider).webhook_channels)


class _ReceiverTLS:
    """Where the provider documents https-only callbacks: a test CA (trustme) the mock trusts, and
    a certificate for 127.0.0.1 that the client's receiver serves (PROTOCOL.md, Webhooks)."""

    def __init__(self) -> None:
        import tempfile

        import trustme

        authority = trustme.CA()
        issued = authority.issue_cert("127.0.0.1")
        self.dir = tempfile.TemporaryDirectory(prefix="veomock-tls-")
        folder = Path(self.dir.name)
        self.ca, self.cert, self.key = (str(folder / n) for n in ("ca.pem", "cert.pem", "key.pem"))
        authority.cert_pem.write_to_path(self.ca)
        issued.private_key_pem.write_to_path(self.key)
        with open(self.cert, "wb") as chain:
            for blob in issued.cert_chain_pems:
                chain.write(blob.bytes())

    def close(self) -> None:
        self.dir.cleanup()


@dataclass
class _Lane:
    """One server and its mocks (a harness per variant set): one scenario at a time runs on it."""

    server: ServerThread
    harnesses: dict[str, Harness] = field(default_factory=dict)


@dataclass
class Runner:
    """Grades one client (``adapter``) for one provider. Use as a context manager."""

    provider: str
    adapter: Adapter
    capabilities: Capabilities = field(default_factory=Capabilities)
    seed: int = 0
    replay_dir: Path | None = None
    checks: Sequence[str] | None = None
    speed: float = 0.0  # 0: exact mode (the clock URL); X > 0: real time, provider time X times faster
    traffic_only: bool = False  # the client prints no outcome: grade its traffic alone

    jobs: int = 1  # scenarios run at once, each on a lane of its own (a server and its mocks)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"jobs must be 1 or more, not {self.jobs}")
        self._lanes: list[_Lane] = []
        self._tenants = itertools.count(1)
        self._tls: _ReceiverTLS | None = None

    def __enter__(self) -> Runner:
        self._lanes = [_Lane(ServerThread()) for _ in range(self.jobs)]
        return self

    def __exit__(self, *exc: object) -> None:
        # Every server is told to stop before any is waited for: each takes a tick of its loop.
        for lane in self._lanes:
            lane.server.stop()
        for lane in self._lanes:
            lane.server.close()
        self._lanes = []
        if self._tls is not None:
            self._tls.close()
            self._tls = None

    def _receiver_tls(self) -> _ReceiverTLS | None:
        """A CA and a certificate for 127.0.0.1, made once, where a channel wants https callbacks."""
        if self._tls is None and self.capabilities.webhooks and _https_only(self.provider):
            self._tls = _ReceiverTLS()
        return self._tls

    def _lane(self, index: int = 0) -> _Lane:
        assert self._lanes, "use the Runner as a context manager"
        return self._lanes[index]

    @property
    def base_url(self) -> str:
        return self._lane().server.base_url

    def harness(self, variants: Mapping[str, str], lane: int = 0) -> Harness:
        key = json.dumps(dict(variants), sort_keys=True)
        harnesses = self._lane(lane).harnesses
        if key not in harnesses:
            tls = self._receiver_tls()
            ca = tls.ca if tls is not None else None
            harnesses[key] = Harness(self.provider, dict(variants), seed=self.seed, webhook_ca=ca)
        return harnesses[key]

    def run(self, scenario: Scenario, lane: int = 0, *, replay: bool = True) -> Result:
        """Run the client on ``scenario`` (in ``lane``) and grade it; ``replay=False`` writes no
        replay file (:meth:`record` can write it later)."""
        if scenario.provider != self.provider:
            raise ValueError(f"scenario {scenario.id} is for {scenario.provider}, not {self.provider}")
        server = self._lane(lane).server
        harness = self.harness(scenario.variants, lane)
        harness.begin(scenario.plan(), speed=self.speed)
        server.use(harness)
        base_url = server.base_url
        contract = harness.contract
        key = api_key(contract, f"-t{next(self._tenants)}")  # every scenario is a tenant of its own
        env = {ENV_BASE_URL: base_url, ENV_API_KEY: key, ENV_PROVIDER: self.provider}
        if self.speed > 0:
            env[ENV_SPEED] = f"{self.speed:g}"
        else:
            env[ENV_CLOCK_URL] = f"{base_url}{CONTROL_PREFIX}/clock"
        webhook_url = None
        if self.capabilities.webhooks:
            port = _free_port()
            env[ENV_WEBHOOK_ADDR] = f"127.0.0.1:{port}"
            tls = self._receiver_tls()
            if tls is not None:
                env[ENV_WEBHOOK_CERT], env[ENV_WEBHOOK_KEY] = tls.cert, tls.key
            if scenario.use_webhook:
                webhook_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{HOOK_PATH}"
        job = Job(
            provider=self.provider,
            model=scenario.model,
            request=scenario.request,
            timeout=scenario.timeout,
            download=self.capabilities.downloads,
            webhook_url=webhook_url,
        )
        try:
            clock = SuiteClock(server, harness) if self.speed == 0 else None
            raw, problem, stderr = self.adapter.run(job, env, clock)
        finally:
            harness.end()
            server.use(None)
        outcome = None
        exchanges = harness.exchanges()
        if self.traffic_only:
            # No outcome to read, and the exit status is the program's own business: what is left
            # to report is a program that did not run, or never reached the mock.
            if problem is None or not problem.startswith(_DID_NOT_RUN):
                problem = None if exchanges else f"the program sent no request to {ENV_BASE_URL}"
        elif problem is None:
            try:
                outcome = Outcome.from_json(raw)
            except ProtocolError as exc:
                problem = f"the outcome breaks the protocol: {exc}"
        jobs = harness.jobs()
        run = Run(
            scenario=scenario,
            contract=contract,
            capabilities=self.capabilities,
            job=job,
            api_key=key,
            exchanges=exchanges,
            journal=harness.journal(),
            outcome=outcome,
            problem=problem,
            stderr=stderr,
            base_url=base_url,
            expected_urls={j.id: [base_url + j.result_path] for j in jobs},
            completed_at={j.id: t for j in jobs if (t := j.terminal_at()) is not None},
            media_sizes={j.id: _media_size(contract, j) for j in jobs},
            speed=self.speed,
            traffic_only=self.traffic_only,
            created=[j.id for j in jobs],
            charged=harness.state.providers[self.provider].ledger.charged(key, harness.clock.now()),
            prices={j.id: j.price for j in jobs},
        )
        applied, failures = run_checks(run, self.checks)
        result = Result(scenario, applied, failures, run)
        return self.record(result) if replay else result

    def record(self, result: Result, explored: int | None = None) -> Result:
        """Write the replay file of a failing result (when there is a replay directory) and point
        each failure's reproduce command at it. ``explored``: the result is one of that many
        generated scenarios (``--explore N``), which no ``--scenario`` finds in the catalogue."""
        if result.failures and self.replay_dir is not None:
            result.replay = self.write_replay(result)
        reproduce = self.reproduce(result.replay, result.scenario.id, explored)
        result.failures = [Failure(**{**f.to_json(), "reproduce": reproduce}) for f in result.failures]
        return result

    def run_all(self, scenarios: Iterable[Scenario], progress: Callable[[Result], None] | None = None) -> list[Result]:
        """Every scenario, in order; with ``jobs`` > 1, that many at once (results keep the order)."""
        chosen = list(scenarios)
        if self.jobs == 1 or len(chosen) < 2:
            out = []
            for scenario in chosen:
                out.append(self.run(scenario))
                if progress is not None:
                    progress(out[-1])
            return out
        free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(len(self._lanes)):
            free.put(index)
        reporting = threading.Lock()

        def one(scenario: Scenario) -> Result:
            lane = free.get()
            try:
                result = self.run(scenario, lane)
            finally:
                free.put(lane)
            if progress is not None:
                with reporting:
                    progress(result)
            return result

        with ThreadPoolExecutor(max_workers=len(self._lanes)) as pool:
            return list(pool.map(one, chosen))

    # -- replay --------------------------------------------------------------------------------

    def write_replay(self, result: Result) -> Path:
        assert self.replay_dir is not None
        self.replay_dir.mkdir(parents=True, exist_ok=True)
        path = self.replay_dir / f"{_slug(result.scenario.id)}.json"
        run = result.run
        data = {
            "format": 1,
            "provider": self.provider,
            "seed": self.seed,
            "client": self.adapter.describe(),
            "capabilities": self.capabilities.to_json(),
            "scenario": result.scenario.to_json(),
            "outcome": run.outcome.to_json() if run.outcome else None,
            "problem": run.problem,
            "failures": [f.to_json() for f in result.failures],
            "journal": [_jsonable(e) for e in run.journal],
        }
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        return path

    def reproduce(self, replay: Path | None, scenario: str, explored: int | None = None) -> str:
        """The ``veomock check`` command that runs ``scenario`` again: from its replay file, else
        by its catalogue id, else (a generated scenario with no replay file) the same exploration
        alone, which draws the same scenarios again (it is derandomized). The client's capabilities
        choose the catalogue and the job, so they are part of the command."""
        if replay:
            target = f"--replay {shlex.quote(str(replay))}"
        elif explored:  # a --scenario that the catalogue does not hold runs exploration alone
            target = f"--explore {explored} --scenario {shlex.quote(scenario)}"
        else:
            target = f"--scenario {shlex.quote(scenario)}"
        seed = f" --seed {self.seed}" if self.seed else ""
        mode = (f" --speed {self.speed:g}" if self.speed else "") + (" --traffic-only" if self.traffic_only else "")
        caps = self.capabilities
        flags = (" --webhooks" if caps.webhooks else "") + ("" if caps.downloads else " --no-downloads")
        flags += "".join(f" --model {shlex.quote(m)}" for m in caps.models)
        flags += f" --max-retries {caps.max_retries}" if caps.max_retries != Capabilities().max_retries else ""
        return f"veomock check --provider {self.provider}{seed}{mode}{flags} {target} {self.adapter.describe()}"

    def mode(self) -> dict[str, Any]:
        """How this runner grades, for the reports: exact or real time (with its tolerance), and
        in traffic-only mode what is skipped and why."""
        out: dict[str, Any] = {"time": "real-time" if self.speed else "exact", "speed": self.speed}
        out["tolerance"] = self.speed * REAL_SLACK  # provider seconds
        if self.traffic_only:
            out["traffic_only"] = True
            out["skipped_checks"] = skipped(self.checks)
            out["skipped_kinds"] = dict(NOT_TRAFFIC)
        return out


def _jsonable(entry: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(entry, default=str))
    return out


def read_replay(path: Path | str) -> tuple[Scenario, dict[str, Any]]:
    """The scenario of a replay file, and the whole file."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != 1 or "scenario" not in data:
        raise ValueError(f"{path} is not a veomock replay file")
    return Scenario.from_json(data["scenario"]), data

"""The registry of checks and what they read: a :class:`Run`, the :class:`Problem` s a check
yields, the :class:`Failure` s the runner reports.

Each check reads a :class:`Run` (the scenario, the exchanges the mock recorded, the mock's
journal, the client's outcome) and yields :class:`Problem` s. A problem says what was observed,
what the contract says and where (a path in the YAML), and how to fix it; the runner adds the
check's name, the scenario and the command that reproduces it, making a :class:`Failure`.

Nothing here knows a provider: poll intervals, states, retryable errors, result paths and auth
come from the contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from veomock.conformance.protocol import Capabilities, Job, Outcome
from veomock.conformance.scenarios import Scenario
from veomock.conformance.server import Exchange
from veomock.contracts import TERMINAL_STATES, Contract

__all__ = [
    "CHECKS",
    "EPSILON",
    "REAL_SLACK",
    "REFUSING",
    "Check",
    "Failure",
    "Problem",
    "Run",
    "at",
    "check",
    "run_checks",
    "show",
    "skipped",
]

EPSILON = 1e-6  # provider seconds: two instants closer than this are one
REAL_SLACK = 0.01  # real seconds of timing tolerance in real-time mode (scheduling, loopback latency)
REFUSING = (400, 401, 402, 403)


@dataclass(frozen=True)
class Problem:
    observed: str
    expected: str
    path: str  # where the contract says so, e.g. "lifecycle.poll_interval.min"
    fix: str


@dataclass(frozen=True)
class Failure:
    check: str
    scenario: str
    observed: str
    expected: str
    contract: str  # "contracts/NAME.yaml: lifecycle.poll_interval.min"
    fix: str
    reproduce: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "scenario": self.scenario,
            "observed": self.observed,
            "expected": self.expected,
            "contract": self.contract,
            "fix": self.fix,
            "reproduce": self.reproduce,
        }

    def render(self) -> str:
        lines = [
            f"{self.check} failed in {self.scenario}",
            f"  observed: {self.observed}",
            f"  expected: {self.expected}",
            f"  contract: {self.contract}",
            f"  fix:      {self.fix}",
        ]
        if self.reproduce:
            lines.append(f"  Reproduce with: {self.reproduce}")
        return "\n".join(lines)


@dataclass
class Run:
    """Everything one scenario left behind, as checks read it."""

    scenario: Scenario
    contract: Contract
    capabilities: Capabilities
    job: Job
    api_key: str
    exchanges: list[Exchange]
    journal: list[dict[str, Any]]
    outcome: Outcome | None
    problem: str | None = None  # the client broke the protocol (crash, no outcome, bad JSON)
    stderr: str = ""
    base_url: str = ""
    expected_urls: dict[str, list[str]] = field(default_factory=dict)  # job id -> URLs the mock serves
    completed_at: dict[str, float] = field(default_factory=dict)  # job id -> provider time it ended
    media_sizes: dict[str, int] = field(default_factory=dict)  # job id -> bytes of its result file
    speed: float = 0.0  # 0: exact mode; X: real-time mode, provider time X times real time
    traffic_only: bool = False  # the client prints no outcome; only its traffic is graded
    created: list[str] = field(default_factory=list)  # every job the mock created, in order
    charged: float = 0.0  # what the mock's ledger charged the key, when the client was done
    prices: dict[str, float] = field(default_factory=dict)  # job id -> its price

    @property
    def reported(self) -> Outcome:
        """The client's outcome, for a check declared with ``outcome=True`` (it runs only when
        the client reported one)."""
        assert self.outcome is not None, "a check that reads the outcome ran without one"
        return self.outcome

    @property
    def slack(self) -> float:
        """Provider seconds by which a measured interval may miss: none in exact mode."""
        return EPSILON + self.speed * REAL_SLACK

    # -- views ---------------------------------------------------------------------------------

    @property
    def api(self) -> list[Exchange]:
        """Requests to the provider's API (not media downloads)."""
        return [e for e in self.exchanges if e.kind != "media"]

    @property
    def submits(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "submit"]

    def polls(self, job: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "status" and e.job == job]

    def seen_polls(self, job: str) -> list[Exchange]:
        """The polls whose answer reached the client whole (no transport fault)."""
        return [e for e in self.polls(job) if e.fault is None]

    @property
    def jobs(self) -> list[str]:
        return [e.job for e in self.submits if e.job and not e.failed]

    @property
    def media(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "media"]

    def webhooks(self, job: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.journal if e.get("direction") == "outbound" and (job is None or e.get("job") == job)]

    def terminal_poll(self, job: str) -> Exchange | None:
        return next((e for e in self.seen_polls(job) if e.state in TERMINAL_STATES), None)

    def terminal_body(self, job: str) -> Any:
        """The status body that told the client how its job ended (a poll, else a webhook)."""
        poll = self.terminal_poll(job)
        if poll is not None:
            return poll.response_body
        for entry in self.webhooks(job):
            if entry.get("event") in TERMINAL_STATES:
                return entry.get("body")
        return None

    def error_name(self, exchange: Exchange) -> str | None:
        """The contract error an exchange was answered with, when known."""
        if exchange.injected:
            return exchange.injected
        return None

    def retryable(self, exchange: Exchange) -> bool:
        if exchange.fault is not None:
            return True
        name = self.error_name(exchange)
        if name and name in self.contract.errors:
            return self.contract.errors[name].retryable
        return exchange.status in (0, 429, 500, 502, 503, 504)

    def chains(self) -> list[list[Exchange]]:
        """Runs of attempts at one request: each attempt after the first follows an error answer
        or a transport fault."""
        out: list[list[Exchange]] = []
        for exchange in self.api:
            key = (exchange.operation, exchange.job if exchange.kind != "submit" else None)
            if out:
                last = out[-1][-1]
                last_key = (last.operation, last.job if last.kind != "submit" else None)
                if last.failed and key == last_key:
                    out[-1].append(exchange)
                    continue
            out.append([exchange])
        return out


Checker = Callable[[Run], Iterable[Problem]]


@dataclass(frozen=True)
class Check:
    name: str
    title: str
    func: Checker
    applies: Callable[[Run], bool]
    cites: tuple[str, ...] = ()  # the contract paths (or PROTOCOL.md sections) the check judges
    outcome: bool = False  # it reads the client's outcome, so traffic alone cannot judge it


CHECKS: dict[str, Check] = {}


def _always(run: Run) -> bool:
    return True


def check(
    name: str,
    title: str,
    applies: Callable[[Run], bool] = _always,
    *,
    cites: Iterable[str] = (),
    outcome: bool = False,
) -> Callable[[Checker], Checker]:
    """Register a check under ``name``; ``applies`` says for which runs it means something,
    ``cites`` names the contract paths (``lifecycle.poll_interval``) or PROTOCOL.md sections it
    judges, and ``outcome`` says that it reads the client's outcome (skipped in traffic-only
    mode)."""

    def register(func: Checker) -> Checker:
        if name in CHECKS:
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS[name] = Check(name, title, func, applies, tuple(cites), outcome)
        return func

    return register


def _where(run: Run, path: str) -> str:
    return f"contracts/{run.contract.file.name}: {path}"


def run_checks(run: Run, names: Iterable[str] | None = None) -> tuple[list[str], list[Failure]]:
    """Run the applicable checks; returns (checks that applied, failures)."""
    applied, failures = [], []
    chosen = [CHECKS[n] for n in names] if names is not None else list(CHECKS.values())
    for spec in chosen:
        if spec.name != "outcome.protocol" and run.problem is not None:
            continue
        if spec.outcome and run.traffic_only:
            continue
        if not spec.applies(run):
            continue
        applied.append(spec.name)
        for problem in spec.func(run):
            failures.append(
                Failure(
                    check=spec.name,
                    scenario=run.scenario.id,
                    observed=problem.observed,
                    expected=problem.expected,
                    contract=_where(run, problem.path) if not problem.path.startswith("PROTOCOL") else problem.path,
                    fix=problem.fix,
                )
            )
    return applied, failures


SKIPPED_IN_TRAFFIC_ONLY = "needs the client's outcome, and a traffic-only program prints none"


def skipped(names: Iterable[str] | None = None) -> dict[str, str]:
    """The checks that traffic-only mode skips, and why."""
    chosen = [CHECKS[n] for n in names] if names is not None else list(CHECKS.values())
    return {spec.name: SKIPPED_IN_TRAFFIC_ONLY for spec in chosen if spec.outcome}


def show(value: Any, limit: int = 160) -> str:
    """A JSON value for a message, cut at ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def at(run: Run, time: float) -> str:
    """A provider time as an offset from the run's first request: ``t+5s``."""
    start = run.exchanges[0].time if run.exchanges else time
    return f"t+{time - start:g}s"

"""Checks: registered, named functions that grade one run of a client against the contract.

Each check reads a :class:`Run` (the scenario, the exchanges the mock recorded, the mock's
journal, the client's outcome) and yields :class:`Problem` s. A problem says what was observed,
what the contract says and where (a path in the YAML), and how to fix it; the runner adds the
check's name, the scenario and the command that reproduces it, making a :class:`Failure`.

Nothing here knows a provider: poll intervals, states, retryable errors, result paths and auth
come from the contract.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from veomock.conformance.facts import body_path, extract, result_paths, webhook_body_fields
from veomock.conformance.protocol import Capabilities, Job, Outcome
from veomock.conformance.scenarios import Scenario
from veomock.conformance.server import Exchange
from veomock.contracts import TERMINAL_STATES, Contract

__all__ = ["CHECKS", "Check", "Failure", "Problem", "Run", "check", "run_checks"]

_EPSILON = 1e-6
_REFUSING = (400, 401, 402, 403)


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

    @property
    def jobs(self) -> list[str]:
        return [e.job for e in self.submits if e.job and 200 <= e.status < 300]

    @property
    def media(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == "media"]

    def webhooks(self, job: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.journal if e.get("direction") == "outbound" and (job is None or e.get("job") == job)]

    def terminal_poll(self, job: str) -> Exchange | None:
        return next((e for e in self.polls(job) if e.state in TERMINAL_STATES), None)

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
        name = self.error_name(exchange)
        if name and name in self.contract.errors:
            return self.contract.errors[name].retryable
        return exchange.status in (0, 429, 500, 502, 503, 504)

    def chains(self) -> list[list[Exchange]]:
        """Runs of attempts at one request: each attempt after the first follows an error answer."""
        out: list[list[Exchange]] = []
        for exchange in self.api:
            key = (exchange.operation, exchange.job if exchange.kind != "submit" else None)
            if out:
                last = out[-1][-1]
                last_key = (last.operation, last.job if last.kind != "submit" else None)
                if last.status >= 400 and key == last_key:
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


CHECKS: dict[str, Check] = {}


def _always(run: Run) -> bool:
    return True


def check(name: str, title: str, applies: Callable[[Run], bool] = _always) -> Callable[[Checker], Checker]:
    """Register a check under ``name``; ``applies`` says for which runs it means something."""

    def register(func: Checker) -> Checker:
        if name in CHECKS:
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS[name] = Check(name, title, func, applies)
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


def _show(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _t(run: Run, time: float) -> str:
    start = run.exchanges[0].time if run.exchanges else time
    return f"t+{time - start:g}s"


# ------------------------------------------------------------------------------------------------
# the outcome


@check("outcome.protocol", "the client reports one valid outcome as PROTOCOL.md says")
def _protocol(run: Run) -> Iterator[Problem]:
    if run.problem is not None:
        yield Problem(
            observed=run.problem + (f"; stderr: {run.stderr.strip()[-300:]}" if run.stderr.strip() else ""),
            expected="one JSON outcome on stdout and exit status 0",
            path="PROTOCOL.md (Outcome)",
            fix="print exactly one outcome object as the last line of stdout; see conformance/PROTOCOL.md",
        )


def _expects_success(run: Run) -> bool:
    return bool(run.scenario.expect.get("status") == "succeeded")


@check(
    "result.success",
    "a job that succeeds is reported with the media URLs the provider gave",
    _expects_success,
)
def _success(run: Run) -> Iterator[Problem]:
    paths = result_paths(run.contract)
    outcome = run.outcome
    assert outcome is not None
    if outcome.status != "succeeded":
        yield Problem(
            observed=f"outcome {outcome.status} ({outcome.category}: {outcome.message or outcome.code})",
            expected="succeeded: the job completed",
            path=paths.yaml_path("urls"),
            fix="follow the job to its terminal state and report success when it succeeded",
        )
        return
    wanted: list[str] = []
    for job in run.jobs:
        body = run.terminal_body(job)
        found = [str(u) for u in extract(body, paths.urls)] if body is not None else []
        wanted.extend(found or run.expected_urls.get(job, []))
    if list(outcome.urls) != wanted:
        yield Problem(
            observed=f"urls {_show(list(outcome.urls))}",
            expected=f"urls {_show(wanted)}, read from the status body at {paths.urls}",
            path=paths.yaml_path("urls"),
            fix=f"read the result URLs at {paths.urls} of the completed status body",
        )


def _downloads(run: Run) -> bool:
    return _expects_success(run) and run.job.download and run.capabilities.downloads


@check("result.download", "each result file is downloaded, whole, before the URL expires", _downloads)
def _download(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    if outcome.status != "succeeded":
        return
    expires = run.contract.media_expires_after
    fetched: dict[str, Exchange] = {}
    for exchange in run.media:
        if exchange.status == 200:
            fetched.setdefault(_path_of(exchange), exchange)
    for i, url in enumerate(outcome.urls):
        got = fetched.get(_url_path(url))
        if got is None:
            yield Problem(
                observed=f"{url} was never fetched (or never answered 200)",
                expected="a GET of every result URL",
                path="media.path",
                fix="download each result URL after the job succeeds",
            )
            continue
        done = max(run.completed_at.values(), default=got.time)
        if expires is not None and got.time > done + expires:
            yield Problem(
                observed=f"{url} fetched at {_t(run, got.time)}, {got.time - done:g}s after completion",
                expected=f"within {expires:g}s of completion",
                path="media.expires_after",
                fix="download results as soon as the job succeeds; the URLs expire",
            )
        reported = outcome.downloaded[i] if i < len(outcome.downloaded) else None
        size = got.response_bytes or run.media_sizes.get(got.job or "", 0)
        if reported != size:
            yield Problem(
                observed=f"reported {reported} bytes for {url}",
                expected=f"{size} bytes, the whole file",
                path="media.content_type",
                fix="read the whole response body and report its size in outcome.downloaded",
            )


def _url_path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


def _path_of(exchange: Exchange) -> str:
    return exchange.path


def _job_failure(run: Run) -> bool:
    return run.scenario.kind == "job-failure"


@check("failure.code", "a job that fails is reported with the provider's failure code", _job_failure)
def _failure_code(run: Run) -> Iterator[Problem]:
    paths = result_paths(run.contract)
    outcome = run.outcome
    assert outcome is not None
    codes: list[str] = []
    for job in run.jobs:
        codes.extend(str(c) for c in extract(run.terminal_body(job), paths.failure_code))
    if outcome.status != "failed":
        yield Problem(
            observed=f"outcome {outcome.status}",
            expected=f"failed with code {codes[0] if codes else '?'}",
            path="lifecycle.states",
            fix="treat the failed and error states as terminal failures",
        )
        return
    if codes and outcome.code != codes[0]:
        yield Problem(
            observed=f"code {outcome.code!r}",
            expected=f"code {codes[0]!r}, read at {paths.failure_code} of the terminal status body",
            path=paths.yaml_path("failure_code"),
            fix=f"report the provider's code from {paths.failure_code} unchanged",
        )


@check(
    "failure.kind",
    "generation failures and system errors are told apart where the provider does",
    _job_failure,
)
def _failure_kind(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    allowed = run.scenario.expect.get("categories", [])
    if outcome.status == "failed" and outcome.category not in allowed:
        states = run.contract.states
        yield Problem(
            observed=f"category {outcome.category!r}",
            expected=f"category {' or '.join(allowed)} (status {states['failed']!r} is a failure, "
            f"{states['error']!r} a system error)",
            path="lifecycle.states",
            fix="map the provider's failed state to category failed and its error state to category error",
        )


def _refusal(run: Run) -> bool:
    return run.scenario.kind in ("refused", "invalid-request", "persistent", "hang")


@check("failure.category", "a refused or abandoned job is reported with the right category", _refusal)
def _failure_category(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    expect = run.scenario.expect
    allowed = expect.get("categories", [])
    rule = run.scenario.rules[0]["action"].get("error") if run.scenario.rules else None
    path = f"errors.{rule}.status" if rule else ("lifecycle.timing" if run.scenario.kind == "hang" else "models")
    if outcome.status != "failed" or outcome.category not in allowed:
        yield Problem(
            observed=f"outcome {outcome.status}, category {outcome.category!r}",
            expected=f"failed, category {' or '.join(allowed)}",
            path=path,
            fix="map HTTP errors and time-outs to the protocol's categories (PROTOCOL.md, Outcome)",
        )
    wanted = expect.get("http_status")
    if wanted is not None and outcome.status == "failed" and outcome.http_status != wanted:
        yield Problem(
            observed=f"http_status {outcome.http_status}",
            expected=f"http_status {wanted}",
            path=path,
            fix="report the HTTP status of the refused request in outcome.http_status",
        )


# ------------------------------------------------------------------------------------------------
# requests


def _valid_job(run: Run) -> bool:
    return run.scenario.kind != "invalid-request" and bool(run.submits)


def _webhook_fields(run: Run) -> set[str]:
    contract = run.contract
    fields = set(webhook_body_fields(contract, run.scenario.model))
    for channel in contract.webhook_channels:
        for template in (channel.when_from, channel.mode_from, channel.filter_from):
            path = body_path(template)
            if path:
                fields.add(path)
    return fields


def _strip(body: Any, paths: Iterable[str]) -> Any:
    body = json.loads(json.dumps(body))
    for path in paths:
        node = body
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return body


@check("request.body", "the submitted body is the job's request, valid against the model's schema", _valid_job)
def _body(run: Run) -> Iterator[Problem]:
    model = run.contract.models[run.scenario.model]
    from veomock.mocks.validation import RequestValidator

    validator = RequestValidator(model)
    ignore = _webhook_fields(run) if run.job.webhook_url else set()
    wanted = _strip(run.job.request, ignore)
    for exchange in run.submits:
        if not isinstance(exchange.body, dict):
            yield Problem(
                observed=f"body {_show(exchange.body)}",
                expected="a JSON object",
                path=f"models.{model.name}.request.schema",
                fix="send the job's request as a JSON object",
            )
            continue
        invalid = validator.check(exchange.body)
        if invalid is not None:
            where = (
                f"models.{model.name}.request.rules ({invalid.rule})"
                if invalid.rule
                else (f"models.{model.name}.request.schema")
            )
            yield Problem(
                observed=f"body {_show(exchange.body)}: {invalid.message}",
                expected="a body valid against the model's schema and rules",
                path=where,
                fix="send the job's request unchanged",
            )
        elif _strip(exchange.body, ignore) != wanted:
            yield Problem(
                observed=f"body {_show(exchange.body)}",
                expected=f"the job's request {_show(run.job.request)}",
                path=f"models.{model.name}.request.schema",
                fix="send every field of the job's request, unchanged",
            )


@check("request.auth", "every API request carries the key in the contract's auth header and scheme")
def _auth(run: Run) -> Iterator[Problem]:
    auth = run.contract.auth
    wanted = f"Bearer {run.api_key}" if auth.scheme == "bearer" else run.api_key
    for exchange in run.api:
        value = exchange.headers.get(auth.header.lower())
        ok = value is not None and (
            value.strip().lower() == wanted.lower() if auth.scheme == "bearer" else value.strip() == wanted
        )
        if not ok:
            yield Problem(
                observed=f"{exchange.method} {exchange.path} sent {auth.header}: {value!r}",
                expected=f"{auth.header}: {wanted!r}",
                path="auth.header" if value is None else "auth.scheme",
                fix=f"send '{auth.header}: {wanted.replace(run.api_key, '<API key>')}' on every call",
            )
            return


@check("request.content_type", "submits send Content-Type: application/json", lambda run: bool(run.submits))
def _content_type(run: Run) -> Iterator[Problem]:
    for exchange in run.submits:
        ctype = exchange.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            index = next(i for i, op in enumerate(run.contract.operations) if op.name == exchange.operation)
            yield Problem(
                observed=f"Content-Type: {ctype or '(none)'}",
                expected="Content-Type: application/json",
                path=f"operations[{index}]",
                fix="send the body as JSON with Content-Type: application/json",
            )
            return


@check("request.routes", "every request uses a route and method the contract declares")
def _routes(run: Run) -> Iterator[Problem]:
    for exchange in run.exchanges:
        if exchange.kind is None:
            known = ", ".join(f"{op.method} {op.path}" for op in run.contract.operations)
            yield Problem(
                observed=f"{exchange.method} {exchange.path} (answered {exchange.status})",
                expected=f"one of: {known}",
                path="operations",
                fix="use the documented paths and methods",
            )
            return


# ------------------------------------------------------------------------------------------------
# polling


def _state_name(run: Run, exchange: Exchange) -> str:
    return run.contract.states.get(exchange.state or "", str(exchange.state))


def _polled(run: Run) -> bool:
    return bool(run.jobs) and any(run.polls(job) for job in run.jobs)


@check("polling.interval", "status polls are no closer than the documented interval", _polled)
def _interval(run: Run) -> Iterator[Problem]:
    contract = run.contract
    minimum = contract.poll_interval
    first = contract.first_poll_after
    for job in run.jobs:
        polls = run.polls(job)
        submit = next(e for e in run.submits if e.job == job)
        if first is not None and polls and polls[0].time - submit.time < first - _EPSILON:
            yield Problem(
                observed=f"first poll {polls[0].time - submit.time:g}s after submit",
                expected=f"at least {first:g}s after submit",
                path="lifecycle.poll_interval.first_poll_after",
                fix=f"wait {first:g}s before the first status poll",
            )
            return
        if minimum is None:
            continue
        for before, after in itertools.pairwise(polls):
            if not 200 <= before.status < 300:
                continue  # a retry after an error: the retry checks judge it
            gap = after.time - before.time
            if gap < minimum - _EPSILON:
                yield Problem(
                    observed=f"polls at {_t(run, before.time)} and {_t(run, after.time)}: {gap:g}s apart",
                    expected=f"at least {minimum:g}s between polls (provider time)",
                    path="lifecycle.poll_interval.min",
                    fix=f"wait at least {minimum:g}s between status polls",
                )
                return


@check("polling.stops_at_terminal", "polling stops once a poll reports a terminal state", _polled)
def _stops(run: Run) -> Iterator[Problem]:
    for job in run.jobs:
        polls = run.polls(job)
        for i, poll in enumerate(polls):
            if poll.state in TERMINAL_STATES and i + 1 < len(polls):
                yield Problem(
                    observed=f"{len(polls) - i - 1} more poll(s) after status {_state_name(run, poll)!r}",
                    expected="no poll after a terminal state",
                    path="lifecycle.states",
                    fix=f"stop at {', '.join(sorted({run.contract.states[s] for s in TERMINAL_STATES}))}",
                )
                return


@check(
    "polling.timeout",
    "a job that never ends is given up at the client's own timeout",
    lambda run: run.scenario.kind == "hang",
)
def _timeout(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    limit = run.job.timeout
    submits = [e for e in run.submits if e.job]
    last = run.api[-1] if run.api else None
    if outcome.category != "timeout":
        yield Problem(
            observed=f"outcome {outcome.status}, category {outcome.category!r}",
            expected=f"failed, category 'timeout', after {limit:g}s",
            path="PROTOCOL.md (Job.timeout)",
            fix="give up when the job's timeout has passed and report category timeout",
        )
        return
    if not submits or last is None:
        return
    start = submits[0].time
    polls = run.polls(submits[0].job or "")
    gaps = [b.time - a.time for a, b in itertools.pairwise(polls)]
    slack = max([*gaps, run.contract.poll_interval or 0.0, 1.0])
    elapsed = last.time - start
    if elapsed > limit + slack + _EPSILON:
        yield Problem(
            observed=f"still polling {elapsed:g}s after submit",
            expected=f"giving up at its timeout, {limit:g}s (+{slack:g}s for one poll)",
            path="PROTOCOL.md (Job.timeout)",
            fix="stop polling when the timeout has passed",
        )
    elif elapsed < limit - slack - _EPSILON:
        yield Problem(
            observed=f"gave up {elapsed:g}s after submit",
            expected=f"waiting until its timeout, {limit:g}s",
            path="PROTOCOL.md (Job.timeout)",
            fix="count waiting time in provider time and keep polling until the timeout",
        )


# ------------------------------------------------------------------------------------------------
# retries


def _error_path(run: Run, exchange: Exchange, key: str = "retryable") -> str:
    name = run.error_name(exchange)
    return f"errors.{name}.{key}" if name else "errors"


@check(
    "retry.transient",
    "429 and 5xx answers are retried until the request succeeds",
    lambda run: run.scenario.kind == "transient",
)
def _transient(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    rule = run.scenario.rules[0]
    name = rule["action"]["error"]
    if outcome.status != "succeeded":
        yield Problem(
            observed=f"gave up after {name} ({outcome.category}: {outcome.message or outcome.http_status})",
            expected=f"{name} retried ({rule['times']} times) and the job followed to success",
            path=f"errors.{name}.retryable",
            fix="retry 429 and 5xx answers with backoff, on submit and on status polls",
        )


@check(
    "retry.gives_up",
    "errors that never stop are retried a bounded number of times",
    lambda run: run.scenario.kind == "persistent",
)
def _gives_up(run: Run) -> Iterator[Problem]:
    limit = run.capabilities.max_retries + 1
    attempts = len(run.submits)
    name = run.scenario.rules[0]["action"]["error"]
    if attempts > limit:
        yield Problem(
            observed=f"{attempts} submit attempts",
            expected=f"at most {limit} (max_retries {run.capabilities.max_retries} + 1)",
            path=f"errors.{name}.retryable",
            fix="cap retries and report the failure",
        )
    elif attempts < 2:
        yield Problem(
            observed=f"{attempts} submit attempt(s): no retry",
            expected="at least one retry of a retryable error",
            path=f"errors.{name}.retryable",
            fix="retry 429 and 5xx answers with backoff",
        )


def _retried(run: Run) -> bool:
    return any(len(chain) > 1 for chain in run.chains())


@check("retry.backoff", "retries wait, and wait longer each time", _retried)
def _backoff(run: Run) -> Iterator[Problem]:
    for chain in run.chains():
        waits = [b.time - a.time for a, b in itertools.pairwise(chain)]
        if not waits:
            continue
        if any(w <= _EPSILON for w in waits):
            yield Problem(
                observed=f"{chain[0].method} {chain[0].path} retried without waiting (waits {_waits(waits)})",
                expected="a wait before every retry",
                path=_error_path(run, chain[0]),
                fix="wait before retrying (exponential backoff, e.g. 1s, 2s, 4s)",
            )
            return
        for earlier, later in itertools.pairwise(waits):
            if later < earlier - _EPSILON:
                yield Problem(
                    observed=f"waits {_waits(waits)} between attempts",
                    expected="waits that do not shrink (backoff)",
                    path=_error_path(run, chain[0]),
                    fix="grow the wait between retries (exponential backoff)",
                )
                return


def _waits(waits: list[float]) -> str:
    return ", ".join(f"{w:g}s" for w in waits)


def _retry_after(exchange: Exchange) -> float | None:
    value = exchange.response_headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@check(
    "retry.retry_after",
    "a Retry-After header is honoured",
    lambda run: any(_retry_after(e) is not None for e in run.api),
)
def _honours_retry_after(run: Run) -> Iterator[Problem]:
    api = run.api
    for before, after in itertools.pairwise(api):
        wait = _retry_after(before)
        if wait is None or before.status < 400:
            continue
        if after.time - before.time < wait - _EPSILON:
            path = (
                "errors.rate_limited.headers"
                if "Retry-After" in str(run.contract.raw["errors"])
                else ("rate_limits.retry_after")
            )
            yield Problem(
                observed=f"next request {after.time - before.time:g}s after a {before.status} "
                f"with Retry-After: {wait:g}",
                expected=f"at least {wait:g}s",
                path=path,
                fix="wait at least the Retry-After seconds before the next request",
            )
            return


def _refused_once(run: Run) -> bool:
    return any(e.status in _REFUSING or (e.status >= 400 and not run.retryable(e)) for e in run.api)


@check("retry.not_retryable", "400, 401, 402, 403 and errors marked not retryable are not retried", _refused_once)
def _not_retryable(run: Run) -> Iterator[Problem]:
    for chain in run.chains():
        first = chain[0]
        if len(chain) > 1 and (first.status in _REFUSING or not run.retryable(first)):
            yield Problem(
                observed=f"{first.method} {first.path} sent {len(chain)} times after {first.status}",
                expected=f"no retry after {first.status}",
                path=_error_path(run, first) if run.error_name(first) else "errors",
                fix=f"report a {first.status} at once; retrying cannot change the answer",
            )
            return


# ------------------------------------------------------------------------------------------------
# webhooks


def _webhook(run: Run) -> bool:
    return run.scenario.use_webhook and run.capabilities.webhooks


@check("webhook.ack", "the webhook receiver answers every callback with 2xx in time", _webhook)
def _ack(run: Run) -> Iterator[Problem]:
    for entry in run.webhooks():
        if entry.get("outcome") in ("retry", "gave_up"):
            yield Problem(
                observed=f"callback {entry.get('event')}, attempt {entry.get('attempt')}: {entry.get('error')}",
                expected="2xx within the delivery timeout",
                path="webhooks.delivery.timeout",
                fix="answer callbacks with 2xx at once and do the work afterwards",
            )
            return


@check("webhook.stops_polling", "polling stops once a webhook has delivered the result", _webhook)
def _webhook_stops(run: Run) -> Iterator[Problem]:
    for job in run.jobs:
        delivered = [
            e for e in run.webhooks(job) if e.get("event") in TERMINAL_STATES and e.get("outcome") == "delivered"
        ]
        if not delivered:
            continue
        # Journal order, not time: a callback and a poll can share one instant of provider time.
        order = {id(entry): i for i, entry in enumerate(run.journal)}
        first = min(order[id(e)] for e in delivered)
        late = [p for p in run.polls(job) if p.entry is not None and order.get(id(p.entry), -1) > first]
        if late:
            when = min(float(e["time"]) for e in delivered)
            yield Problem(
                observed=f"{len(late)} poll(s) after the terminal callback at {_t(run, when)}",
                expected="no poll once a callback reported the terminal state",
                path="webhooks.channels",
                fix="stop polling when the callback has delivered the result",
            )
            return


@check("webhook.idempotent", "duplicate callbacks do not repeat the work", _webhook)
def _idempotent(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    counts: dict[str, int] = {}
    for exchange in run.media:
        counts[exchange.path] = counts.get(exchange.path, 0) + 1
    repeated = {path: n for path, n in counts.items() if n > 1}
    if repeated:
        yield Problem(
            observed=f"downloads repeated: {_show(repeated)}",
            expected="each result downloaded once, however many callbacks arrive",
            path="webhooks.delivery",
            fix="deduplicate callbacks by job id and state before acting on them",
        )

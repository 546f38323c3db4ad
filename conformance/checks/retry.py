"""Retry checks: how the client rides out errors, against the contract's ``errors.<name>``
(``status``, ``retryable``, ``headers``) and ``rate_limits.retry_after``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

from veomock.conformance.checks.core import EPSILON, REFUSING, Problem, Run, check
from veomock.conformance.server import Exchange


def _error_path(run: Run, exchange: Exchange, key: str = "retryable") -> str:
    name = run.error_name(exchange)
    return f"errors.{name}.{key}" if name else "errors"


def _rode_out(run: Run, hit: Callable[[Exchange], bool], what: str, path: str, fix: str) -> Iterator[Problem]:
    """The job went on to success after the first exchange that ``hit`` marks: judged by the
    outcome, or from traffic alone by a later answer of the same kind that reached the client."""
    api, outcome = run.api, run.outcome
    first = next((i for i, e in enumerate(api) if hit(e)), None)
    if outcome is not None:
        gave_up = outcome.status != "succeeded"
        observed = f"gave up after {what} ({outcome.category}: {outcome.message or outcome.http_status})"
    else:
        gave_up = first is not None and not any(e.kind == api[first].kind and not e.failed for e in api[first + 1 :])
        observed = f"no {api[first].kind if first is not None else 'request'} answered after {what}"
    if gave_up:
        yield Problem(
            observed=observed, expected=f"{what} ridden out, and the job followed to success", path=path, fix=fix
        )


@check(
    "retry.transient",
    "429 and 5xx answers are retried until the request succeeds",
    lambda run: run.scenario.kind == "transient",
    cites=("errors",),
)
def _transient(run: Run) -> Iterator[Problem]:
    rule = run.scenario.rules[0]
    name = rule["action"]["error"]
    yield from _rode_out(
        run,
        lambda e: e.injected == name,
        f"{name} ({sum(r['times'] for r in run.scenario.rules if 'error' in r['action'])} times)",
        f"errors.{name}.retryable",
        "retry 429 and 5xx answers with backoff, on submit and on status polls, within a budget per request",
    )


def _polled_through_fault(run: Run) -> bool:
    return run.scenario.fault is not None and run.scenario.fault[0] == "status"


@check(
    "retry.transport",
    "a status poll that met a network fault (reset, hang, truncated or malformed answer) is retried",
    _polled_through_fault,
    cites=("lifecycle.states", "PROTOCOL.md (Outcome)"),
)
def _transport(run: Run) -> Iterator[Problem]:
    fault = run.scenario.fault
    assert fault is not None
    yield from _rode_out(
        run,
        lambda e: e.kind == "status" and e.fault is not None,
        f"a poll met a {fault[1]}",
        "lifecycle.states",
        "retry a status poll after a network error or an unreadable answer: polling is safe to repeat",
    )


@check(
    "retry.one_job",
    "a submit that may have created a job is not repeated: one job, one charge",
    lambda run: bool(run.created),
    cites=("billing", "PROTOCOL.md (Outcome)"),
)
def _one_job(run: Run) -> Iterator[Problem]:
    if len(run.created) > 1:
        price = run.prices.get(run.created[0], 0.0)
        yield Problem(
            observed=f"{len(run.created)} jobs created ({', '.join(run.created)}); the ledger charged "
            f"{run.charged:g} where one job costs {price:g}",
            expected="one job: a submit whose answer was lost may have created it",
            path="billing",
            fix="do not resubmit after a network error or an unreadable answer once the request was sent; "
            "retry a submit only on a connect error or an HTTP error answer",
        )


@check(
    "retry.gives_up",
    "errors that never stop are retried a bounded number of times",
    lambda run: run.scenario.kind == "persistent",
    cites=("errors", "PROTOCOL.md (Capabilities)"),
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


@check(
    "retry.backoff",
    "retries of one request wait, and wait longer each time unless Retry-After sets the wait",
    _retried,
    cites=("errors",),
)
def _backoff(run: Run) -> Iterator[Problem]:
    slack = run.slack
    for chain in run.chains():
        waits = [b.time - a.time for a, b in itertools.pairwise(chain)]
        if not waits:
            continue
        if any(w <= slack for w in waits):
            yield Problem(
                observed=f"{chain[0].method} {chain[0].path} retried without waiting (waits {_waits(waits)})",
                expected="a wait before every retry",
                path=_error_path(run, chain[0]),
                fix="wait before retrying (exponential backoff, e.g. 1s, 2s, 4s)",
            )
            return
        for i, (earlier, later) in enumerate(itertools.pairwise(waits), start=1):
            asked = _retry_after(chain[i])  # the answer before the later wait
            if asked is not None and later >= asked - slack:
                continue  # the server set this wait
            # Exact mode: each wait longer than the last. Real time: not shorter by more than the
            # tolerance (a jitter of scheduling can eat a small growth).
            if later <= earlier - slack + 2 * EPSILON:
                yield Problem(
                    observed=f"waits {_waits(waits)} between attempts of {chain[0].method} {chain[0].path}",
                    expected="each wait longer than the one before (backoff), unless Retry-After sets it",
                    path=_error_path(run, chain[0]),
                    fix="grow the wait between retries (exponential backoff, e.g. 1s, 2s, 4s)",
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
    cites=("errors", "rate_limits.retry_after"),
)
def _honours_retry_after(run: Run) -> Iterator[Problem]:
    api = run.api
    for before, after in itertools.pairwise(api):
        wait = _retry_after(before)
        if wait is None or before.status < 400:
            continue
        if after.time - before.time < wait - run.slack:
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
    return any(e.status in REFUSING or (e.status >= 400 and not run.retryable(e)) for e in run.api)


@check(
    "retry.not_retryable",
    "400, 401, 402, 403 and errors marked not retryable are not retried",
    _refused_once,
    cites=("errors",),
)
def _not_retryable(run: Run) -> Iterator[Problem]:
    for chain in run.chains():
        first = chain[0]
        if len(chain) > 1 and (first.status in REFUSING or not run.retryable(first)):
            yield Problem(
                observed=f"{first.method} {first.path} sent {len(chain)} times after {first.status}",
                expected=f"no retry after {first.status}",
                path=_error_path(run, first) if run.error_name(first) else "errors",
                fix=f"report a {first.status} at once; retrying cannot change the answer",
            )
            return

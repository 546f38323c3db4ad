"""Polling checks: when the client asks for its job's state, against the contract's
``lifecycle.poll_interval`` and ``lifecycle.states``, and its own timeout (PROTOCOL.md, Job).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from veomock.conformance.checks.core import Problem, Run, at, check
from veomock.conformance.server import Exchange
from veomock.contracts import TERMINAL_STATES


def _state_name(run: Run, exchange: Exchange) -> str:
    return run.contract.states.get(exchange.state or "", str(exchange.state))


def _polled(run: Run) -> bool:
    return bool(run.jobs) and any(run.polls(job) for job in run.jobs)


@check(
    "polling.interval",
    "status polls are no closer than the documented interval",
    _polled,
    cites=("lifecycle.poll_interval",),
)
def _interval(run: Run) -> Iterator[Problem]:
    contract = run.contract
    minimum = contract.poll_interval
    first = contract.first_poll_after
    for job in run.jobs:
        polls = run.polls(job)
        submit = next(e for e in run.submits if e.job == job)
        if first is not None and polls and polls[0].time - submit.time < first - run.slack:
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
            if before.failed:
                continue  # a retry after an error or a fault: the retry checks judge it
            gap = after.time - before.time
            if gap < minimum - run.slack:
                yield Problem(
                    observed=f"polls at {at(run, before.time)} and {at(run, after.time)}: {gap:g}s apart",
                    expected=f"at least {minimum:g}s between polls (provider time)",
                    path="lifecycle.poll_interval.min",
                    fix=f"wait at least {minimum:g}s between status polls",
                )
                return


@check(
    "polling.stops_at_terminal",
    "polling stops once a poll reports a terminal state",
    _polled,
    cites=("lifecycle.states",),
)
def _stops(run: Run) -> Iterator[Problem]:
    for job in run.jobs:
        polls = run.polls(job)
        for i, poll in enumerate(polls):
            if poll.state in TERMINAL_STATES and poll.fault is None and i + 1 < len(polls):
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
    cites=("PROTOCOL.md (Job)",),
    outcome=True,
)
def _timeout(run: Run) -> Iterator[Problem]:
    outcome = run.reported
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
    if elapsed > limit + slack + run.slack:
        yield Problem(
            observed=f"still polling {elapsed:g}s after submit",
            expected=f"giving up at its timeout, {limit:g}s (+{slack:g}s for one poll)",
            path="PROTOCOL.md (Job.timeout)",
            fix="stop polling when the timeout has passed",
        )
    elif elapsed < limit - slack - run.slack:
        yield Problem(
            observed=f"gave up {elapsed:g}s after submit",
            expected=f"waiting until its timeout, {limit:g}s",
            path="PROTOCOL.md (Job.timeout)",
            fix="count waiting time in provider time and keep polling until the timeout",
        )

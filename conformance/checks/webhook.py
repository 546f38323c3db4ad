"""Webhook checks: how the client takes callbacks, against the contract's ``webhooks.channels``
and ``webhooks.delivery``.
"""

from __future__ import annotations

from collections.abc import Iterator

from veomock.conformance.checks.core import Problem, Run, at, check, show
from veomock.contracts import TERMINAL_STATES


def _webhook(run: Run) -> bool:
    return run.scenario.use_webhook and run.capabilities.webhooks


@check(
    "webhook.ack",
    "the webhook receiver answers every callback with 2xx in time",
    _webhook,
    cites=("webhooks.delivery",),
)
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


@check(
    "webhook.stops_polling",
    "polling stops once a webhook has delivered the result",
    _webhook,
    cites=("webhooks.channels",),
)
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
                observed=f"{len(late)} poll(s) after the terminal callback at {at(run, when)}",
                expected="no poll once a callback reported the terminal state",
                path="webhooks.channels",
                fix="stop polling when the callback has delivered the result",
            )
            return


@check(
    "webhook.idempotent",
    "duplicate callbacks do not repeat the work",
    _webhook,
    cites=("webhooks.delivery",),
    outcome=True,
)
def _idempotent(run: Run) -> Iterator[Problem]:
    outcome = run.outcome
    assert outcome is not None
    counts: dict[str, int] = {}
    for exchange in run.media:
        counts[exchange.path] = counts.get(exchange.path, 0) + 1
    repeated = {path: n for path, n in counts.items() if n > 1}
    if repeated:
        yield Problem(
            observed=f"downloads repeated: {show(repeated)}",
            expected="each result downloaded once, however many callbacks arrive",
            path="webhooks.delivery",
            fix="deduplicate callbacks by job id and state before acting on them",
        )

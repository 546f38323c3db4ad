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
    "webhook.requested",
    "the submit asks for callbacks to the job's webhook URL, as a channel of the contract says",
    _webhook,
    cites=("webhooks.channels",),
)
def _requested(run: Run) -> Iterator[Problem]:
    wanted = run.job.webhook_url
    for exchange in run.submits:
        ctx = {"body": exchange.body if isinstance(exchange.body, dict) else {}, "header": exchange.headers}
        for channel in run.contract.webhook_channels:
            if channel.models and run.scenario.model not in channel.models:
                continue
            if channel.url_from.render(ctx) == wanted:
                return
    ways = ", ".join(f"{c.name} ({c.url_from.source})" for c in run.contract.webhook_channels)
    yield Problem(
        observed=f"no submit carried the webhook URL {wanted}",
        expected=f"the URL where a channel reads it: {ways}",
        path="webhooks.channels",
        fix="put the job's webhook_url where the provider reads the callback URL, with the fields that switch it on",
    )


@check(
    "webhook.ack",
    "the webhook receiver acknowledges every callback as the provider documents, in time",
    _webhook,
    cites=("webhooks.delivery.success", "webhooks.delivery.timeout"),
)
def _ack(run: Run) -> Iterator[Problem]:
    delivery = run.contract.webhooks.get("delivery") or {}
    success = "HTTP 200 exactly" if str(delivery.get("success")) == "200" else "any 2xx"
    for entry in run.webhooks():
        if entry.get("outcome") in ("retry", "gave_up"):
            status = entry.get("status")
            timed_out = not isinstance(status, int) or status == 0
            yield Problem(
                observed=f"callback {entry.get('event')}, attempt {entry.get('attempt')}: {entry.get('error')}",
                expected=f"{success} within {delivery.get('timeout', '?')} s",
                path="webhooks.delivery.timeout" if timed_out else "webhooks.delivery.success",
                fix="answer callbacks at once, as the provider documents, and do the work afterwards",
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

"""Playback: a recorded session becomes a scenario, so what happened in production replays offline.

A HAR session (``veomock record``, veomock's own journal, or any tool's export) is read against a
contract and turned into scenario rules (``mocks.scenarios``), in the order things happened, one
sequence per operation:

- a submit that created a job becomes ``{"timing": {"queued": s, "running": s}, "fail": CODE}``
  (or ``"state"``): the job keeps the states the client saw, at the same offsets on the mock clock,
  and ends as it ended, with the failure's text where it differs from the code's own;
- an answer that was one of the contract's errors becomes ``{"error": NAME}`` with its message and
  ``Retry-After``; an answer that never came (HAR status 0) becomes ``{"reset": true}``;
- a normal answer between two of those is ``{"pass": true}``, so the errors strike the same
  requests again (the third poll, not the first).

A job's times are the provider's own where its status bodies show them (created, started,
completed), else when the client first saw each state, so a client that polls at the same offsets
sees the same answers. A job still unfinished when the session ends keeps its last state at least
that long. Rules match any API key; a reset of the mock clears them, as it clears every rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from veomock.contracts import CANONICAL_STATES, TERMINAL_STATES, Contract, Operation
from veomock.mocks.har import (
    Exchange,
    HarError,
    extract,
    find_route,
    job_fields,
    literals,
    placeholders,
    read_har,
    request_job_id,
    status_state,
    value_at,
)

__all__ = ["Playback", "ReplayedJob", "playback"]


@dataclass
class ReplayedJob:
    """What the session shows of one job: when each state was first seen, and how it ended."""

    id: str
    submitted: float
    seen: list[tuple[float, str]] = field(default_factory=list)  # (time, canonical state), first sightings
    code: str | int | None = None
    message: str | None = None  # the failure's text, where `result.failure_message` finds one
    last: float | None = None  # when the session last polled it
    created: float | None = None  # the provider's own times, where its bodies show them
    entered: dict[str, float] = field(default_factory=dict)

    def see(self, at: float, state: str) -> None:
        if state not in (s for _, s in self.seen):
            self.seen.append((at, state))

    def first(self, *states: str) -> tuple[float, str] | None:
        return next(((t, s) for t, s in self.seen if s in states), None)

    def _when(self, state: str) -> float | None:
        """When the job entered ``state``: the provider's time where a body shows it, else when the
        client first saw it."""
        found = self.first(state)
        return self.entered.get(state, found[0] if found else None)

    def action(self, contract: Contract) -> dict[str, Any]:
        """The submit's action: the timing the client saw and the end it saw."""
        end = self.first(*TERMINAL_STATES)
        start = self.created if self.created is not None else self.submitted
        running, done = self._when("running"), self._when(end[1]) if end else None
        timing: dict[str, float] = {}
        if running is not None:
            timing["queued"] = round(max(0.0, running - start), 3)
        if done is not None:
            timing["running" if running is not None else "queued"] = round(max(0.0, done - (running or start)), 3)
            if running is None:
                timing["running"] = 0.0
        if end is None and self.seen and self.last is not None:
            # Unfinished when the session ended: its last state lasts at least that long (or as
            # long as the contract allows, if longer), and the rest is the contract's timing.
            state = self.seen[-1][1]
            entered = self._when(state) or start
            if state in contract.timing:
                timing[state] = round(max(contract.timing[state][1], self.last - entered), 3)
        out: dict[str, Any] = {"timing": timing} if timing else {}
        if end is not None:
            failure = contract.failure(self.code) if self.code is not None else None
            if failure is not None and end[1] != "succeeded":
                out["fail"] = str(failure.code)
                if self.message and self.message != failure.message:
                    out["message"] = self.message  # a contract may name failures no code shows
            else:
                out["state"] = end[1]
        return out or {"pass": True}

    def to_json(self) -> dict[str, Any]:
        seen = [{"at": round(t - self.submitted, 3), "state": s} for t, s in self.seen]
        return {"id": self.id, "seen": seen, "code": self.code}


@dataclass
class Playback:
    provider: str
    rules: list[dict[str, Any]]
    jobs: list[ReplayedJob]
    skipped: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "rules": self.rules,
            "jobs": [j.to_json() for j in self.jobs],
            "skipped": self.skipped,
        }


def _provider(contracts: Mapping[str, Contract], exchanges: list[Exchange], name: str | None) -> Contract:
    if name is not None:
        if name not in contracts:
            raise HarError(f"provider {name!r} is not served; served: {', '.join(contracts)}")
        return contracts[name]
    counts = {
        p: sum(1 for x in exchanges if (r := find_route(c, x.method, x.path)) is not None and r[0] is not None)
        for p, c in contracts.items()
    }
    best = max(counts.values(), default=0)
    if best == 0:
        raise HarError(f"no request of the session is a route of {', '.join(contracts)}; is it the right file?")
    winners = [p for p, n in counts.items() if n == best]
    if len(winners) > 1:
        raise HarError(f"the session fits {' and '.join(winners)} equally; name the provider")
    return contracts[winners[0]]


def _error_action(contract: Contract, x: Exchange) -> dict[str, Any] | None:
    """The contract error this answer was (best by its fixed values), as an action; None if none fits."""
    candidates = [spec for spec in contract.errors.values() if spec.status == x.status]
    if not candidates:
        return None

    def score(spec: Any) -> int:
        fixed = list(literals(spec.body.source))
        return sum(1 for path, value in fixed if value_at(x.response_body, path, object()) == value)

    spec = max(candidates, key=score)
    action: dict[str, Any] = {"error": spec.name}
    where = placeholders(spec.body.source).get("message")
    message = value_at(x.response_body, where) if where is not None else None
    if isinstance(message, str) and message:
        action["message"] = message
    retry = x.response_headers.get("retry-after", "").strip()
    if retry.isdigit():
        action["retry_after"] = int(retry)
    return action


def _epoch(value: Any) -> float | None:
    """A time as a body shows it (epoch seconds or milliseconds, ISO 8601, ``2026-05-22 13:19:23``)."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def _provider_times(contract: Contract, state: str, body: Any) -> dict[str, float]:
    """The job times that the status body of ``state`` shows, in epoch seconds."""
    fields = job_fields(contract.status[state].body.source)
    out: dict[str, float] = {}
    for name in ("created_at", "started_at", "updated_at", "completed_at"):
        if name in fields:
            moment = _epoch(value_at(body, fields[name]))
            if moment is not None:
                out[name] = moment
    return out


def _status_of(contract: Contract, body: Any) -> tuple[str, str | int | None] | None:
    """The canonical state (and failure code) that a status body shows, if it shows a known one."""
    states, _, code = status_state(contract, body)
    if not states:
        return None
    if code is None:  # a contract whose bodies carry no failure code field: where `result` says it is
        found = extract(body, str(contract.raw.get("result", {}).get("failure_code", "")))
        code = found[0] if found and isinstance(found[0], str | int) else None
    failure = contract.failure(code) if code is not None else None
    if len(states) > 1 and failure is not None and failure.state in states:
        return failure.state, code
    return min(states, key=CANONICAL_STATES.index), code


def _failure_message(contract: Contract, body: Any) -> str | None:
    where = contract.raw.get("result", {}).get("failure_message")
    found = extract(body, str(where)) if where else []
    return found[0] if found and isinstance(found[0], str) else None


def _merge(rules: list[dict[str, Any]], rule: dict[str, Any]) -> None:
    """Append ``rule``, folding it into the last rule of its operation when that one does the same
    (each operation's rules are a sequence of their own: a rule matches its operation only)."""
    same = [r for r in rules if r["operation"] == rule["operation"]]
    if same and same[-1]["action"] == rule["action"]:
        same[-1]["times"] += 1
    else:
        rules.append(rule)


def playback(contracts: Mapping[str, Contract], har: Any, provider: str | None = None) -> Playback:
    """The scenario of a HAR session (text, bytes or parsed): rules in order, and the jobs it shows."""
    exchanges = read_har(har)
    contract = _provider(contracts, exchanges, provider)
    submit_id = job_fields(contract.submit.body.source).get("id")
    rules: list[dict[str, Any]] = []
    jobs: dict[str, ReplayedJob] = {}
    steps: list[tuple[Operation, dict[str, Any], ReplayedJob | None]] = []
    skipped: list[str] = []
    for x in exchanges:
        op, params = find_route(contract, x.method, x.path) or (None, {})
        if op is None:
            continue  # another service's request, or a media download
        if x.status == 0:
            steps.append((op, {"reset": True}, None))
            continue
        error = _error_action(contract, x) if x.status >= 400 else None
        if x.status >= 400 and error is None:
            skipped.append(f"{x.method} {x.path} answered {x.status}, which no error of the contract has")
        if error is not None or x.status >= 400:
            steps.append((op, error or {"pass": True}, None))
            continue
        if op.kind == "submit":
            ident = value_at(x.response_body, submit_id) if submit_id is not None else None
            if ident is None:
                skipped.append(f"{x.method} {x.path}: no job id in the answer; the job is not replayed")
                steps.append((op, {"pass": True}, None))
                continue
            created = jobs[str(ident)] = ReplayedJob(str(ident), x.time)
            created.see(x.time, "queued")
            steps.append((op, {}, created))
        elif op.kind == "status":
            seen = _status_of(contract, x.response_body)
            ident = _request_job(op, x, params, contract)
            polled = jobs.get(ident) if ident is not None else None
            if seen is not None and polled is not None:
                polled.see(x.time, seen[0])
                polled.last = x.time
                times = _provider_times(contract, seen[0], x.response_body)
                polled.created = times.get("created_at", polled.created)
                if "started_at" in times:
                    polled.entered.setdefault("running", times["started_at"])
                if "completed_at" in times and seen[0] in TERMINAL_STATES:
                    polled.entered.setdefault(seen[0], times["completed_at"])
                if "updated_at" in times:
                    polled.entered.setdefault(seen[0], times["updated_at"])
                if seen[0] in TERMINAL_STATES and seen[1] is not None and polled.code is None:
                    polled.code = seen[1]
                    polled.message = _failure_message(contract, x.response_body)
            steps.append((op, {"pass": True}, None))
        else:
            steps.append((op, {"pass": True}, None))
    for op, action, job in steps:
        if job is not None:
            action = job.action(contract)
        _merge(rules, {"provider": contract.provider, "operation": op.name, "times": 1, "action": action})
    while True:  # trailing normal answers change nothing
        tails = {r["operation"]: i for i, r in enumerate(rules)}
        drop = [i for i in tails.values() if rules[i]["action"] == {"pass": True}]
        if not drop:
            break
        rules = [r for i, r in enumerate(rules) if i not in drop]
    return Playback(contract.provider, rules, list(jobs.values()), skipped)


def _request_job(op: Operation, x: Exchange, params: Mapping[str, str], contract: Contract) -> str | None:
    ident = request_job_id(op, x, params)
    if ident is not None:
        return ident
    where = job_fields(contract.status["running"].body.source).get("id")
    found = value_at(x.response_body, where) if where is not None else None
    return None if found is None else str(found)

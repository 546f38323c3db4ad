"""Balances per API key, charged and refunded as a contract's ``billing`` section says.

A job's charge is a function of its state at a given time (charged at submit or at completion,
given back in the refund states), so the ledger never misses a transition: it settles a job
once that job has ended and recomputes only the jobs still running.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from veomock.contracts import TERMINAL_STATES
from veomock.mocks.lifecycle import Job

__all__ = ["Ledger"]


@dataclass
class _Account:
    initial: float
    settled: float = 0.0
    pending: float = 0.0
    open: dict[str, Job] = field(default_factory=dict)
    ends: list[float] = field(default_factory=list)  # heap of the end times in ``ending``
    ending: dict[float, list[Job]] = field(default_factory=dict)  # end time -> the open jobs filed under it


class Ledger:
    """Per-key accounts. Open jobs wait by end time (a heap of bare floats, cheap to compare, and
    the jobs filed under each), so a balance look-up settles only the jobs that ended since the
    last one (O(log n)), however many jobs are in flight."""

    def __init__(self, billing: dict[str, Any]) -> None:
        self.initial = float(billing["initial_balance"])
        self.charge_at = billing["charge_at"]
        self.refund_states = frozenset(billing.get("refund_states", []))
        self._accounts: dict[str, _Account] = {}

    def _account(self, key: str) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account(self.initial)
        return account

    def charge(self, job: Job, now: float) -> float:
        state = job.state_at(now)
        if state in self.refund_states:
            return 0.0
        if self.charge_at == "completion" and state not in TERMINAL_STATES:
            return 0.0
        return job.price

    def _open_charge(self, job: Job) -> float:
        """What a job that has not ended costs: its price when charged at submit, else nothing."""
        return job.price if self.charge_at == "submit" else 0.0

    def _final_charge(self, job: Job) -> float:
        """What a job that has ended costs: nothing if it ended in a refund state, else its price."""
        return 0.0 if job.states[-1] in self.refund_states else job.price

    @staticmethod
    def _end(job: Job) -> float:
        """When a job ends (``inf`` while no end is planned): the time it is filed under."""
        end = job.terminal_at()
        return math.inf if end is None else end

    def _push(self, account: _Account, job: Job) -> None:
        end = self._end(job)
        filed = account.ending.get(end)
        if filed is None:
            account.ending[end] = [job]
            heapq.heappush(account.ends, end)
        else:
            filed.append(job)

    def _settle(self, account: _Account, now: float) -> None:
        ends, ending, open_jobs = account.ends, account.ending, account.open
        while ends and ends[0] <= now:
            end = heapq.heappop(ends)
            for job in ending.pop(end):
                if open_jobs.get(job.id) is not job or job.terminal_at() != end:
                    continue  # settled already, or rescheduled to another end by a forced state
                # It ended at ``end``, no later than ``now``: it is in its last, terminal state.
                account.settled += self._final_charge(job)
                account.pending -= self._open_charge(job)
                del open_jobs[job.id]

    def record(self, job: Job) -> None:
        account = self._account(job.key)
        account.open[job.id] = job
        account.pending += self._open_charge(job)
        self._push(account, job)

    def rescheduled(self, job: Job) -> None:
        """A job's timeline changed (a forced state): file it under its new end time."""
        account = self._accounts.get(job.key)
        if account is not None and job.id in account.open:
            self._push(account, job)

    def _charged(self, account: _Account, now: float) -> float:
        self._settle(account, now)
        return round(account.settled + account.pending, 6)

    def charged(self, key: str, now: float) -> float:
        return self._charged(self._account(key), now)

    def remaining(self, key: str, now: float) -> float:
        account = self._account(key)
        return round(account.initial - self._charged(account, now), 6)

    def set_balance(self, key: str, amount: float, now: float) -> None:
        """Set what ``key`` has left now (a top-up or a drain, for tests and scenarios)."""
        account = self._account(key)
        account.initial = amount + self.charged(key, now)

    def open_count(self, key: str, now: float) -> int:
        """How many jobs of ``key`` have not ended at ``now`` (what a concurrency cap counts)."""
        account = self._account(key)
        self._settle(account, now)
        return len(account.open)

    def next_end(self, key: str, now: float) -> float | None:
        """When the first open job of ``key`` ends, if any is planned to."""
        account = self._account(key)
        self._settle(account, now)
        ends = [job.terminal_at() for job in account.open.values()] if len(account.open) < 64 else []
        known = [end for end in ends if end is not None]
        if known:
            return min(known)
        return account.ends[0] if account.ends and account.ends[0] != math.inf else None

    def forget(self, key: str) -> None:
        """Drop ``key``'s account: it starts again from the initial balance."""
        self._accounts.pop(key, None)

    def view(self, key: str, now: float) -> dict[str, float]:
        account = self._account(key)
        charged = self.charged(key, now)
        return {"remaining": round(account.initial - charged, 6), "initial": account.initial, "charged": charged}

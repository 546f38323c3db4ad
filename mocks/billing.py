"""Balances per API key, charged and refunded as a contract's ``billing`` section says.

A job's charge is a function of its state at a given time (charged at submit or at completion,
given back in the refund states), so the ledger never misses a transition: it settles a job
once that job has ended and recomputes only the jobs still running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts import TERMINAL_STATES
from mocks.lifecycle import Job

__all__ = ["Ledger"]


@dataclass
class _Account:
    initial: float
    settled: float = 0.0
    open: list[Job] = field(default_factory=list)


class Ledger:
    def __init__(self, billing: dict[str, Any]) -> None:
        self.initial = float(billing["initial_balance"])
        self.charge_at = billing["charge_at"]
        self.refund_states = frozenset(billing.get("refund_states", []))
        self._accounts: dict[str, _Account] = {}

    def _account(self, key: str) -> _Account:
        if key not in self._accounts:
            self._accounts[key] = _Account(self.initial)
        return self._accounts[key]

    def charge(self, job: Job, now: float) -> float:
        state = job.state_at(now)
        if state in self.refund_states:
            return 0.0
        if self.charge_at == "completion" and state not in TERMINAL_STATES:
            return 0.0
        return job.price

    def _settle(self, account: _Account, now: float) -> float:
        pending = 0.0
        still_open = []
        for job in account.open:
            if job.state_at(now) in TERMINAL_STATES:
                account.settled += self.charge(job, now)
            else:
                pending += self.charge(job, now)
                still_open.append(job)
        account.open = still_open
        return pending

    def record(self, job: Job) -> None:
        self._account(job.key).open.append(job)

    def charged(self, key: str, now: float) -> float:
        account = self._account(key)
        pending = self._settle(account, now)
        return round(account.settled + pending, 6)

    def remaining(self, key: str, now: float) -> float:
        return round(self._account(key).initial - self.charged(key, now), 6)

    def set_balance(self, key: str, amount: float, now: float) -> None:
        """Set what ``key`` has left now (a top-up or a drain, for tests and scenarios)."""
        account = self._account(key)
        account.initial = amount + self.charged(key, now)

    def open_jobs(self, key: str, now: float) -> list[Job]:
        """The jobs of ``key`` that have not ended at ``now`` (what a concurrency cap counts)."""
        account = self._account(key)
        self._settle(account, now)
        return list(account.open)

    def forget(self, key: str) -> None:
        """Drop ``key``'s account: it starts again from the initial balance."""
        self._accounts.pop(key, None)

    def view(self, key: str, now: float) -> dict[str, float]:
        account = self._account(key)
        charged = self.charged(key, now)
        return {"remaining": round(account.initial - charged, 6), "initial": account.initial, "charged": charged}

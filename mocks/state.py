"""The mock's state: contracts, clocks, jobs, balances and the journal, with no HTTP in sight.

The Starlette app (``mocks.app``) and the Python API both act through :class:`MockState`, so a
test can drive the mock in-process exactly as a client does over a socket.

This is the seam between the engine and where its state lives. Handlers hold only what no reset
changes (a contract and its validators) and reach everything else through the state, per tenant
(API key), with the one instant ``now(key)`` they read at the start of a request:

- clocks: :meth:`MockState.now`, ``clocks`` (:class:`~mocks.clock.Clocks`: the default and the
  tenants' own);
- jobs: :meth:`create_job`, :meth:`job`, :meth:`find_job`, :meth:`jobs_of`, :meth:`force`,
  :meth:`view`, :meth:`media_expired`;
- balances: :meth:`remaining`, :meth:`balance`, :meth:`set_balance`;
- limits: ``limits`` (:class:`~mocks.limits.Limiter`: ``admit``, ``concurrency``);
- journal: :meth:`record`, ``journal``;
- webhook schedule: ``webhooks`` (:class:`~mocks.webhooks.Dispatcher`: ``watch``, ``observed``,
  ``run_due``, ``outstanding``);
- tenants as a whole: :meth:`forget` (one key) and :meth:`reset` (everything).

The in-memory store below is the default; a store shared by several processes implements the
same calls over its own structures (nothing else reads ``jobs`` or the ledgers directly).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, TypeVar

from veomock.contracts import Contract, Model
from veomock.mocks.billing import Ledger
from veomock.mocks.changes import Changes
from veomock.mocks.clock import Clock, Clocks
from veomock.mocks.ids import IdMaker, id_maker
from veomock.mocks.journal import JOURNAL_BYTES, Journal
from veomock.mocks.lifecycle import Job, Outcome, plan_timeline
from veomock.mocks.limits import Limiter
from veomock.mocks.longlived import LongLived
from veomock.mocks.retention import JobCap, kept_params
from veomock.mocks.scenarios import Scenarios
from veomock.mocks.validation import RequestValidator, validator_for
from veomock.mocks.webhooks import Dispatcher

__all__ = ["MockState", "ProviderRuntime", "UnknownJob"]

_SUCCEEDED = Outcome("succeeded")
_T = TypeVar("_T")


class UnknownJob(KeyError):
    """No job with this id (for this provider and key)."""


@dataclass
class ProviderRuntime:
    """What one provider's jobs draw on until the next reset: random source, ledger, timing, ids."""

    contract: Contract
    rng: random.Random
    ledger: Ledger
    timing: dict[str, tuple[float, float]]
    make_id: IdMaker

    @property
    def name(self) -> str:
        return self.contract.provider


@dataclass
class MockState:
    contracts: Mapping[str, Contract]
    clock: Clock = field(default_factory=Clock)
    seed: int = 0
    max_body_bytes: int = 1 << 20
    journal_size: int = 10_000
    journal_bytes: int = JOURNAL_BYTES  # about what the journal holds at most (mocks/journal.py)
    max_jobs: int | None = None  # jobs held at most: a new one evicts the oldest ended (mocks/retention.py)
    allow_http_webhooks: bool = False  # plain http callbacks to loopback, where a channel wants https
    webhook_ca: str | None = None  # a PEM file of extra CAs trusted for https callbacks
    chaos: dict[str, Any] | None = None  # a chaos profile that survives reset (veomock serve --chaos)
    freeze_every: int | None = 1000  # jobs between moves of live objects out of the collector's sight
    clocks: Clocks = field(init=False)  # the default clock (``clock``) and the tenants' own
    providers: dict[str, ProviderRuntime] = field(init=False)
    _validators: dict[str, dict[str, RequestValidator]] = field(init=False, repr=False)
    jobs: dict[tuple[str, str], Job] = field(init=False)
    journal: Journal = field(init=False)
    webhooks: Dispatcher = field(init=False)
    longlived: LongLived = field(init=False)
    job_cap: JobCap = field(init=False)
    scenarios: Scenarios = field(init=False)
    limits: Limiter = field(init=False)
    changes: Changes = field(init=False)  # bumped on every change, for the inspector's live view

    def __post_init__(self) -> None:
        self.clocks = Clocks(self.clock)
        self._validators = {
            name: {m: validator_for(model) for m, model in contract.models.items()}
            for name, contract in self.contracts.items()
        }
        self.changes = Changes()
        self.webhooks = Dispatcher(self, ca_file=self.webhook_ca)
        self.longlived = LongLived(self.freeze_every)
        self._fresh()

    def reset(self) -> None:
        """Forget every job, balance, limit, rule, webhook and journal entry; re-seed the random
        sources; put the clock back as it was made and drop the tenants' own clocks."""
        self.clocks.reset()
        self._fresh()

    def _fresh(self) -> None:
        self.providers = {
            name: ProviderRuntime(
                contract=contract,
                rng=random.Random(f"{self.seed}:{name}"),
                ledger=Ledger(contract.billing),
                timing=dict(contract.timing),
                make_id=id_maker(contract.raw["job_id"]["format"]),
            )
            for name, contract in self.contracts.items()
        }
        self.jobs = {}
        self.job_cap = JobCap()
        self.longlived.release()
        self.journal = Journal(self.journal_size, self.journal_bytes)
        self.webhooks.reset()
        self.scenarios = Scenarios(self.contracts, chaos=self.chaos)
        self.limits = Limiter(self.contracts)
        self.changes.bump()

    def now(self, key: str | None = None) -> float:
        """Provider time on ``key``'s clock (its own, else the default). A handler reads it once
        and passes that instant down."""
        tenants = self.clocks.tenants
        if tenants and key is not None:
            clock = tenants.get(key)
            if clock is not None:
                return clock.now()
        return self.clock.now()

    def configure(self, change: Callable[[], _T]) -> _T:
        """Run a control call on the settings (rules, chaos, webhook targets): in memory, just
        run it; a store shared by several workers reads them first and shares what it changed."""
        return change()

    def read_settings(self, read: Callable[[], _T]) -> _T:
        """Read the settings for a control call that changes none: in memory, just read them; a
        shared store takes the newest first, and shares nothing."""
        return read()

    def runtime(self, provider: str) -> ProviderRuntime:
        return self.providers[provider]

    def validators(self, provider: str) -> dict[str, RequestValidator]:
        """``provider``'s request validators by model: pure, built once, kept across resets."""
        return self._validators[provider]

    # -- balances --------------------------------------------------------------------------------

    def remaining(self, provider: str, key: str, now: float) -> float:
        """What ``key`` has left at ``provider`` at ``now``."""
        return self.providers[provider].ledger.remaining(key, now)

    def balance(self, provider: str, key: str, now: float) -> dict[str, float]:
        """``{"remaining", "initial", "charged"}`` for ``key`` at ``provider`` at ``now``."""
        return self.providers[provider].ledger.view(key, now)

    def set_balance(self, provider: str, key: str, amount: float, now: float) -> None:
        """Set what ``key`` has left at ``provider`` at ``now``."""
        self.providers[provider].ledger.set_balance(key, amount, now)

    def create_job(
        self,
        provider: str,
        model: Model,
        key: str,
        params: dict[str, Any],
        outcome: Outcome | None = None,
        timing: Mapping[str, tuple[float, float]] | None = None,
        price: float | None = None,
        now: float | None = None,
    ) -> Job:
        """A new job of ``model`` for ``key``, created at ``now`` (the clock's time by default)."""
        runtime = self.providers[provider]
        contract = runtime.contract
        now = self.now() if now is None else now
        rng = runtime.rng
        make = runtime.make_id
        job_id = make(rng, now, model.name)
        while (provider, job_id) in self.jobs:
            job_id = make(rng, now, model.name)
        outcome = outcome or _SUCCEEDED
        timing_now = {**runtime.timing, **timing} if timing else runtime.timing
        # Positional, in field order (id, provider, model, key, namespace, params, price, created_at,
        # timeline, outcome, result_path): this runs once per submit.
        job = Job(
            job_id,
            provider,
            model.name,
            key,
            key,
            kept_params(params),
            model.price(params) if price is None else price,
            now,
            plan_timeline(now, timing_now, rng, outcome),
            outcome,
            contract.media_url(job_id),
        )
        self.jobs[(provider, job_id)] = job
        runtime.ledger.record(job)
        self.job_cap.added(self.jobs, (provider, job_id), self.max_jobs, now)
        self.longlived.added()
        return job

    def force(self, job: Job, target: str, outcome: Outcome | None = None, now: float | None = None) -> None:
        """Put ``job`` in ``target`` at ``now`` (a terminal state ends it with ``outcome``); balances follow."""
        job.force(target, self.now(job.key) if now is None else now, outcome)
        self.providers[job.provider].ledger.rescheduled(job)
        self.changes.bump()

    def job(self, provider: str, job_id: str, key: str | None = None) -> Job:
        job = self.jobs.get((provider, job_id))
        if job is None or (key is not None and job.key != key):
            raise UnknownJob(job_id)
        return job

    def jobs_of(self, provider: str | None = None, key: str | None = None) -> Iterator[Job]:
        """Every job, or those of ``provider`` and/or ``key``, oldest first."""
        for job in self.jobs.values():
            if (provider is None or job.provider == provider) and (key is None or job.key == key):
                yield job

    def forget(self, key: str) -> None:
        """Forget one API key's namespace: its jobs, balances, limits, clock, rules, webhooks and
        journal entries."""
        for ident in [ident for ident, job in self.jobs.items() if job.key == key]:
            del self.jobs[ident]
        for runtime in self.providers.values():
            runtime.ledger.forget(key)
        self.limits.forget(key)
        self.clocks.drop(key)
        self.scenarios.forget(key)
        self.webhooks.forget(key)
        self.journal.drop(key)

    def find_job(self, job_id: str) -> Job:
        for (_, jid), job in self.jobs.items():
            if jid == job_id:
                return job
        raise UnknownJob(job_id)

    def view(
        self, job: Job, base_url: str, at: float | None = None, fields: Set[str] | None = None
    ) -> dict[str, Any]:
        """The job as templates see it now (or at provider time ``at``); ``fields`` as in :meth:`Job.view`."""
        contract = self.providers[job.provider].contract
        view = job.view(self.now(job.key) if at is None else at, contract.states, contract.media_type, fields)
        if "result_urls" in view:
            view["result_urls"] = [base_url + path for path in view["result_urls"]]
        return view

    def media_expired(self, job: Job, now: float) -> bool:
        """Whether ``job``'s result URLs have expired at ``now``."""
        after = self.providers[job.provider].contract.media_expires_after
        done = job.terminal_at()
        return after is not None and done is not None and now > done + after

    def record(self, entry: dict[str, Any], now: float | None = None) -> None:
        """Journal ``entry`` at ``now``, the instant its request was answered at."""
        if "time" not in entry:
            entry["time"] = self.now(entry.get("key")) if now is None else now
        self.journal.append(entry)
        self.changes.bump()

    def set_timing(self, provider: str, state: str, low: float, high: float) -> None:
        """Override how long jobs of ``provider`` stay queued or running (provider seconds)."""
        if state not in ("queued", "running"):
            raise ValueError(f"timing applies to 'queued' or 'running', not {state!r}")
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low <= high, got {low}, {high}")
        self.providers[provider].timing[state] = (low, high)

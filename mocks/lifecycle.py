"""Jobs as pure state machines: a job's state is a function of its timeline and the time.

A timeline is a sorted list of ``(start, canonical_state)``. Planning fills it at submit time
from the contract's timing and the seeded random source; forcing a state rewrites the part of
it that lies after "now". Nothing here reads a clock: callers pass the time in.
"""

from __future__ import annotations

import bisect
import random
import sys
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

from veomock.contracts import TERMINAL_STATES

__all__ = ["Job", "Outcome", "plan_timeline"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a job ends: a canonical terminal state and, for failures, the provider's code."""

    state: str = "succeeded"
    code: str | int | None = None
    message: str | None = None


def plan_timeline(
    created: float,
    timing: dict[str, tuple[float, float]],
    rng: random.Random,
    outcome: Outcome,
    scale: float = 1.0,
) -> list[tuple[float, str]]:
    (q_low, q_high), (r_low, r_high) = timing["queued"], timing["running"]
    queued = (q_low + (q_high - q_low) * rng.random()) * scale  # rng.uniform, one call less
    running = (r_low + (r_high - r_low) * rng.random()) * scale
    return [(created, "queued"), (created + queued, "running"), (created + queued + running, outcome.state)]


# Job fields whose view is the attribute itself, whatever the time.
_TIMELESS = frozenset({"id", "model", "params", "price", "created_at"})
# Values many jobs hold alike, kept once (up to a bound): sequences of states (most jobs go
# through ("queued", "running", "succeeded")), the parts of result paths around the id, prices.
T = TypeVar("T")
_SHARED: dict[Any, Any] = {}
_PRICES: dict[float, float] = {}
_BOUND = 4096


def _shared(value: T, table: dict[Any, Any] = _SHARED) -> T:
    kept: T = table.setdefault(value, value) if len(table) < _BOUND else table.get(value, value)
    return kept


_SHORT = 32  # parameter strings up to this length are interned ("16:9", "fast", "1080p")


class Job:
    """A job: what was asked, by whom, and its timeline (when it enters each canonical state).

    A mock holds every job until a reset, a million of them in a long load test, so a job is
    kept compact: slots; the timeline as a tuple of start times and a shared tuple of states
    (``timeline`` gives the pairs); the result path as the job id between a shared head and tail;
    the key, short parameter strings and the price shared with every other job that has them.
    """

    __slots__ = (
        "created_at",
        "id",
        "key",
        "last_status",
        "media",
        "model",
        "namespace",
        "outcome",
        "params",
        "price",
        "provider",
        "revision",
        "states",
        "times",
    )
    times: tuple[float, ...]
    states: tuple[str, ...]
    media: tuple[str, str | None]  # (head, tail) around the id, or (the whole path, None)

    def __init__(
        self,
        id: str,
        provider: str,
        model: str,
        key: str,
        namespace: str,
        params: dict[str, Any],
        price: float,
        created_at: float,
        timeline: Sequence[tuple[float, str]],
        outcome: Outcome,
        result_path: str = "",
        revision: int = 0,
        last_status: tuple[Any, bytes] | None = None,
    ) -> None:
        self.id = id
        self.provider = provider
        self.model = model
        self.key = sys.intern(key)
        self.namespace = self.key if namespace == key else sys.intern(namespace)
        for name, value in params.items():
            if type(value) is str and len(value) <= _SHORT:
                params[name] = sys.intern(value)
        self.params = params
        self.price = _shared(price, _PRICES)
        self.created_at = created_at
        self.timeline = timeline  # sets times and states
        self.outcome = outcome
        self.result_path = result_path  # sets media
        self.revision = revision
        self.last_status = last_status

    @property
    def timeline(self) -> list[tuple[float, str]]:
        """``(start, canonical_state)`` pairs, sorted by start."""
        return list(zip(self.times, self.states, strict=True))

    @timeline.setter
    def timeline(self, entries: Sequence[tuple[float, str]]) -> None:
        times, states = zip(*entries, strict=True) if entries else ((), ())
        self.times = times
        self.states = _shared(states)

    @property
    def result_path(self) -> str:
        """Where the result is served (on the mock's host), or "" for none."""
        head, tail = self.media
        return head if tail is None else head + self.id + tail

    @result_path.setter
    def result_path(self, path: str) -> None:
        head, found, tail = path.partition(self.id) if self.id else (path, "", "")
        self.media = _shared((head, tail)) if found else (path, None)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, provider={self.provider!r}, model={self.model!r}, timeline={self.timeline!r})"

    def _index(self, now: float) -> int:
        return max(0, bisect.bisect_right(self.times, now) - 1)

    def moment(self, now: float) -> tuple[int, str, float | None, int]:
        """What the job's status shows at ``now``: (timeline entry, state, progress, revision)."""
        i = self._index(now)
        state = self.states[i]
        return i, state, self.progress_at(now) if state == "running" else None, self.revision

    def state_at(self, now: float) -> str:
        return self.states[self._index(now)]

    def terminal_at(self) -> float | None:
        for start, state in zip(self.times, self.states, strict=True):
            if state in TERMINAL_STATES:
                return start
        return None

    def progress_at(self, now: float) -> float | None:
        i = self._index(now)
        start, state = self.times[i], self.states[i]
        if state != "running":
            return None
        end = self.times[i + 1] if i + 1 < len(self.times) else None
        if end is None or end <= start:
            return 0.0
        return round(min(1.0, max(0.0, (now - start) / (end - start))), 2)

    def force(self, state: str, now: float, outcome: Outcome | None = None) -> None:
        """Put the job in ``state`` from ``now`` on. A terminal state ends it with ``outcome``."""
        self._rewrite(state, now, outcome)
        self.revision += 1

    def _rewrite(self, state: str, now: float, outcome: Outcome | None) -> None:
        keep = [(start, s) for start, s in self.timeline if start <= now]
        if keep and keep[-1][1] in TERMINAL_STATES and state not in TERMINAL_STATES:
            raise ValueError(f"job {self.id} already ended as {keep[-1][1]}; it cannot go back to {state}")
        remaining = [(start, s) for start, s in self.timeline if start > now]
        if state in TERMINAL_STATES:
            self.outcome = outcome or Outcome(state)
            self.timeline = [*keep, (now, state)]
            return
        end = next((start for start, s in remaining if s in TERMINAL_STATES), now + 1.0)
        timeline = [*keep, (now, state)]
        if state == "queued":
            timeline.append((now + (end - now) / 2, "running"))
        self.timeline = [*timeline, (end, self.outcome.state)]

    def view(
        self, now: float, state_names: dict[str, str], media_type: str, fields: Set[str] | None = None
    ) -> dict[str, Any]:
        """The job as templates see it at ``now``: every field, or only ``fields`` and the cheap ones."""
        if fields is not None and fields <= _TIMELESS:  # a submit answer that names the job: no timeline
            return {name: getattr(self, name) for name in fields}
        i = self._index(now)
        entered, state = self.times[i], self.states[i]
        done = state in TERMINAL_STATES
        failed = state in ("failed", "error")
        view = {
            "id": self.id,
            "model": self.model,
            "state": state,
            "status": state_names[state],
            "created_at": self.created_at,
            "updated_at": entered,
            "completed_at": entered if done else None,
            "fail_code": self.outcome.code if failed else None,
            "fail_message": self.outcome.message if failed else None,
            "params": self.params,
            "price": self.price,
            "media_type": media_type,
        }
        if fields is None or "started_at" in fields:
            running = zip(self.times, self.states, strict=True)
            view["started_at"] = next((s for s, st in running if st == "running" and s <= now), None)
        if fields is None or "elapsed" in fields:
            view["elapsed"] = round(entered - self.created_at, 3) if done else None
        if fields is None or "progress" in fields:
            view["progress"] = self.progress_at(now) if state == "running" else None
        if fields is None or "result_urls" in fields:
            view["result_urls"] = [self.result_path] if state == "succeeded" and self.result_path else []
        return view

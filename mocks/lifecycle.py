"""Jobs as pure state machines: a job's state is a function of its timeline and the time.

A timeline is a sorted list of ``(start, canonical_state)``. Planning fills it at submit time
from the contract's timing and the seeded random source; forcing a state rewrites the part of
it that lies after "now". Nothing here reads a clock: callers pass the time in.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(slots=True, eq=False)
class Job:
    id: str
    provider: str
    model: str
    key: str
    namespace: str
    params: dict[str, Any]
    price: float
    created_at: float
    timeline: list[tuple[float, str]]
    outcome: Outcome
    result_path: str = ""
    revision: int = 0
    last_status: tuple[Any, bytes] | None = field(default=None, repr=False, compare=False)

    def _index(self, now: float) -> int:
        return max(0, bisect.bisect_right(self.timeline, (now, "~")) - 1)

    def moment(self, now: float) -> tuple[int, str, float | None, int]:
        """What the job's status shows at ``now``: (timeline entry, state, progress, revision)."""
        i = self._index(now)
        state = self.timeline[i][1]
        return i, state, self.progress_at(now) if state == "running" else None, self.revision

    def state_at(self, now: float) -> str:
        return self.timeline[self._index(now)][1]

    def terminal_at(self) -> float | None:
        for start, state in self.timeline:
            if state in TERMINAL_STATES:
                return start
        return None

    def progress_at(self, now: float) -> float | None:
        i = self._index(now)
        start, state = self.timeline[i]
        if state != "running":
            return None
        end = self.timeline[i + 1][0] if i + 1 < len(self.timeline) else None
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
        entered, state = self.timeline[self._index(now)]
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
            view["started_at"] = next((s for s, st in self.timeline if st == "running" and s <= now), None)
        if fields is None or "elapsed" in fields:
            view["elapsed"] = round(entered - self.created_at, 3) if done else None
        if fields is None or "progress" in fields:
            view["progress"] = self.progress_at(now) if state == "running" else None
        if fields is None or "result_urls" in fields:
            view["result_urls"] = [self.result_path] if state == "succeeded" and self.result_path else []
        return view

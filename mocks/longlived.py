"""Keep CPython's cyclic garbage collector off the job store.

A mock keeps every job until a reset, so the objects it piles up are long-lived by design. The
collector rescans every live container at each full collection, and the full collections come
more often as the heap grows: at 60,000 jobs one pass took about 60 ms, and collecting cost a
serving mock about a tenth of its submit throughput. Jobs form no reference cycles, so that work
finds nothing.

:class:`LongLived` counts jobs; every ``every`` jobs it collects the young generations (so no young
cyclic garbage is kept) and moves what is alive into the permanent generation (``gc.freeze``),
which the collector skips. Objects there are still freed by reference counting as usual; only
cycles that form among them wait for :meth:`release` (called on reset), which hands everything
back to the collector.
"""

from __future__ import annotations

import gc

__all__ = ["LongLived"]


class LongLived:
    def __init__(self, every: int | None) -> None:
        if every is not None and every < 1:
            raise ValueError(f"freeze every {every} jobs: need a positive number, or None to never freeze")
        self.every = every
        self.count = 0
        self.freezes = 0

    def added(self) -> None:
        """One more long-lived object graph (a job): freeze once ``every`` have piled up."""
        self.count += 1
        if self.every is not None and self.count % self.every == 0:
            gc.collect(1)
            gc.freeze()
            self.freezes += 1

    def release(self) -> None:
        """Hand the frozen objects back to the collector (what a reset dropped can then be freed)."""
        if self.freezes:
            gc.unfreeze()
            self.freezes = 0
        self.count = 0

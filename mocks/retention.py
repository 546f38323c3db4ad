"""What a job keeps, and how many jobs the mock holds: memory stays bounded however long it runs.

A job keeps the parameters the engine read from its request. Every one is small but the prompt,
which a client may send at any length the contract allows (up to the 1 MiB body limit): a job
keeps its first :data:`PROMPT_KEEP` characters, plus every ``veomock`` word further on, so the
magic inputs a status poll reads still work. What the submit answered was computed from the whole
request.

The mock holds every job until a reset, unless ``max_jobs`` is set (``veomock serve --max-jobs
N``): then each new job past N evicts the oldest job that has ended by then (its id answers as
unknown from then on). A job still queued or running is never evicted, so the count may stay
above N while more than N jobs are in flight.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import MutableMapping
from typing import Any

from veomock.mocks.lifecycle import Job

__all__ = ["PROMPT_KEEP", "JobCap", "kept_params"]

PROMPT_KEEP = 4096
_MAGIC = re.compile(r"\S*veomock\S*")


def kept_params(params: dict[str, Any], limit: int = PROMPT_KEEP) -> dict[str, Any]:
    """``params`` with a prompt past ``limit`` characters cut to its head and its ``veomock`` words."""
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or len(prompt) <= limit:
        return params
    magic = " ".join(_MAGIC.findall(prompt, limit))
    return {**params, "prompt": prompt[:limit] + "…" + (" " + magic if magic else "")}


class JobCap:
    """Evicts the oldest ended job once more than ``limit`` are held (None: no limit)."""

    def __init__(self) -> None:
        self._order: deque[tuple[str, str]] = deque()  # every job held, oldest first
        self._running: deque[tuple[str, str]] = deque()  # old jobs that had not ended when last looked at
        self.evicted = 0

    def added(
        self, jobs: MutableMapping[tuple[str, str], Job], ident: tuple[str, str], limit: int | None, now: float
    ) -> None:
        self._order.append(ident)
        if limit is None:
            return
        while len(jobs) > limit and self._evict_one(jobs, now):
            pass

    def _ended(self, job: Job | None, now: float) -> bool:
        end = None if job is None else job.terminal_at()
        return end is not None and end <= now

    def _evict_one(self, jobs: MutableMapping[tuple[str, str], Job], now: float) -> bool:
        i = 0
        while i < len(self._running):  # older than anything in _order
            ident = self._running[i]
            job = jobs.get(ident)
            if job is None or self._ended(job, now):
                del self._running[i]
                if job is not None:
                    return self._evict(jobs, ident)
                continue
            i += 1
        while self._order:
            ident = self._order.popleft()
            job = jobs.get(ident)
            if job is None:
                continue  # gone already (a namespaced reset)
            if self._ended(job, now):
                return self._evict(jobs, ident)
            self._running.append(ident)
        return False

    def _evict(self, jobs: MutableMapping[tuple[str, str], Job], ident: tuple[str, str]) -> bool:
        del jobs[ident]
        self.evicted += 1
        return True

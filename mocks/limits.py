"""Rate limits and concurrency caps from each contract's ``rate_limits``, on the mock clock.

Requests per minute is a sliding window of the requests admitted for one (provider, API key);
concurrency counts that key's jobs that have not ended. Both can be overridden per provider and
per key (a key's override wins), so parallel CI workers with their own keys never share a budget.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from veomock.contracts import Contract

__all__ = ["LIMIT_NAMES", "Limiter", "Limits", "Refusal"]

LIMIT_NAMES = ("requests_per_minute", "concurrent_jobs", "retry_after")
WINDOW = 60.0


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    concurrent_jobs: int | None = None
    retry_after: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the contract error to answer with, and when to come back."""

    error: str
    message: str
    retry_after: int


def _check(values: Mapping[str, Any]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for name, value in values.items():
        if name not in LIMIT_NAMES:
            raise ValueError(f"unknown limit {name!r}; limits are {', '.join(LIMIT_NAMES)}")
        low = 0 if name == "retry_after" else 1
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ValueError(f"{name} must be a whole number of at least {low}, or null for no limit")
        out[name] = value
    return out


class Limiter:
    def __init__(self, contracts: Mapping[str, Contract]) -> None:
        self._declared = {
            name: Limits(**{k: c.rate_limits.get(k) for k in LIMIT_NAMES}) for name, c in contracts.items()
        }
        self._overrides: dict[tuple[str, str | None], dict[str, int | None]] = {}
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._effective: dict[tuple[str, str | None], Limits] = {}  # cleared whenever overrides change

    def effective(self, provider: str, key: str | None = None) -> Limits:
        limits = self._declared[provider]
        if not self._overrides:
            return limits
        cached = self._effective.get((provider, key))
        if cached is not None:
            return cached
        merged = {**limits.to_json(), **self._overrides.get((provider, None), {})}
        if key is not None:
            merged.update(self._overrides.get((provider, key), {}))
        self._effective[(provider, key)] = Limits(**merged)
        return self._effective[(provider, key)]

    def set(self, provider: str, key: str | None = None, **values: Any) -> Limits:
        """Override limits for a provider (or one key of it); ``None`` lifts a limit."""
        if provider not in self._declared:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(self._declared)}")
        self._overrides.setdefault((provider, key), {}).update(_check(values))
        self._effective.clear()
        return self.effective(provider, key)

    def clear(self, provider: str | None = None, key: str | None = None) -> None:
        """Back to the contracts' numbers (for one provider or key, or everywhere)."""
        self._overrides = {
            (p, k): v
            for (p, k), v in self._overrides.items()
            if not ((provider is None or p == provider) and (key is None or k == key))
        }
        self._effective.clear()

    def forget(self, key: str) -> None:
        self.clear(key=key)
        self._windows = {pk: w for pk, w in self._windows.items() if pk[1] != key}

    def admit(self, provider: str, key: str, now: float) -> Refusal | None:
        """Count one request against the per-minute window, or refuse it."""
        limits = self.effective(provider, key)
        rpm = limits.requests_per_minute
        if rpm is None:
            return None
        window = self._windows.setdefault((provider, key), deque())
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if len(window) >= rpm:
            wait = limits.retry_after
            if wait is None:
                wait = max(1, math.ceil(window[0] + WINDOW - now))
            return Refusal("rate_limited", f"Rate limit of {rpm} requests per minute exceeded", wait)
        window.append(now)
        return None

    def concurrency(self, provider: str, key: str, running: int, next_end: float | None, now: float) -> Refusal | None:
        """Refuse a new job when the key already has ``concurrent_jobs`` jobs that have not ended."""
        limits = self.effective(provider, key)
        cap = limits.concurrent_jobs
        if cap is None:
            return None
        if running < cap:
            return None
        wait = limits.retry_after
        if wait is None:
            wait = max(1, math.ceil(next_end - now)) if next_end is not None else 1
        return Refusal("concurrency_limited", f"Concurrency limit of {cap} running tasks reached", wait)

    def to_json(self, key: str | None = None) -> dict[str, Any]:
        return {provider: self.effective(provider, key).to_json() for provider in self._declared}

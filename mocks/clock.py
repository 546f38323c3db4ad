"""Provider time: wall time scaled by a speed factor, plus manual advances.

Every time the mocks read comes from a :class:`Clock`. ``speed=60`` runs provider time sixty
times faster than real time; ``speed=0`` freezes it, so tests move it only with :meth:`advance`.
:class:`Clocks` gives each tenant (API key) that asks for one a clock of its own, so freezing or
moving one tenant's time never moves another tenant's jobs; every other key reads the default.
A clock refuses what would break it (NaN, infinities, a time past the year 9999) before changing
anything, and :meth:`Clock.restore` puts it back as it was made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from veomock.mocks.jsontext import finite, json_text

__all__ = ["LATEST", "MAX_SPEED", "Clock", "Clocks", "check_seconds", "check_speed"]

LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last instant a provider's timestamp can show
MAX_SPEED = 1_000_000.0  # provider seconds per real second, at most


def check_speed(speed: Any) -> float:
    """``speed`` as a float, or :class:`ValueError` saying what a speed may be."""
    number = finite("speed", speed)
    if not 0 <= number <= MAX_SPEED:
        raise ValueError(f"speed must be from 0 (frozen) to {MAX_SPEED:g}, not {json_text(speed)}")
    return number


def check_seconds(name: str, seconds: Any, now: float) -> float:
    """``seconds`` to move a clock on from ``now``, or :class:`ValueError` saying what it may be."""
    number = finite(name, seconds)
    if number < 0:
        raise ValueError(f"the clock only moves forward; {name} must be 0 or more, not {json_text(seconds)}")
    if now + number > LATEST:
        raise ValueError(f"{name} {json_text(seconds)} would move the clock past the year 9999")
    return number


class Clock:
    def __init__(
        self,
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = (check_speed(speed), None if start is None else float(start))
        self._monotonic = monotonic
        self.restore()

    def restore(self) -> None:
        """Back to the speed and start the clock was made with (wall time now, if it had no start)."""
        speed, start = self._initial
        self._base = time.time() if start is None else start
        self._anchor = self._monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Provider time in epoch seconds."""
        if self._speed == 0:
            return self._base
        return self._base + (self._monotonic() - self._anchor) * self._speed

    def advance(self, seconds: float) -> float:
        self._base += check_seconds("advance", seconds, self.now())
        return self.now()

    def set_speed(self, speed: float) -> None:
        speed = check_speed(speed)
        self._base, self._anchor, self._speed = self.now(), self._monotonic(), speed

    def fork(self) -> Clock:
        """A clock of its own that starts at this one's time and speed (and restores to them)."""
        return Clock(self.speed, self.now(), self._monotonic)

    def real_seconds(self, provider_seconds: float) -> float:
        """How long ``provider_seconds`` of provider time take in real time (inf when frozen)."""
        speed = self.speed  # read once: a clock kept elsewhere reads it on every call
        return float("inf") if speed == 0 else provider_seconds / speed


class Clocks:
    """The default clock and the clocks of the tenants (API keys) that have one of their own.

    A tenant gets its clock the first time it is set (:meth:`own`), as a fork of the default: the
    same time and speed, moving on by itself from then on. :meth:`drop` gives the key back to
    the default clock; :meth:`reset` drops every tenant's clock and restores the default.
    """

    def __init__(self, default: Clock) -> None:
        self.default = default
        self.tenants: dict[str, Clock] = {}

    def of(self, key: str | None) -> Clock:
        """The clock that ``key``'s jobs run on."""
        if key is not None and self.tenants:
            clock = self.tenants.get(key)
            if clock is not None:
                return clock
        return self.default

    def now(self, key: str | None = None) -> float:
        return self.of(key).now()

    def now_and_speed(self, key: str | None = None) -> tuple[float, float]:
        """``key``'s time now and how fast its clock runs (for what waits in real time)."""
        clock = self.of(key)
        return clock.now(), clock.speed

    def own(self, key: str) -> Clock:
        """``key``'s own clock, forked from the default the first time."""
        clock = self.tenants.get(key)
        if clock is None:
            clock = self.tenants[key] = self.default.fork()
        return clock

    def owned(self) -> dict[str, Clock]:
        """The tenants' own clocks, by API key."""
        return dict(self.tenants)

    def drop(self, key: str) -> None:
        self.tenants.pop(key, None)

    def reset(self) -> None:
        self.tenants.clear()
        self.default.restore()

    def running(self) -> bool:
        """Whether any clock runs by itself (a frozen one moves only when advanced)."""
        return self.default.speed > 0 or any(clock.speed > 0 for clock in self.tenants.values())

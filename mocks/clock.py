"""Provider time: wall time scaled by a speed factor, plus manual advances.

Every time the mocks read comes from one :class:`Clock`. ``speed=60`` runs provider time sixty
times faster than real time; ``speed=0`` freezes it, so tests move it only with :meth:`advance`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock"]


class Clock:
    def __init__(
        self,
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 or more, got {speed}")
        self._monotonic = monotonic
        self._base = time.time() if start is None else float(start)
        self._anchor = monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Provider time in epoch seconds."""
        if self._speed == 0:
            return self._base
        return self._base + (self._monotonic() - self._anchor) * self._speed

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds}")
        self._base += seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 or more, got {speed}")
        self._base, self._anchor, self._speed = self.now(), self._monotonic(), float(speed)

    def real_seconds(self, provider_seconds: float) -> float:
        """How long ``provider_seconds`` of provider time take in real time (inf when frozen)."""
        return float("inf") if self._speed == 0 else provider_seconds / self._speed

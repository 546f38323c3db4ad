"""Change notices: a counter that the mock bumps on every change, and a way to wait for the next.

The inspector's event stream waits here instead of polling: a journal entry, a control call or a
reset bumps :attr:`Changes.version` and wakes every waiter, whichever thread or event loop it is
on. With no one waiting, a bump costs one addition and one look at an empty set.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

__all__ = ["Changes"]


class Changes:
    def __init__(self) -> None:
        self.version = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def bump(self) -> None:
        """Something changed: wake everyone waiting."""
        self.version += 1
        if self._waiters:
            for loop, event in list(self._waiters):
                with suppress(RuntimeError):  # that loop has closed: its waiter is gone with it
                    loop.call_soon_threadsafe(event.set)

    async def wait(self, version: int, timeout: float | None = None) -> int:
        """Return once :attr:`version` differs from ``version`` or ``timeout`` real seconds passed."""
        if self.version != version:
            return self.version
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        self._waiters.add(waiter)
        try:
            if self.version == version:  # a bump from another thread between the check and the add
                with suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), timeout)
        finally:
            self._waiters.discard(waiter)
        return self.version

    @property
    def waiting(self) -> int:
        return len(self._waiters)

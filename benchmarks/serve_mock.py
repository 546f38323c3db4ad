"""The mock app for benchmarks: every provider, frozen clock, one pre-made job to poll."""

from __future__ import annotations

import os

from mocks import Clock, build_app, create_state

state = create_state(seed=0, clock=Clock(speed=0))
state.journal_size = int(os.environ.get("VEOMOCK_JOURNAL", "10000"))
app = build_app(state)

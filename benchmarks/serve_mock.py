"""The mock app for benchmarks: every provider, frozen clock, no limits, an ample balance.

The load is one API key hammering one route, so the documented rate limits and the balance
would refuse most of it; both are lifted, since the benchmark measures serving, not refusing.
"""

from __future__ import annotations

import gc

from veomock.mocks import Clock, Control, build_app, create_state

KEY = "sk-bench"

state = create_state(seed=0, clock=Clock(speed=0))
control = Control(state)
for provider in state.contracts:
    control.set_limits(provider, requests_per_minute=None, concurrent_jobs=None)
    control.set_balance(KEY, 1e12, provider=provider)
app = build_app(state)
gc.collect()
gc.freeze()  # as `veomock serve` does

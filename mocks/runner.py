"""Assemble a mock from options: which providers, which variants, how fast time runs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from veomock.contracts import available, load
from veomock.mocks.clock import Clock
from veomock.mocks.state import MockState

__all__ = ["PROFILES", "create_state", "parse_variants"]

# Provider time per real second. "fast" turns the documented 1-3 minute jobs into 1-3 s;
# "realistic" keeps the documented timings as they are.
PROFILES = {"fast": 60.0, "realistic": 1.0}


def parse_variants(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["p.colours=dark"]`` -> ``{"p": {"colours": "dark"}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        name, sep, option = item.partition("=")
        provider, dot, variant = name.partition(".")
        if not sep or not dot or not option:
            raise ValueError(f"variant {item!r} must look like provider.variant=option")
        out.setdefault(provider, {})[variant] = option
    return out


def create_state(
    providers: Iterable[str] | None = None,
    *,
    seed: int = 0,
    speed: float | None = None,
    profile: str = "fast",
    variants: Mapping[str, Mapping[str, str]] | None = None,
    clock: Clock | None = None,
    allow_http_webhooks: bool = False,
    webhook_ca: str | None = None,
    chaos: Mapping[str, Any] | None = None,
    store: str | None = None,
) -> MockState:
    """A mock's state; with ``store`` (``redis://HOST:PORT/DB``), one shared through Redis."""
    names = list(providers or available())
    variants = variants or {}
    unknown = set(variants) - set(names)
    if unknown:
        raise ValueError(f"variants name providers that are not served: {', '.join(sorted(unknown))}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    contracts = {name: load(name, variants.get(name)) for name in names}
    clock = clock or Clock(speed=PROFILES[profile] if speed is None else speed)
    kind: type[MockState] = MockState
    extra: dict[str, Any] = {}
    if store:
        from veomock.mocks.store_redis import RedisState

        kind, extra = RedisState, {"store": store}
    return kind(
        contracts=contracts,
        clock=clock,
        seed=seed,
        allow_http_webhooks=allow_http_webhooks,
        webhook_ca=webhook_ca,
        chaos=dict(chaos) if chaos else None,
        **extra,
    )

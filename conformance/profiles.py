"""Hypothesis settings profiles for the suite: ``ci`` is derandomized, ``dev`` explores.

``load_profile()`` registers both and loads the one named by ``HYPOTHESIS_PROFILE`` (default
``dev``). Tests call it once at import; running it again is harmless.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILES", "load_profile"]

PROFILES = ("ci", "dev")


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (or ``$HYPOTHESIS_PROFILE``, or ``dev``)."""
    quiet = [HealthCheck.too_slow]
    settings.register_profile(
        "ci", derandomize=True, database=None, print_blob=True, deadline=None, suppress_health_check=quiet
    )
    settings.register_profile("dev", deadline=None, suppress_health_check=quiet)
    chosen = name or os.environ.get("HYPOTHESIS_PROFILE") or "dev"
    if chosen in PROFILES:
        settings.load_profile(chosen)
    return chosen

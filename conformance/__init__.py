"""The conformance suite: grade any client of a Veo 3.1 reseller API against the mocks.

Strategies build requests from a contract's schema; scenarios say how the provider behaves; the
runner starts the client (a subprocess or a Python function), serves it the mock and grades the
journal with registered checks. Entry points: ``veomock check``, the pytest plugin
(``veomock.conformance.pytest_plugin``, registered through ``pytest11``) and ``make conformance``.
"""

# The names below are imported on first use, so that ``veomock serve`` (whose command lives in
# this package, the top layer) never loads Hypothesis or the checks.
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "CHECKS": "checks",
    "Failure": "checks",
    "check": "checks",
    "Capabilities": "protocol",
    "Job": "protocol",
    "Outcome": "protocol",
    "CommandAdapter": "runner",
    "PythonAdapter": "runner",
    "Result": "runner",
    "Runner": "runner",
    "SuiteClock": "runner",
    "Scenario": "scenarios",
    "catalogue": "scenarios",
    "scenarios": "scenarios",
    "StrategyError": "strategies",
    "invalid_requests": "strategies",
    "valid_requests": "strategies",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{home}")
    # Bind every name of that module here: an import of a submodule binds the submodule under its
    # own name, which would hide the function of the same name (``scenarios``).
    globals().update({export: getattr(module, export) for export, where in _HOMES.items() if where == home})
    return globals()[name]

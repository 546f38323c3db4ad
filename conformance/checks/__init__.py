"""Checks: registered, named functions that grade one run of a client against the contract.

Each check reads a :class:`Run` (the scenario, the exchanges the mock recorded, the mock's
journal, the client's outcome) and yields :class:`Problem` s. A problem says what was observed,
what the contract says and where (a path in the YAML), and how to fix it; the runner adds the
check's name, the scenario and the command that reproduces it, making a :class:`Failure`.

The checks live in one module per area, each citing the contract paths it judges: ``result``
(the outcome, results and failures), ``request``, ``polling``, ``retry`` and ``webhook``.
Nothing here knows a provider: poll intervals, states, retryable errors, result paths and auth
come from the contract.
"""

from __future__ import annotations

import importlib

from veomock.conformance.checks.core import CHECKS, Check, Failure, Problem, Run, check, run_checks

__all__ = ["AREAS", "CHECKS", "Check", "Failure", "Problem", "Run", "check", "run_checks"]

# Importing an area registers its checks; this order is the order of the report's table.
AREAS = ("result", "request", "polling", "retry", "webhook")
for _area in AREAS:
    importlib.import_module(f"{__name__}.{_area}")

"""The conformance suite: grade any client of a Veo 3.1 reseller API against the mocks.

Strategies build requests from a contract's schema; scenarios say how the provider behaves; the
runner starts the client (a subprocess or a Python function), serves it the mock and grades the
journal with registered checks. Entry points: ``veomock check``, the pytest plugin
(``conformance.pytest_plugin``) and ``make conformance``.
"""

from conformance.checks import CHECKS, Failure, check
from conformance.protocol import Capabilities, Job, Outcome
from conformance.runner import CommandAdapter, PythonAdapter, Result, Runner
from conformance.scenarios import Scenario, catalogue, scenarios
from conformance.strategies import StrategyError, invalid_requests, valid_requests

__all__ = [
    "CHECKS",
    "Capabilities",
    "CommandAdapter",
    "Failure",
    "Job",
    "Outcome",
    "PythonAdapter",
    "Result",
    "Runner",
    "Scenario",
    "StrategyError",
    "catalogue",
    "check",
    "invalid_requests",
    "scenarios",
    "valid_requests",
]

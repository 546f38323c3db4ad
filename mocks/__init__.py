"""Mock servers for Veo 3.1 providers, built from the contracts in ``contracts/``."""

from mocks.app import CONTROL_PREFIX, build_app
from mocks.clock import Clock
from mocks.control import Control
from mocks.lifecycle import Job, Outcome
from mocks.runner import PROFILES, create_state
from mocks.state import MockState, UnknownJob

__all__ = [
    "CONTROL_PREFIX",
    "PROFILES",
    "Clock",
    "Control",
    "Job",
    "MockState",
    "Outcome",
    "UnknownJob",
    "build_app",
    "create_state",
]

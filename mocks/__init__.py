"""Mock servers for Veo 3.1 providers, built from the contracts in ``contracts/``."""

from veomock.mocks.app import CONTROL_PREFIX, build_app
from veomock.mocks.clock import Clock
from veomock.mocks.control import Control
from veomock.mocks.lifecycle import Job, Outcome
from veomock.mocks.runner import PROFILES, create_state
from veomock.mocks.state import MockState, UnknownJob

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

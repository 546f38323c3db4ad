"""A thin pytest plugin: one marker and a few fixtures, public pytest API only.

Installing veomock registers it through the ``pytest11`` entry point, so no ``-p`` is needed
(``-p no:veomock`` turns it off)::

    @pytest.mark.veomock(provider="NAME", kinds=["success", "job-failure"])
    def test_my_client(veomock_check):
        veomock_check(my_client.generate)            # or a command: ["./my-client", "--flag"]

    @pytest.mark.veomock(provider="NAME")
    def test_against_the_mock(veomock_mock):
        ...  # veomock_mock.base_url, .api_key, .env, .state: a fresh mock for this test

Marker arguments: ``provider`` (required), ``kinds`` and ``scenarios`` (filters), ``capabilities``
(a dict, see PROTOCOL.md), ``variants`` (for ``veomock_mock``). A client function is called as
``generate(job, env)``, or ``generate(job, env, clock=...)`` when it takes a ``clock``: exact
mode's clock, to wait on without a request (PROTOCOL.md, *Time*).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from veomock.conformance.facts import api_key
from veomock.conformance.protocol import ENV_API_KEY, ENV_BASE_URL, ENV_CLOCK_URL, ENV_PROVIDER, Capabilities
from veomock.conformance.runner import Adapter, CommandAdapter, PythonAdapter, Result, Runner
from veomock.conformance.scenarios import catalogue
from veomock.conformance.server import Harness, ServerThread
from veomock.contracts import available, load
from veomock.mocks import CONTROL_PREFIX, MockState

__all__ = ["MockHandle", "pytest_configure", "veomock_check", "veomock_mock", "veomock_server"]

MARKER = "veomock"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(provider, kinds=None, scenarios=None, capabilities=None, variants=None): "
        "the provider (and scenarios) a veomock fixture serves",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    options = dict(marker.kwargs)
    if marker.args:
        options.setdefault("provider", marker.args[0])
    return options


@dataclass
class MockHandle:
    """A fresh mock for one test, served on the session's socket."""

    provider: str
    base_url: str
    api_key: str
    harness: Harness

    @property
    def state(self) -> MockState:
        return self.harness.state

    @property
    def env(self) -> dict[str, str]:
        """The adapter protocol's environment, for starting a client by hand."""
        return {
            ENV_BASE_URL: self.base_url,
            ENV_API_KEY: self.api_key,
            ENV_PROVIDER: self.provider,
            ENV_CLOCK_URL: f"{self.base_url}{CONTROL_PREFIX}/clock",
        }


@pytest.fixture(scope="session")
def veomock_server() -> Iterator[ServerThread]:
    """One uvicorn server on 127.0.0.1 for the whole session; tests swap the mock it serves."""
    with ServerThread() as server:
        yield server


@pytest.fixture
def veomock_mock(request: pytest.FixtureRequest, veomock_server: ServerThread) -> Iterator[MockHandle]:
    """A reset mock of the marker's provider (default: the first contract), on a frozen clock."""
    options = _options(request)
    provider = options.get("provider") or sorted(available())[0]
    harness = Harness(provider, options.get("variants"))
    veomock_server.use(harness)
    try:
        yield MockHandle(provider, veomock_server.base_url, api_key(harness.contract), harness)
    finally:
        veomock_server.use(None)


@pytest.fixture
def veomock_check(request: pytest.FixtureRequest) -> Callable[..., list[Result]]:
    """``veomock_check(client)``: grade a client (a function or a command) against the marker's
    provider; fails the test with every check failure, each with its reproduce command."""
    options = _options(request)

    def grade(client: Callable[..., Mapping[str, Any]] | Sequence[str], **overrides: Any) -> list[Result]:
        chosen = {**options, **overrides}
        provider = chosen.get("provider")
        if not provider:
            raise pytest.UsageError("mark the test @pytest.mark.veomock(provider=...) or pass provider=")
        caps = Capabilities.from_json(dict(chosen.get("capabilities") or {}))
        adapter: Adapter = PythonAdapter(client) if callable(client) else CommandAdapter(list(client))
        kinds, ids = chosen.get("kinds"), chosen.get("scenarios")
        selected = [
            s for s in catalogue(load(provider), caps) if (not kinds or s.kind in kinds) and (not ids or s.id in ids)
        ]
        with Runner(provider, adapter, caps) as runner:
            results = runner.run_all(selected)
        failures = [f.render() for r in results for f in r.failures]
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
        return results

    return grade

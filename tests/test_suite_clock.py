"""Exact mode's clock handed to an in-process client (``SuiteClock``): the same waits as a POST to
the clock URL, without the request."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from veomock.conformance.protocol import Capabilities
from veomock.conformance.runner import PythonAdapter, Runner, SuiteClock
from veomock.conformance.scenarios import Scenario, catalogue
from veomock.contracts import load

from examples.clients import aivideoapi


def _trace(results: list[Any]) -> list[Any]:
    """What grading saw of each run: the outcome, the failures, every exchange and callback."""
    out = []
    for result in results:
        run = result.run
        exchanges = [(e.time, e.method, e.path, e.status, e.state, e.fault) for e in run.exchanges]
        callbacks = [
            (entry["time"], (entry.get("response") or {}).get("status"))
            for entry in run.journal
            if entry.get("direction") == "outbound"
        ]
        outcome = run.outcome.to_json() if run.outcome else None
        # Each runner serves on a port of its own: its URLs differ by that alone.
        text = json.dumps([outcome, [f.check for f in result.failures], exchanges, callbacks])
        out.append((result.scenario.id, json.loads(text.replace(run.base_url, "BASE"))))
    return out


def _by_url(job: dict[str, Any], env: Mapping[str, str]) -> Mapping[str, Any]:
    """The reference client as a function that takes no clock: it waits through the clock URL."""
    return aivideoapi.generate(job, dict(env))


def test_a_client_on_the_suite_clock_is_graded_exactly_as_one_on_the_clock_url() -> None:
    contract, caps = load("aivideoapi"), Capabilities.from_json(aivideoapi.CAPABILITIES)
    chosen = [s for s in catalogue(contract, caps) if not s.variants]
    assert any(s.use_webhook for s in chosen) and any(s.kind == "transient" for s in chosen)
    traces = []
    for adapter in (PythonAdapter(aivideoapi.generate), PythonAdapter(_by_url)):
        with Runner("aivideoapi", adapter, caps) as runner:
            traces.append(_trace(runner.run_all(chosen)))
    assert [PythonAdapter(f).takes_clock for f in (aivideoapi.generate, _by_url)] == [True, False]
    direct, by_url = traces
    assert len(direct) == len(chosen)
    assert sum(len(t[1][3]) for t in direct) > 0, "no scenario delivered a callback"
    assert direct == by_url


def _one_scenario() -> Scenario:
    return next(s for s in catalogue(load("aivideoapi"), Capabilities()) if s.kind == "success" and not s.variants)


def _submit_then_wait(seconds: float, seen: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A client that submits, waits ``seconds`` on the clock it is given, polls once, and notes in
    ``seen`` the clock and its time around the wait."""

    def client(job: dict[str, Any], env: Mapping[str, str], clock: SuiteClock | None) -> dict[str, Any]:
        auth = {"Authorization": f"Bearer {env['VEOMOCK_API_KEY']}"}
        with httpx.Client(base_url=env["VEOMOCK_BASE_URL"], headers=auth) as http:
            task = http.post("/v1/videos/generations", json=job["request"]).json()["data"]["taskId"]
            seen["clock"], seen["before"] = clock, clock.now() if clock else None
            try:
                if clock is not None:
                    clock.sleep(seconds)
            except ValueError as exc:
                seen["refused"] = str(exc)
            seen["after"] = clock.now() if clock else None
            body = http.get(f"/v1/tasks/{task}").json()
        return {"status": "failed", "job_id": task, "category": "timeout", "message": body["status"]}

    return client


def test_a_wait_on_the_suite_clock_moves_the_mocks_clock_once_without_a_request() -> None:
    seen: dict[str, Any] = {}
    with Runner("aivideoapi", PythonAdapter(_submit_then_wait(1000.0, seen))) as runner:
        result = runner.run(_one_scenario())
    assert isinstance(seen["clock"], SuiteClock)
    assert seen["after"] - seen["before"] == 1000.0
    exchanges = result.run.exchanges
    assert [e.kind for e in exchanges] == ["submit", "status"]
    assert exchanges[1].time - exchanges[0].time == 1000.0
    assert exchanges[1].state == "succeeded"  # the job ran its course in the wait


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf, 1e300])
def test_a_wait_the_clock_refuses_raises_in_the_client_and_moves_nothing(seconds: float) -> None:
    seen: dict[str, Any] = {}
    with Runner("aivideoapi", PythonAdapter(_submit_then_wait(seconds, seen))) as runner:
        result = runner.run(_one_scenario())
    assert "refused" in seen and "advance" not in seen["refused"] and "a wait" in seen["refused"]
    assert seen["after"] == seen["before"]
    exchanges = result.run.exchanges
    assert exchanges[1].time == exchanges[0].time and exchanges[1].state == "queued"


def test_in_real_time_a_client_that_takes_the_clock_is_given_none() -> None:
    seen: dict[str, Any] = {}
    with Runner("aivideoapi", PythonAdapter(_submit_then_wait(1.0, seen)), speed=1000) as runner:
        runner.run(_one_scenario())
    assert "clock" in seen and seen["clock"] is None

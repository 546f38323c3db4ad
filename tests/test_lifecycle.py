"""Jobs are pure state machines over a timeline; the clock is passed in."""

from __future__ import annotations

import random

import pytest
from veomock.mocks.clock import Clock
from veomock.mocks.lifecycle import Job, Outcome, plan_timeline


def _job(outcome: Outcome | None = None) -> Job:
    outcome = outcome or Outcome()
    timeline = plan_timeline(100.0, {"queued": (2, 2), "running": (10, 10)}, random.Random(1), outcome)
    return Job("j", "p", "m", "k", "k", {}, 1.0, 100.0, timeline, outcome)


def test_states_follow_the_timeline() -> None:
    job = _job()
    assert [job.state_at(t) for t in (100, 101.9, 102, 111.9, 112, 10_000)] == [
        "queued",
        "queued",
        "running",
        "running",
        "succeeded",
        "succeeded",
    ]
    assert job.progress_at(107) == 0.5
    assert job.progress_at(100) is None
    assert job.terminal_at() == 112


def test_view_exposes_times_only_when_they_happened() -> None:
    job = _job(Outcome("failed", "X", "bad"))
    names = {s: s.upper() for s in ("queued", "running", "succeeded", "failed", "error")}
    early = job.view(101, names, "video/mp4")
    assert early["completed_at"] is None and early["fail_code"] is None and early["status"] == "QUEUED"
    late = job.view(200, names, "video/mp4")
    assert late["completed_at"] == 112 and late["elapsed"] == 12 and late["fail_code"] == "X"
    assert late["result_urls"] == []


@pytest.mark.parametrize(
    "fields",
    [{"id"}, {"id", "price", "params"}, {"created_at", "model"}, {"progress"}, {"result_urls", "status", "id"}, set()],
)
@pytest.mark.parametrize("outcome", [Outcome(), Outcome("failed", "X", "bad")])
def test_a_view_of_some_fields_agrees_with_the_whole_view(fields: set[str], outcome: Outcome) -> None:
    job = _job(outcome)
    job.result_path = "/media/j.mp4"
    names = {s: s.upper() for s in ("queued", "running", "succeeded", "failed", "error")}
    for now in (100, 101, 102, 107, 112, 500):
        whole, part = job.view(now, names, "video/mp4"), job.view(now, names, "video/mp4", frozenset(fields))
        assert {f: part[f] for f in fields} == {f: whole[f] for f in fields}


def test_force_terminal_state_now() -> None:
    job = _job()
    job.force("error", 105, Outcome("error", "E", "boom"))
    assert job.state_at(104.9) == "queued" or job.state_at(104.9) == "running"
    assert job.state_at(105) == "error"
    assert job.outcome.code == "E"


def test_force_running_keeps_the_planned_end() -> None:
    job = _job()
    job.force("running", 101)
    assert job.state_at(101) == "running"
    assert job.state_at(112) == "succeeded"


def test_a_finished_job_cannot_go_back() -> None:
    job = _job()
    with pytest.raises(ValueError, match="already ended"):
        job.force("running", 500)


def test_clock_scales_and_advances() -> None:
    real = [0.0]
    clock = Clock(speed=10, start=1000.0, monotonic=lambda: real[0])
    assert clock.now() == 1000.0
    real[0] = 2.0
    assert clock.now() == 1020.0
    clock.advance(5)
    assert clock.now() == 1025.0
    clock.set_speed(0)
    real[0] = 50.0
    assert clock.now() == 1025.0
    assert clock.real_seconds(10) == float("inf")
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_timing_is_configurable_per_provider() -> None:
    from veomock.mocks import create_state
    from veomock.mocks.lifecycle import Outcome as Ending

    state = create_state(["apixo"], clock=Clock(speed=0, start=1000.0))
    state.set_timing("apixo", "running", 7, 7)
    state.set_timing("apixo", "queued", 0, 0)
    contract = state.contracts["apixo"]
    model = contract.models["veo-3-1"]
    job = state.create_job("apixo", model, "k", {"prompt": "p", "aspect_ratio": "16:9", "duration": 8}, Ending())
    assert job.timeline == [(1000.0, "queued"), (1000.0, "running"), (1007.0, "succeeded")]
    with pytest.raises(ValueError, match="queued' or 'running"):
        state.set_timing("apixo", "done", 1, 2)
    with pytest.raises(ValueError, match="low <= high"):
        state.set_timing("apixo", "running", 5, 1)


def test_jobs_leave_the_collectors_sight_until_reset() -> None:
    import gc
    import weakref

    from veomock.mocks import create_state
    from veomock.mocks.longlived import LongLived

    class Node:
        other: Node | None = None

    state = create_state(["apixo"], clock=Clock(speed=0, start=1000.0))
    state.longlived = LongLived(every=3)
    model = state.contracts["apixo"].models["veo-3-1"]
    params = {"prompt": "p", "aspect_ratio": "16:9", "duration": 8}
    first, second = Node(), Node()
    first.other, second.other = second, first  # a reference cycle, alive while `first` is
    gone = weakref.ref(first)
    frozen_before = gc.get_freeze_count()
    for _ in range(2):
        state.create_job("apixo", model, "k", params)
    assert gc.get_freeze_count() == frozen_before
    state.create_job("apixo", model, "k", params)  # the third job: everything alive is frozen
    assert gc.get_freeze_count() > frozen_before
    del first, second
    gc.collect()
    assert gone() is not None  # frozen: the collector no longer looks at the cycle
    state.reset()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None  # handed back on reset, and collected
    with pytest.raises(ValueError, match="positive number"):
        LongLived(every=0)

"""Jobs stay compact, and balances settle only what has ended: a mock may hold a million jobs.

(What a job costs in memory and a submit in time are benchmarks: make bench.)"""

from __future__ import annotations

from veomock.mocks import Clock, create_state
from veomock.mocks.billing import Ledger
from veomock.mocks.lifecycle import Job, Outcome

_BILLING = {"initial_balance": 10, "charge_at": "submit", "refund_states": ["failed"]}


def _job(job_id: str, key: str, end: float, outcome: Outcome | None = None, **params: object) -> Job:
    outcome = outcome or Outcome()
    timeline = [(0.0, "queued"), (end / 2, "running"), (end, outcome.state)]
    return Job(job_id, "p", "m", key, key, dict(params), 1.0, 0.0, timeline, outcome, f"/media/{job_id}.mp4")


def test_jobs_share_what_they_hold_alike() -> None:
    # Keys and short strings arrive as new objects with every request (parsed from its bytes).
    first = _job("a1", "".join(["sk-", "team"]), 9.0, aspect_ratio="".join(["16", ":9"]), prompt="".join(["x"] * 40))
    second = _job("a2", "".join(["sk-", "team"]), 9.0, aspect_ratio="".join(["16", ":9"]), prompt="".join(["x"] * 40))
    assert first.key is second.key and first.namespace is first.key
    assert first.params["aspect_ratio"] is second.params["aspect_ratio"]
    assert first.params["prompt"] is not second.params["prompt"]  # long, mostly unique: not interned
    assert first.states is second.states and first.media is second.media
    assert (first.result_path, second.result_path) == ("/media/a1.mp4", "/media/a2.mp4")


def test_the_timeline_reads_and_rewrites_as_pairs() -> None:
    job = _job("j", "k", 10.0)
    assert job.timeline == [(0.0, "queued"), (5.0, "running"), (10.0, "succeeded")]
    before = job.times
    job.force("failed", 7.0, Outcome("failed", "E"))
    assert job.timeline == [(0.0, "queued"), (5.0, "running"), (7.0, "failed")]
    assert job.times is not before  # a new tuple marks the change (the webhook dispatcher reads it)
    job.result_path = "/elsewhere/clip.mp4"  # a path without the id is kept whole
    assert job.result_path == "/elsewhere/clip.mp4"
    job.result_path = ""
    assert job.result_path == ""


def test_jobs_ending_at_one_instant_all_settle_once() -> None:
    ledger = Ledger(_BILLING)
    jobs = [_job(f"j{i}", "k", 10.0, Outcome("failed") if i % 2 else None) for i in range(6)]
    for job in jobs:
        ledger.record(job)
    assert ledger.open_count("k", 9.0) == 6 and ledger.remaining("k", 9.0) == 4
    assert ledger.open_count("k", 10.0) == 0
    assert ledger.remaining("k", 10.0) == 7  # the three failed jobs are refunded
    assert ledger.remaining("k", 99.0) == 7  # and only once


def test_a_job_rescheduled_earlier_or_later_settles_at_its_new_end() -> None:
    ledger = Ledger({**_BILLING, "charge_at": "completion"})
    sooner, later = _job("s", "k", 10.0), _job("l", "k", 10.0)
    for job in (sooner, later):
        ledger.record(job)
    sooner.force("succeeded", 3.0)
    ledger.rescheduled(sooner)
    later.force("running", 6.0)  # running again from 6 on: its end stays where it was planned
    later.timeline = [*later.timeline[:-1], (20.0, "succeeded")]
    ledger.rescheduled(later)
    assert (ledger.open_count("k", 3.0), ledger.remaining("k", 3.0)) == (1, 9)
    assert (ledger.open_count("k", 10.0), ledger.remaining("k", 10.0)) == (1, 9)  # the stale end is skipped
    assert ledger.next_end("k", 10.0) == 20.0
    assert (ledger.open_count("k", 20.0), ledger.remaining("k", 20.0)) == (0, 8)


def test_a_running_clock_settles_submitted_jobs_as_they_end() -> None:
    clock = Clock(speed=0, start=1000.0)
    state = create_state(["apixo"], clock=clock)
    model = next(iter(state.contracts["apixo"].models.values()))
    ledger = state.runtime("apixo").ledger
    jobs = [state.create_job("apixo", model, "k", {"prompt": f"p{i}"}, price=1.0) for i in range(50)]
    assert ledger.open_count("k", state.now()) == 50
    clock.advance(max(job.terminal_at() or 0.0 for job in jobs) - state.now())
    assert ledger.open_count("k", state.now()) == 0
    assert ledger.remaining("k", state.now()) == ledger.initial - 50

"""The Redis store against a real redis-server: workers share jobs, ids, balances, the clock and
the journal, and a kill -9 of the whole mock loses nothing."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import httpx
import pytest
from veomock.contracts import load_all
from veomock.mocks import Clock, MockState
from veomock.mocks.control import Control
from veomock.mocks.lifecycle import Outcome
from veomock.mocks.store_redis import RedisState

from tests.helpers import ROOT
from tests.store_serving import kill, serve

START = 1_800_000_000.0
CONTRACTS = load_all()


def _worker(store: str, seed: int = 0) -> RedisState:
    return RedisState(contracts=CONTRACTS, clock=Clock(speed=0, start=START), seed=seed, store=store)


def _model(state: MockState, provider: str = "apixo") -> object:
    return next(iter(state.contracts[provider].models.values()))


def test_workers_with_one_seed_draw_unique_ids_and_see_every_job(store: str) -> None:
    one, two = _worker(store), _worker(store)
    made = [w.create_job("apixo", _model(w), "k", {"prompt": str(i)}) for i in range(150) for w in (one, two)]
    assert len({job.id for job in made}) == 300
    for worker in (one, two):
        assert {job.id for job in worker.jobs_of("apixo")} == {job.id for job in made}
        assert worker.job("apixo", made[7].id, "k").params == {"prompt": "3"}


def test_an_id_another_worker_holds_is_drawn_again(store: str) -> None:
    one, two = _worker(store), _worker(store)
    for worker in (one, two):  # both draw the same ids, in the same order
        worker.providers["apixo"].rng = random.Random(5)
    first = [one.create_job("apixo", _model(one), "k", {}).id for _ in range(20)]
    second = [two.create_job("apixo", _model(two), "k", {}).id for _ in range(20)]
    assert not set(first) & set(second) and len(set(first + second)) == 40


@pytest.mark.parametrize("provider", sorted(CONTRACTS))
def test_balances_are_the_in_memory_ledgers_figures(store: str, provider: str) -> None:
    shared, alone = _worker(store), MockState(contracts=CONTRACTS, clock=Clock(speed=0, start=START))
    codes = [c.code for c in CONTRACTS[provider].failures]
    for state in (shared, alone):
        state.providers[provider].rng = random.Random(3)  # the same timelines in both
        model = _model(state, provider)
        for i in range(12):
            outcome = Outcome("failed", codes[0]) if codes and i % 3 == 0 else None
            job = state.create_job(provider, model, "k", {}, outcome=outcome, price=1.25, now=START + i)
            if i % 4 == 1:
                state.force(job, "error", Outcome("error"), now=START + i + 1)
        state.set_balance(provider, "k", 50.0, START + 2)
    for at in (START, START + 3, START + 60, START + 400, START + 10_000):
        ledgers = [s.runtime(provider).ledger for s in (shared, alone)]
        figures = [(ledger.view("k", at), ledger.open_count("k", at), ledger.next_end("k", at)) for ledger in ledgers]
        assert figures[0] == figures[1], at


def test_a_forced_state_the_clock_and_the_journal_are_shared(store: str) -> None:
    one, two = _worker(store), _worker(store)
    job = one.create_job("vtrix", _model(one, "vtrix"), "k", {})
    two.force(two.job("vtrix", job.id), "failed", Outcome("failed", "E"))
    assert one.job("vtrix", job.id).state_at(one.now()) == "failed"
    two.clock.advance(600)
    assert one.now() == START + 600
    one.record({"direction": "inbound", "key": "k", "status": 200})
    assert [entry["status"] for entry in two.journal] == [200]


def test_a_reset_empties_the_store_for_every_worker(store: str) -> None:
    one, two = _worker(store), _worker(store)
    one.create_job("apixo", _model(one), "k", {})
    one.set_balance("apixo", "k", 3.0, one.now())
    two.clock.advance(60)
    one.reset()
    assert list(two.jobs_of()) == [] and two.remaining("apixo", "k", two.now()) == 100.0
    assert two.now() == START


def test_served_workers_draw_unique_ids_and_a_kill_9_loses_nothing(store: str) -> None:
    # Which worker takes a connection is the kernel's choice, so this does not show that both
    # answered; two workers seeing each other's jobs is test_workers_with_one_seed_draw_unique_ids_and_see_every_job.
    proc, base = serve(store, "--workers", "2")
    auth = {"Authorization": "Bearer sk-store"}
    body = json.loads((ROOT / "fixtures" / "apixo" / "requests" / "text-to-video.json").read_text())["body"]
    try:
        ids = []
        for _ in range(16):  # a connection each, so the kernel may hand them to either worker
            with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
                ids.append(client.post("/api/v1/generateTask/veo-3-1", json=body).json()["data"]["taskId"])
        with httpx.Client(base_url=base, timeout=10) as client:
            balance = client.get("/_veomock/balances", params={"key": "sk-store", "provider": "apixo"}).json()
    finally:
        kill(proc)
    assert len(set(ids)) == 16
    proc, base = serve(store)
    try:
        with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
            for job_id in ids:
                polled = client.get("/api/v1/statusTask/veo-3-1", params={"taskId": job_id})
                assert polled.status_code == 200 and polled.json()["data"]["taskId"] == job_id
            again = client.get("/_veomock/balances", params={"key": "sk-store", "provider": "apixo"}).json()
    finally:
        kill(proc)
    assert again == balance and balance["balances"]["apixo"]["charged"] > 0


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--workers", "2"], "give --store redis://HOST:PORT/DB"),  # workers share state only through a store
        (["--store", "redis://127.0.0.1:1/0"], "cannot use it"),  # nothing listens there
        (["--store", "http://127.0.0.1:6379"], "give redis://HOST:PORT/DB"),
    ],
)
def test_serving_refuses_what_cannot_work_and_says_why(flags: list[str], said: str) -> None:
    command = [sys.executable, "-m", "veomock.conformance.command", "serve", "--port", "0", *flags]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and said in out.stderr and "Traceback" not in out.stderr


def test_rate_limits_and_their_overrides_are_shared(store: str) -> None:
    one, two = _worker(store), _worker(store)
    Control(one).set_limits("apixo", "k", requests_per_minute=3)  # what a request reads on any worker
    assert two.now() == START and two.limits.effective("apixo", "k").requests_per_minute == 3
    now = one.now()
    assert [w.limits.admit("apixo", "k", now + i) for i, w in enumerate((one, two, one))] == [None] * 3
    refused = two.limits.admit("apixo", "k", now + 3)
    assert refused is not None and refused.error == "rate_limited" and refused.retry_after == 57
    assert one.limits.admit("apixo", "k", now + 60) is None  # the first request left the window
    Control(two).clear_limits("apixo", "k")
    assert Control(one).limits("apixo", "k") == Control(one).limits("apixo")


def test_a_worker_that_joins_or_starts_again_keeps_the_shared_clock(store: str) -> None:
    one = _worker(store)
    one.clock.advance(60)
    two = _worker(store)  # made with the same start: the clock it joins is already there
    assert two.now() == one.now() == START + 60
    two.reset()  # a reset puts it back as it was made
    assert one.now() == START


def test_a_tenants_own_clock_is_the_same_on_every_worker(store: str) -> None:
    one, two = _worker(store), _worker(store)
    Control(one).clock(advance=30, key="k")  # k gets a clock of its own, forked from the default
    assert two.now("k") == START + 30 and two.now() == START and two.now("other") == START
    assert Control(two).clock_view("k") == {"now": START + 30, "speed": 0.0, "key": "k", "own": True}
    assert Control(two).clock_view()["tenants"] == {"k": {"now": START + 30, "speed": 0.0}}
    assert not one.clocks.running()
    Control(two).clock(speed=2, key="k")
    assert one.clocks.of("k").speed == 2 and one.clocks.running() and one.clock.speed == 0
    Control(one).clock(speed=0, key="k")
    frozen = two.now("k")
    assert frozen > START + 30
    job = one.create_job("apixo", _model(one), "k", {}, now=one.now("k"))
    assert Control(two).job(job.id)["now"] == frozen == job.created_at
    Control(two).reset(key="k")  # forgetting k gives it back to the default clock, on every worker
    assert one.now("k") == START and Control(one).clock_view("k")["own"] is False
    Control(one).clock(advance=5, key="j")
    one.reset()
    assert two.now("j") == START and Control(two).clock_view()["tenants"] == {}


def test_a_worker_reading_the_clock_while_another_resets_gets_an_answer(store: str) -> None:
    one, two = _worker(store), _worker(store)
    one.clock.advance(5)
    read_meanwhile = []
    emptied = one.clocks.reset  # runs once the store is emptied, before the clock is put back

    def reset_clocks() -> None:
        read_meanwhile.append(two.now())
        emptied()

    one.clocks.reset = reset_clocks  # type: ignore[method-assign]
    one.reset()
    assert read_meanwhile == [START + 5] and two.now() == START


def test_the_inspector_waits_on_a_tenants_shared_clock(store: str) -> None:
    from veomock.mocks.inspector import next_wait

    one, two = _worker(store), _worker(store)
    one.create_job("apixo", _model(one), "sk-own", {"prompt": "p"}, timing={"queued": (5.0, 5.0)})
    assert next_wait(two) is None  # every clock frozen
    Control(one).clock(speed=10, key="sk-own")
    wait = next_wait(two)  # 5 provider seconds queued, at 10x on the tenant's clock: at most half a second
    assert wait is not None and 0 < wait <= 0.5
    assert two.clocks.of("sk-own").real_seconds(5) == 0.5 and two.clock.real_seconds(5) == float("inf")

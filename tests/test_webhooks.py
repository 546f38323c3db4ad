"""Webhook delivery against real receivers on 127.0.0.1, on a frozen clock advanced by hand.

Every channel of every contract: when callbacks fire, what they carry, the retry schedule, the
give-up, the timeout, HTTPS with a trusted CA. No sleeps: tests await the dispatcher
(``run_due``) or the receiver (``wait_for``).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from pathlib import Path

import pytest
import trustme
from veomock.contracts import TERMINAL_STATES
from veomock.mocks.control import force_state
from veomock.mocks.receiver import Receiver, failing, hanging, healthy

from tests.hooks import CHANNEL_IDS, CHANNELS, channel_of, load, mock, request_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_terminal_callback_carries_the_status_response(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    async with mock(provider) as m, Receiver() as hook:
        job = await m.job_for(provider, channel, hook.url("/done"))
        end = job.terminal_at()
        assert end is not None
        m.advance_to(end - 0.001)
        assert await m.state.webhooks.run_due() == 0
        assert hook.received == []
        m.finish(job)
        assert await m.state.webhooks.run_due() == 1
        [got] = hook.received
        status = await m.status(job)
        assert got.method == "POST" and got.path == "/done"
        assert got.json() == status.json()
        assert got.headers["content-type"].startswith("application/json")
        [entry] = m.outbound(job)
        assert entry["attempt"] == 1 and entry["status"] == 200 and entry["error"] is None
        assert entry["outcome"] == "delivered" and entry["time"] == end
        assert entry["url"] == hook.url("/done") and entry["body"] == status.json()
        assert isinstance(entry["latency_ms"], float) and entry["headers"]["Content-Type"]
        assert entry["provider"] == provider and entry["event"] in TERMINAL_STATES
        m.state.clock.advance(86_400)
        assert await m.state.webhooks.run_due() == 0
        assert m.state.webhooks.idle()


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_forced_failure_is_called_back_with_the_failure_body(provider: str, name: str) -> None:
    channel = channel_of(provider, name)
    async with mock(provider) as m, Receiver() as hook:
        job = await m.job_for(provider, channel, hook.url())
        m.state.clock.advance(1)
        force_state(m.state, job, "failed")
        await m.state.webhooks.run_due()
        [got] = hook.received
        assert got.json() == (await m.status(job)).json()
        assert m.outbound(job)[0]["event"] == "failed"


async def test_callback_headers_follow_the_contract() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        done = await m.job_for("aivideoapi", channel, hook.url())
        broken = await m.job_for("aivideoapi", channel, hook.url())
        m.state.clock.advance(1)
        force_state(m.state, broken, "failed")
        end = m.finish(done)
        await m.state.webhooks.run_due()
        by_task = {r.headers["x-task-id"]: r for r in hook.received}
        assert by_task.keys() == {done.id, broken.id}
        assert by_task[done.id].headers["x-event"] == "task.completed"
        assert by_task[done.id].headers["x-timestamp"] == str(int(end))
        assert by_task[broken.id].headers["x-event"] == "task.failed"
        assert by_task[broken.id].headers["content-type"] == "application/json"


async def test_sync_mode_posts_every_state_in_order() -> None:
    channel = channel_of("pixazo", "header")
    async with mock("pixazo") as m, Receiver() as hook:
        job = await m.job_for("pixazo", channel, hook.url(), mode="sync")
        seen = []
        for start, state in job.timeline:
            m.advance_to(start)
            assert await m.state.webhooks.run_due() == 1
            assert hook.received[-1].json() == (await m.status(job)).json()
            seen.append(state)
        assert seen == ["queued", "running", "succeeded"]
        assert [e["event"] for e in m.outbound(job)] == seen


async def test_sync_mode_after_a_jump_still_posts_every_state_in_order() -> None:
    channel = channel_of("pixazo", "header")
    async with mock("pixazo") as m, Receiver() as hook:
        job = await m.job_for("pixazo", channel, hook.url(), mode="sync")
        m.finish(job)
        assert await m.state.webhooks.run_due() == 3
        statuses = [r.json()["status"] for r in hook.received]
        assert statuses == [load("pixazo").states[s] for s in ("queued", "running", "succeeded")]


async def test_terminal_mode_is_the_default() -> None:
    channel = channel_of("pixazo", "header")
    async with mock("pixazo") as m, Receiver() as hook:
        job = await m.job_for("pixazo", channel, hook.url())
        m.finish(job)
        assert await m.state.webhooks.run_due() == 1


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (None, ["succeeded"]),
        (["start"], ["running"]),
        (["completed"], ["succeeded"]),
        (["start", "completed"], ["running", "succeeded"]),
    ],
)
async def test_event_filter_selects_the_callbacks(events: list[str] | None, expected: list[str]) -> None:
    channel = channel_of("pixazo", "body")
    async with mock("pixazo") as m, Receiver() as hook:
        job = await m.job_for("pixazo", channel, hook.url(), events=events)
        m.finish(job)
        await m.state.webhooks.run_due()
        assert [e["event"] for e in m.outbound(job)] == expected
        assert len(hook.received) == len(expected)


async def test_a_callback_url_without_callback_mode_is_not_used() -> None:
    channel = channel_of("apixo", "callback")
    assert channel.when_from is not None
    async with mock("apixo") as m, Receiver() as hook:
        request = request_for("apixo", channel, hook.url())
        request.body["request_type"] = "async"
        assert (await m.submit("apixo", request)).status_code == 200
        job = list(m.state.jobs.values())[-1]
        m.finish(job)
        assert await m.state.webhooks.run_due() == 0
        assert hook.received == []


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_retries_follow_the_contract_schedule_then_give_up(provider: str, name: str) -> None:
    channel, delivery = channel_of(provider, name), load(provider).webhook_delivery
    assert delivery is not None
    async with mock(provider) as m, Receiver(healthy(503)) as hook:
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        assert await m.state.webhooks.run_due() == 1
        for delay in delivery.retry_delays:
            m.state.clock.advance(delay - 0.5)
            assert await m.state.webhooks.run_due() == 0, "a retry came early"
            m.state.clock.advance(0.5)
            assert await m.state.webhooks.run_due() == 1
        m.state.clock.advance(7 * 86_400)
        assert await m.state.webhooks.run_due() == 0
        entries = m.outbound(job)
        times = [e["time"] for e in entries]
        assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == list(delivery.retry_delays)
        assert [e["attempt"] for e in entries] == list(range(1, len(delivery.retry_delays) + 2))
        assert all(e["status"] == 503 and "503" in e["error"] for e in entries)
        assert [e["outcome"] for e in entries] == ["retry"] * len(delivery.retry_delays) + ["gave_up"]
        assert len(hook.received) == len(entries)
        assert m.state.webhooks.idle()


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_a_receiver_failing_then_healthy_gets_it_once(provider: str, name: str) -> None:
    channel, delivery = channel_of(provider, name), load(provider).webhook_delivery
    assert delivery is not None and delivery.retry_delays
    async with mock(provider) as m, Receiver(failing(1)) as hook:
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        m.state.clock.advance(delivery.retry_delays[0])
        await m.state.webhooks.run_due()
        m.state.clock.advance(86_400)
        await m.state.webhooks.run_due()
        assert [r.answered for r in hook.received] == [500, 200]
        assert [e["outcome"] for e in m.outbound(job)] == ["retry", "delivered"]
        assert hook.received[0].body == hook.received[1].body


@pytest.mark.parametrize("provider", ["aivideoapi", "apixo", "pixazo"])
async def test_success_means_what_the_contract_says(provider: str) -> None:
    channel, delivery = load(provider).webhook_channels[0], load(provider).webhook_delivery
    assert delivery is not None
    async with mock(provider) as m, Receiver(healthy(204)) as hook:
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [entry] = m.outbound(job)
        assert entry["status"] == 204
        assert entry["outcome"] == ("delivered" if delivery.success == "2xx" else "retry")
        assert len(hook.received) == 1


async def test_an_unreachable_receiver_is_a_failed_attempt() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m:
        async with Receiver() as gone:
            url = gone.url()
        job = await m.job_for("aivideoapi", channel, url)
        m.finish(job)
        assert await m.state.webhooks.run_due() == 1
        [entry] = m.outbound(job)
        assert entry["status"] is None and entry["error"] and entry["outcome"] == "retry"


async def test_a_slow_receiver_times_out_and_is_retried() -> None:
    channel = channel_of("pixazo", "header")
    release = asyncio.Event()
    async with mock("pixazo") as m, Receiver(hanging(release)) as hook:
        m.state.webhooks.timeout_cap = 0.2  # real seconds: the contract's timeout, cut short for the test
        job = await m.job_for("pixazo", channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [entry] = m.outbound(job)
        assert entry["status"] is None and entry["outcome"] == "retry"
        assert "no answer within 5 s" in entry["error"]
        assert len(hook.received) == 1
        release.set()
        hook.answer = healthy()
        m.state.clock.advance(entry["next_attempt_at"] - m.state.now())
        await m.state.webhooks.run_due()
        assert m.outbound(job)[-1]["outcome"] == "delivered"


def _tls(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return server, str(pem)


@pytest.mark.parametrize(("provider", "name"), CHANNELS, ids=CHANNEL_IDS)
async def test_https_receiver_with_a_trusted_ca(provider: str, name: str, tmp_path: Path) -> None:
    server, pem = _tls(tmp_path)
    channel = channel_of(provider, name)
    trusting = mock(provider, allow_http_webhooks=False, webhook_ca=pem)
    async with trusting as m, Receiver(ssl_context=server) as hook:
        assert hook.url().startswith("https://")
        job = await m.job_for(provider, channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [got] = hook.received
        assert got.json() == (await m.status(job)).json()
        assert m.outbound(job)[0]["outcome"] == "delivered"


async def test_https_receiver_with_an_unknown_ca_fails_verification(tmp_path: Path) -> None:
    server, _ = _tls(tmp_path)
    channel = channel_of("apixo", "callback")
    async with mock("apixo", allow_http_webhooks=False) as m, Receiver(ssl_context=server) as hook:
        job = await m.job_for("apixo", channel, hook.url())
        m.finish(job)
        await m.state.webhooks.run_due()
        [entry] = m.outbound(job)
        assert entry["status"] is None and "CERTIFICATE_VERIFY_FAILED" in entry["error"]
        assert all(r.answered is None for r in hook.received)


async def test_a_thousand_concurrent_jobs_lose_nothing() -> None:
    from benchmarks.webhooks import deliver_many

    result = await deliver_many(1000, 0.5)
    assert (result["delivered"], result["lost"], result["duplicated"]) == (1000, 0, 0)
    assert result["attempts"] == 1500 and result["gave_up"] == 0


async def test_reset_forgets_outstanding_deliveries() -> None:
    channel = channel_of("aivideoapi", "callback")
    async with mock("aivideoapi") as m, Receiver() as hook:
        job = await m.job_for("aivideoapi", channel, hook.url())
        m.state.reset()
        m.finish(job)
        assert await m.state.webhooks.run_due() == 0


async def test_background_delivery_while_the_clock_runs() -> None:
    from veomock.mocks import Clock, create_state

    state = create_state(["aivideoapi"], seed=1, clock=Clock(speed=20_000), allow_http_webhooks=True)
    channel = channel_of("aivideoapi", "callback")
    async with Receiver() as hook, state.webhooks.lifespan():
        import httpx
        from veomock.mocks import build_app

        transport = httpx.ASGITransport(app=build_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            request = request_for("aivideoapi", channel, hook.url("/bg"))
            response = await client.post(request.op.path, json=request.body, headers=request.headers)
            assert response.status_code == 200, response.text
            async with asyncio.timeout(30):
                [got] = await hook.wait_for(1, answered=True)
        assert got.path == "/bg"

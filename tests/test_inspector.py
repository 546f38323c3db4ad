"""The inspector page in real headless Chromium (Debian's chromium, driven by Playwright).

The mock runs on a real loopback socket; the browser may reach nothing else (every other request
is refused and counted), so the page is shown to work offline. A failing browser test saves a
screenshot under ``$VEOMOCK_ARTEFACTS`` (default: ``veomock-artefacts`` in the temp folder).

``python -m tests.test_inspector docs/inspector.png`` redraws the README's screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from veomock.contracts import Contract
from veomock.mocks import Clock, MockState, create_state
from veomock.mocks.changes import Changes
from veomock.mocks.inspector import UI, next_wait, stream
from veomock.mocks.serving import ServerThread

from tests.conftest import PROVIDERS, START
from tests.helpers import auth_headers, sample_request
from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(os.environ.get("VEOMOCK_ARTEFACTS", Path(tempfile.gettempdir()) / "veomock-artefacts"))
TIMEOUT_MS = 5000


def _submit(base: str, contract: Contract, key: str, prompt: str | None = None) -> str:
    op, data = sample_request(contract)
    body = json.loads(json.dumps(data["body"]))
    if prompt is not None:
        _set_prompt(body, prompt)
    answer = httpx.post(base + op.path, json=body, headers=auth_headers(contract, key), timeout=10)
    assert answer.status_code < 300, answer.text
    jobs = httpx.get(base + "/_veomock/jobs", params={"key": key}, timeout=10).json()["jobs"]
    return str(jobs[-1]["id"])


def _set_prompt(body: Any, prompt: str) -> bool:
    if isinstance(body, dict):
        if isinstance(body.get("prompt"), str):
            body["prompt"] = prompt
            return True
        return any(_set_prompt(v, prompt) for v in body.values())
    if isinstance(body, list):
        return any(_set_prompt(v, prompt) for v in body)
    return False


@contextmanager
def _screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTEFACTS / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot}", file=sys.stderr)
        raise


@contextmanager
def _browser(base: str, profile: Path) -> Iterator[tuple[Any, list[str]]]:
    """A fresh Chromium profile whose pages may reach ``base`` only; yields (context, refused URLs)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: make test installs it (apt-get install chromium)"
    refused: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 1000}
        )
        try:

            def guard(route: Any) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    refused.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            context.set_default_timeout(TIMEOUT_MS)
            yield context, refused
        finally:
            context.close()


@pytest.fixture(scope="module")
def _chromium(_live_socket: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[str]]]:
    with _browser(_live_socket.base_url, tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@contextmanager
def _tab(chromium: tuple[Any, list[str]], url: str) -> Iterator[Any]:
    """A new tab on the inspector at ``url``, live; on leaving, the page must have reached nothing else."""
    context, refused = chromium
    tab = context.new_page()
    try:
        with _screenshot_on_failure(tab, "inspector"):
            tab.goto(url)
            tab.locator("#live", has_text="live").wait_for()
        yield tab
    finally:
        tab.close()
    assert refused == [], f"the page reached beyond the mock: {refused}"


@pytest.fixture
def page(_chromium: tuple[Any, list[str]], live_server: LiveServer) -> Iterator[Any]:
    """A new tab on the inspector of this test's mock."""
    with _tab(_chromium, live_server.url + "/_veomock/ui") as tab:
        yield tab


def _row(page: Any, job: str) -> Any:
    return page.locator(f'#jobs tr[data-job="{job}"]')


def test_the_inspector_follows_the_mock_live(page: Any, live_server: LiveServer, state: MockState) -> None:
    contract = state.contracts[PROVIDERS[0]]
    base = live_server.url
    with _screenshot_on_failure(page, "inspector-live"):
        # A job submitted by a client shows up without a reload: the event stream said so.
        job = _submit(base, contract, "sk-inspector-tenant-one")
        row = _row(page, job)
        row.locator(".state", has_text="queued").wait_for()
        assert "sk-i…-one" in page.locator("#tenants").inner_text()
        assert "sk-inspector-tenant-one" not in page.locator("#tenants").inner_text()

        # Advancing the frozen clock from the page moves the job on, live.
        page.fill("#advance-seconds", "3600")
        page.click("#advance")
        row.locator(".state", has_text="succeeded").wait_for()
        assert "succeeded t+" in row.inner_text()

        # Forcing a failure from the page ends the job with that code.
        other = _submit(base, contract, "sk-inspector-tenant-two")
        _row(page, other).locator(".state", has_text="queued").wait_for()
        failure = contract.failures[0]
        _row(page, other).locator("select").select_option(failure.state)
        _row(page, other).locator("input").fill(str(failure.code))
        _row(page, other).locator("button", has_text="Force").click()
        _row(page, other).locator(".state", has_text=failure.state).wait_for()

        # The journal filters by tenant, status and text.
        unauthorised = httpx.get(base + contract.operations_of("status")[0].path.split("{")[0], timeout=10)
        page.locator(f'#journal tr.entry[data-status="{unauthorised.status_code}"]').first.wait_for()
        page.select_option("#filter-status", "4xx")
        statuses = page.locator("#journal tr.entry").evaluate_all("rows => rows.map(r => r.dataset.status)")
        assert statuses and all(s.startswith("4") for s in statuses), statuses
        page.select_option("#filter-status", "")
        page.select_option("#filter-key", label="sk-i…-two")
        shown = page.locator("#journal tr.entry")
        assert shown.count() >= 1
        assert all(other in text or "sk-i…-two" in text for text in shown.all_inner_texts())
        page.select_option("#filter-key", "")
        page.select_option("#filter-job", job)
        texts = page.locator("#journal tr.entry").all_inner_texts()
        assert texts and all(job in text for text in texts)
        page.select_option("#filter-job", "")
        route = sample_request(contract)[0]
        page.select_option("#filter-operation", route.name)
        texts = page.locator("#journal tr.entry").all_inner_texts()
        assert len(texts) == 2 and all(route.path in text for text in texts)  # the two submits
        assert page.locator("#har").get_attribute("href").endswith(f"/_veomock/journal.har?operation={route.name}")
        page.select_option("#filter-operation", "")
        assert page.locator("#har").get_attribute("href").endswith("/_veomock/journal.har")
        page.fill("#journal-search", "no-such-text-anywhere")
        assert page.locator("#journal tr.entry").count() == 0
        assert "HAR" in page.locator("#har").inner_text()


def test_controls_arm_a_scenario_and_reset(page: Any, state: MockState) -> None:
    with _screenshot_on_failure(page, "inspector-controls"):
        page.fill("#scenario-json", json.dumps({"operation": "submit", "action": {"error": "internal"}}))
        page.click("#arm")
        page.locator("#scenarios td", has_text='"error":"internal"').wait_for()
        assert state.scenarios.rules[0].action.error == "internal"
        page.fill("#scenario-json", "{not json")
        page.click("#arm")
        page.locator("#message.error").wait_for()
        page.click("#set-speed")
        page.locator("#clock-speed", has_text="60x").wait_for()
        page.click("#freeze")
        page.locator("#clock-speed", has_text="frozen").wait_for()
        page.click("#reset")
        page.locator("#scenarios td", has_text="no scenario armed").wait_for()
        assert state.scenarios.rules == []


def test_webhook_attempts_show_their_outcome_and_the_retry_schedule(page: Any, live_server: LiveServer) -> None:
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.hooks import CHANNELS, channel_of, request_for

    async def refuse(request: Any) -> Response:
        return Response("busy", status_code=503)

    provider, name = CHANNELS[0]
    state = create_state(seed=1, clock=Clock(speed=0, start=START), allow_http_webhooks=True)
    live_server.serve(state)
    with ServerThread() as receiver, _screenshot_on_failure(page, "inspector-webhooks"):
        receiver.use(Starlette(routes=[Route("/hook", refuse, methods=["POST"])]))
        submit = request_for(provider, channel_of(provider, name), receiver.base_url + "/hook")
        answer = httpx.request(
            submit.op.method,
            live_server.url + submit.op.path,
            json=submit.body,
            headers=submit.headers,
            params=submit.query,
            timeout=10,
        )
        assert answer.status_code < 300, answer.text
        page.reload()
        page.locator("#live", has_text="live").wait_for()
        page.fill("#advance-seconds", "3600")
        page.click("#advance")
        page.locator("#jobs .state", has_text="succeeded").wait_for()
        httpx.post(live_server.url + "/_veomock/webhooks/flush", timeout=30)
        attempt = page.locator("#webhook-attempts tbody tr").first
        attempt.locator("td", has_text="retry").first.wait_for()
        assert "503" in attempt.inner_text() and "retry at" in attempt.inner_text()
        page.locator("#webhooks-due tbody tr td", has_text="in ").first.wait_for()  # the next attempt, scheduled


def test_a_failing_browser_test_leaves_a_screenshot(page: Any) -> None:
    name = f"inspector-selftest-{os.getpid()}"
    with pytest.raises(AssertionError), _screenshot_on_failure(page, name):
        raise AssertionError("on purpose")
    shot = ARTEFACTS / f"{name}.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shot.unlink()


def test_the_assets_fetch_nothing_from_elsewhere() -> None:
    for asset in UI.iterdir():
        text = asset.read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), asset.name
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), asset.name
        assert "import " not in text or asset.suffix != ".js", asset.name


def test_the_page_and_assets_are_served(live_server: LiveServer) -> None:
    base = live_server.url
    page = httpx.get(base + "/_veomock/ui", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    js = httpx.get(base + "/_veomock/ui/inspector.js", timeout=10)
    assert js.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(base + "/_veomock/ui/nothing.js", timeout=10)
    assert missing.status_code == 404 and "inspector.css" in missing.text


def test_with_a_control_token_the_page_loads_but_the_data_needs_the_token(
    _live_socket: ServerThread, state: MockState
) -> None:
    live = LiveServer(_live_socket.base_url, state, _live_socket).serve(state, control_token="t0ken")
    assert httpx.get(live.url + "/_veomock/ui", timeout=10).status_code == 200
    assert httpx.get(live.url + "/_veomock/tenants", timeout=10).status_code == 401
    with httpx.stream("GET", live.url + "/_veomock/events", timeout=10) as refused:
        assert refused.status_code == 401
    answer = httpx.get(live.url + "/_veomock/tenants", headers={"X-Veomock-Token": "t0ken"}, timeout=10)
    assert answer.json() == {"tenants": []}


def test_with_a_control_token_the_page_sends_the_one_in_its_address(
    _chromium: tuple[Any, list[str]], live_server: LiveServer, state: MockState
) -> None:
    _submit(live_server.url, state.contracts[PROVIDERS[0]], "sk-inspector-token-tenant")
    live_server.serve(state, control_token="t0ken")
    with _tab(_chromium, live_server.url + "/_veomock/ui#token=t0ken") as tab, _screenshot_on_failure(tab, "token"):
        tab.locator("#tenants td", has_text="sk-i…nant").wait_for()


def test_tenants_are_listed_masked_unless_revealed(live_server: LiveServer, state: MockState) -> None:
    contract = state.contracts[PROVIDERS[0]]
    _submit(live_server.url, contract, "sk-inspector-masked-key")
    listed = httpx.get(live_server.url + "/_veomock/tenants", timeout=10).json()["tenants"]
    assert [t["key"] for t in listed] == ["sk-i…-key"]
    revealed = httpx.get(live_server.url + "/_veomock/tenants?reveal=1", timeout=10).json()["tenants"]
    assert [t["key"] for t in revealed] == ["sk-inspector-masked-key"]


# -- the event stream, without a browser -------------------------------------------------------
# Each runs its own event loop in a thread: Playwright's sync API keeps one in the main thread.


def _in_thread(test: Any) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, test()).result(timeout=30)


async def _settle(done: Any) -> None:
    """Let the event loop run until ``done()`` holds (a bounded number of turns, no timers)."""
    for _ in range(100):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop settled without reaching the expected point")


async def _next(events: Any) -> dict[str, Any]:
    text = await asyncio.wait_for(anext(events), 5)
    (line,) = [line for line in text.splitlines() if line.startswith("data: ")]
    return json.loads(line[6:])  # type: ignore[no-any-return]


def test_the_stream_speaks_on_each_change_and_waits_otherwise() -> None:
    _in_thread(_the_stream_speaks_on_each_change_and_waits_otherwise)


async def _the_stream_speaks_on_each_change_and_waits_otherwise() -> None:
    state = create_state(seed=1, clock=Clock(speed=0, start=START))
    events = stream(state)
    first = await _next(events)
    pending = asyncio.ensure_future(_next(events))
    await _settle(lambda: state.changes.waiting == 1)  # a frozen clock with no job never wakes it
    assert not pending.done()
    state.record({"direction": "inbound", "status": 200})
    second = await pending
    assert second["version"] > first["version"]
    await events.aclose()
    assert state.changes.waiting == 0


def test_the_stream_speaks_when_a_job_reaches_its_next_state_on_the_clock() -> None:
    _in_thread(_the_stream_speaks_when_a_job_reaches_its_next_state_on_the_clock)


async def _the_stream_speaks_when_a_job_reaches_its_next_state_on_the_clock() -> None:
    clock = Clock(speed=1000, start=START)
    state = create_state(seed=1, clock=clock)
    contract = state.contracts[PROVIDERS[0]]
    model = next(iter(contract.models.values()))
    # Queued 5 ms of real time, then running for 1000 s: running when the event comes, however late.
    timing = {"queued": (5.0, 5.0), "running": (1e6, 1e6)}
    job = state.create_job(contract.provider, model, "sk-x", {"prompt": "p"}, timing=timing)
    events = stream(state)
    await _next(events)
    version = state.changes.version
    moved = await _next(events)  # no change bumped the version: the job became running on the clock
    assert moved["version"] == version
    assert job.state_at(moved["now"]) == "running"
    wait = next_wait(state)  # the end of the running span, 1e6 provider seconds on, 1000 s of real time
    assert wait is not None and 900 < wait <= 1000
    clock.set_speed(0)
    assert next_wait(state) is None  # a frozen clock brings nothing by itself
    await events.aclose()


def test_the_stream_waits_on_each_tenants_own_clock() -> None:
    state = create_state(seed=1, clock=Clock(speed=0, start=START))
    contract = state.contracts[PROVIDERS[0]]
    model = next(iter(contract.models.values()))
    state.create_job(contract.provider, model, "sk-own-clock", {"prompt": "p"}, timing={"queued": (5.0, 5.0)})
    assert next_wait(state) is None  # every clock frozen
    state.clocks.own("sk-own-clock").set_speed(10)
    wait = next_wait(state)  # 5 provider seconds queued, at 10x: at most half a second
    assert wait is not None and 0 < wait <= 0.5


def test_a_bump_from_another_thread_wakes_a_waiter() -> None:
    _in_thread(_a_bump_from_another_thread_wakes_a_waiter)


async def _a_bump_from_another_thread_wakes_a_waiter() -> None:
    changes = Changes()
    waiting = asyncio.ensure_future(changes.wait(changes.version))
    await _settle(lambda: changes.waiting == 1)
    await asyncio.to_thread(changes.bump)
    assert await asyncio.wait_for(waiting, 5) == 1


def test_tenants_list_every_key_with_its_balances(state: MockState) -> None:
    from veomock.mocks import Control

    contract = state.contracts[PROVIDERS[0]]
    model = next(iter(contract.models.values()))
    state.create_job(contract.provider, model, "sk-one", {"prompt": "p"}, price=1.0)
    state.record({"direction": "inbound", "provider": PROVIDERS[-1], "key": "sk-two", "status": 401})
    tenants = {t["key"]: t for t in Control(state).tenants()}
    assert tenants["sk-one"]["jobs"] == 1 and set(tenants["sk-one"]["balances"]) == {PROVIDERS[0]}
    assert tenants["sk-two"]["jobs"] == 0 and set(tenants["sk-two"]["balances"]) == {PROVIDERS[-1]}
    remaining = tenants["sk-one"]["balances"][PROVIDERS[0]]["remaining"]
    assert remaining == contract.billing["initial_balance"] - (1.0 if contract.billing["charge_at"] == "submit" else 0)


def _screenshot(target: Path) -> None:
    """The README's picture: a mock with a few jobs, a failure, a webhook retry and a scenario."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.hooks import CHANNELS, channel_of, request_for

    async def refuse(request: Any) -> Response:
        return Response("busy", status_code=503)

    state = create_state(seed=4, clock=Clock(speed=0, start=START), allow_http_webhooks=True)
    with ServerThread() as server, ServerThread() as receiver, tempfile.TemporaryDirectory() as profile:
        receiver.use(Starlette(routes=[Route("/hook", refuse, methods=["POST"])]))
        live = LiveServer(server.base_url, state, server).serve(state)
        contracts = [state.contracts[name] for name in PROVIDERS]
        for contract in contracts[1:3]:
            _submit(live.url, contract, "sk-demo-tenant-a", "a lighthouse at dusk")
        provider, name = CHANNELS[0]
        hook = request_for(provider, channel_of(provider, name), receiver.base_url + "/hook", key="sk-demo-tenant-a")
        url = live.url + hook.op.path
        httpx.request(hook.op.method, url, json=hook.body, headers=hook.headers, params=hook.query, timeout=10)
        httpx.post(live.url + "/_veomock/clock", json={"advance": 130}, timeout=10)
        httpx.post(live.url + "/_veomock/webhooks/flush", timeout=30)
        failed = _submit(live.url, contracts[0], "sk-demo-tenant-b", "a storm over the sea")
        httpx.post(live.url + f"/_veomock/jobs/{failed}", json={"state": "failed"}, timeout=10)
        _submit(live.url, contracts[-1], "sk-demo-tenant-b", "a lighthouse at dusk")
        httpx.get(live.url + contracts[0].operations_of("status")[0].path.split("{")[0], timeout=10)
        rule = {"operation": "submit", "times": 2, "action": {"error": "rate_limited"}}
        httpx.post(live.url + "/_veomock/scenarios", json=rule, timeout=10)
        with _browser(live.url, Path(profile)) as (context, _):
            page = context.new_page()
            page.goto(live.url + "/_veomock/ui")
            page.locator("#live", has_text="live").wait_for()
            page.locator("#jobs tr[data-job]").nth(4).wait_for()
            page.screenshot(path=str(target), full_page=True)


if __name__ == "__main__":
    _screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/inspector.png"))

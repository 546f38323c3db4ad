"""The control surface: reset (whole or one key), token, journal filters and HAR, the Python API."""

from __future__ import annotations

import json

import httpx
import pytest
from veomock import mocks
from veomock.mocks import Control, MockState, build_app
from veomock.mocks.control import TOKEN_HEADER

from tests.conftest import PROVIDERS
from tests.faulty import last_job, load, status_parts, submit_parts

pytestmark = pytest.mark.anyio
PROVIDER = PROVIDERS[0]


def test_the_python_api_is_exported() -> None:
    assert "Control" in mocks.__all__ and mocks.Control is Control


async def _submit(client: httpx.AsyncClient, key: str, prompt: str | None = None) -> httpx.Response:
    return await client.request(**submit_parts(load(PROVIDER), prompt, key))


async def test_reset_one_key_leaves_the_others_alone(
    asgi_client: httpx.AsyncClient,
    state: MockState,
) -> None:
    control = Control(state)
    for key in ("sk-worker-a", "sk-worker-b"):
        await _submit(asgi_client, key)
        control.set_balance(key, 7, PROVIDER)
        control.set_limits(PROVIDER, key, requests_per_minute=100)
        control.add_scenarios({"match": {"key": key}, "operation": "status", "action": {"error": "internal"}})
    answer = await asgi_client.post("/_veomock/reset?key=sk-worker-a")
    assert answer.json() == {"ok": True, "key": "sk-worker-a"}
    assert [j["key"] for j in control.jobs()] == ["sk-worker-b"]
    initial = load(PROVIDER).billing["initial_balance"]
    assert control.balance("sk-worker-a", PROVIDER)[PROVIDER]["remaining"] == initial
    assert control.balance("sk-worker-b", PROVIDER)[PROVIDER]["remaining"] == 7
    assert control.limits(PROVIDER, "sk-worker-a")[PROVIDER]["requests_per_minute"] != 100
    assert control.limits(PROVIDER, "sk-worker-b")[PROVIDER]["requests_per_minute"] == 100
    assert [r["match"]["key"] for r in control.scenarios()["rules"]] == ["sk-worker-b"]
    assert {e["key"] for e in control.journal(direction="inbound")} == {"sk-worker-b"}
    assert (await asgi_client.post("/_veomock/reset")).json() == {"ok": True, "key": None}
    assert control.jobs() == [] and control.scenarios()["rules"] == [] and control.journal() == []


async def test_parallel_workers_with_their_own_keys_never_collide(
    asgi_client: httpx.AsyncClient, state: MockState
) -> None:
    control = Control(state)
    control.add_scenarios({"match": {"key": "sk-ci-1"}, "action": {"error": "internal"}})
    control.set_limits(PROVIDER, "sk-ci-2", requests_per_minute=1)
    assert (await _submit(asgi_client, "sk-ci-1")).status_code == 500
    ok = load(PROVIDER).submit.status
    assert [(await _submit(asgi_client, "sk-ci-2")).status_code for _ in range(2)] == [ok, 429]
    assert [(await _submit(asgi_client, "sk-ci-3")).status_code for _ in range(2)] == [ok, ok]
    assert [j["key"] for j in control.jobs(key="sk-ci-3")] == ["sk-ci-3", "sk-ci-3"]


async def test_a_control_token_guards_every_control_call(state: MockState) -> None:
    transport = httpx.ASGITransport(app=build_app(state, control_token="s3cret"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        missing = await client.get("/_veomock/health")
        assert missing.status_code == 401 and TOKEN_HEADER in missing.json()["error"]
        assert (await client.post("/_veomock/reset", headers={TOKEN_HEADER: "nope"})).status_code == 401
        assert (await client.get("/_veomock/scenarios", headers={TOKEN_HEADER: "s3cret"})).status_code == 200
        assert (await client.get("/_veomock/webhooks")).status_code == 401
        provider = await client.request(**submit_parts(load(PROVIDER)))
        assert provider.status_code == load(PROVIDER).submit.status, "provider routes need no token"


async def test_clock_jobs_and_forcing_through_both_apis(
    asgi_client: httpx.AsyncClient,
    state: MockState,
) -> None:
    control = Control(state)
    await _submit(asgi_client, "sk-a")
    job_id = last_job(state)
    moved = (await asgi_client.post("/_veomock/clock", json={"advance": 1.5})).json()
    assert moved["now"] == control.clock()["now"]
    assert (await asgi_client.get(f"/_veomock/jobs/{job_id}?reveal=1")).json() == control.job(job_id)
    forced = await asgi_client.post(f"/_veomock/jobs/{job_id}", json={"state": "failed"})
    assert forced.json()["state"] == "failed"
    assert (await asgi_client.get("/_veomock/jobs/nope")).status_code == 404
    assert (await asgi_client.post("/_veomock/clock", json={"advance": -1})).status_code == 400
    assert (await asgi_client.post("/_veomock/scenarios", content=b"{nope")).status_code == 400
    for route in ("/_veomock/clock", "/_veomock/scenarios", "/_veomock/webhooks"):
        deep = await asgi_client.post(route, content=b"[" * 100_000)
        assert deep.status_code == 400 and "nested too deeply" in deep.text, (route, deep.text)


async def test_journal_filters(asgi_client: httpx.AsyncClient, state: MockState) -> None:
    contract = load(PROVIDER)
    await _submit(asgi_client, "sk-a")
    await _submit(asgi_client, "sk-b", "veomock:error=rate_limited")
    await asgi_client.request(**status_parts(contract, last_job(state), "sk-a"))
    state.record(
        {
            "direction": "outbound",
            "provider": PROVIDER,
            "key": "sk-a",
            "url": "https://hook.test/x",
            "status": 500,
            "headers": {"X-Event": "done"},
            "body": {"ok": 1},
            "latency_ms": 12.5,
        }
    )

    async def entries(query: str) -> list[dict[str, object]]:
        answer = await asgi_client.get(f"/_veomock/journal?reveal=1&{query}")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["entries"])

    assert len(await entries("")) == 4
    assert [e["key"] for e in await entries("status=429")] == ["sk-b"]
    assert [e["status"] for e in await entries("status=5xx")] == [500]
    assert len(await entries("direction=outbound")) == 1
    assert {e["operation"] for e in await entries("key=sk-a&direction=inbound")} == {
        contract.operations_of("submit")[0].name,
        contract.operations_of("status")[0].name,
    }
    submit = contract.operations_of("submit")[0].name
    assert len(await entries(f"provider={PROVIDER}&operation={submit}")) == 2
    assert (await asgi_client.get("/_veomock/journal?colour=red")).status_code == 400


async def test_journal_as_har(asgi_client: httpx.AsyncClient, state: MockState) -> None:
    parts = submit_parts(load(PROVIDER), key="sk-har")
    await asgi_client.request(**parts)
    state.record(
        {
            "direction": "outbound",
            "provider": PROVIDER,
            "key": "sk-har",
            "url": "https://hook.test/x?a=1",
            "status": 200,
            "headers": {"X-Event": "done"},
            "body": {"ok": 1},
            "latency_ms": 3.0,
        }
    )
    har = (await asgi_client.get("/_veomock/journal.har?key=sk-har&reveal=1")).json()["log"]
    assert har["version"] == "1.2" and har["creator"]["name"] == "veomock"
    inbound, outbound = har["entries"]
    request, response = inbound["request"], inbound["response"]
    assert request["method"] == parts["method"] and request["url"].endswith(parts["url"])
    assert json.loads(request["postData"]["text"]) == parts["json"]
    header = load(PROVIDER).auth.header.lower()
    assert any(h["name"] == header and "sk-har" in h["value"] for h in request["headers"])
    assert response["status"] == load(PROVIDER).submit.status
    assert json.loads(response["content"]["text"])
    assert inbound["startedDateTime"].endswith("Z") and inbound["_veomock"]["direction"] == "inbound"
    assert outbound["request"]["queryString"] == [{"name": "a", "value": "1"}]
    assert json.loads(outbound["request"]["postData"]["text"]) == {"ok": 1}
    assert outbound["time"] == 3.0 and outbound["response"]["status"] == 200
    for entry in har["entries"]:
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= set(entry)
        needed = {"method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize"}
        assert needed | {"bodySize"} <= set(entry["request"])
        assert {
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "headers",
            "content",
            "redirectURL",
            "headersSize",
            "bodySize",
        } <= set(entry["response"])

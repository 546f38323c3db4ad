"""Helpers for the webhook tests: ask for a callback the way a contract's channel reads it."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from veomock.contracts import Contract
from veomock.contracts import load as _load
from veomock.contracts.model import WebhookChannel
from veomock.mocks import Clock, MockState, build_app, create_state
from veomock.mocks.lifecycle import Job

from tests.conftest import START
from tests.helpers import auth_headers, fixtures, operation, request_path

load = cache(_load)  # contracts are immutable: load each once for the whole session
CHANNELS = [
    (name, channel.name)
    for name in ("aivideoapi", "apixo", "pixazo", "vtrix")
    for channel in load(name).webhook_channels
]
CHANNEL_IDS = [f"{p}-{c}" for p, c in CHANNELS]


def channel_of(provider: str, name: str) -> WebhookChannel:
    return next(c for c in load(provider).webhook_channels if c.name == name)


def _path(expr: Any) -> tuple[str, str]:
    """``{{ body.request_type | default('async') }}`` -> ("body", "request_type")."""
    text = str(expr.source).strip("{} ").split("|")[0].strip()
    root, _, name = text.partition(".")
    return root, name


def _put(body: dict[str, Any], headers: dict[str, str], query: dict[str, str], expr: Any, value: Any) -> None:
    root, name = _path(expr)
    if root == "body":
        node = body
        *parents, last = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    elif root == "header":
        headers[name] = str(value)
    elif root == "query":
        query[name] = str(value)
    else:  # pragma: no cover - a contract reading a webhook from elsewhere
        raise AssertionError(f"cannot place {name} in {root}")


def _strip(contract: Contract, body: dict[str, Any], headers: dict[str, str]) -> None:
    for channel in contract.webhook_channels:
        for expr in (channel.url_from, channel.mode_from, channel.filter_from, channel.when_from):
            if expr is None:
                continue
            root, name = _path(expr)
            if root == "body":
                body.pop(name.split(".")[0], None)
            else:
                for key in [k for k in headers if k.lower() == name]:
                    headers.pop(key)


@dataclass
class Submit:
    op: Any
    body: dict[str, Any]
    headers: dict[str, str]
    query: dict[str, str]

    def send(self, client: Any, base: str = "") -> Any:
        """The submit sent with ``client`` (httpx or Starlette's, sync or async: its answer, or an
        awaitable of it) to ``base`` + the route's path."""
        op = self.op
        return client.request(op.method, base + op.path, json=self.body, headers=self.headers, params=self.query)


def request_for(
    provider: str,
    channel: WebhookChannel | None,
    url: str | None,
    mode: str | None = None,
    events: list[str] | None = None,
    key: str | None = None,
) -> Submit:
    """A documented submit for a model the channel serves, asking for a callback to ``url``."""
    contract = load(provider)
    for _, data in fixtures(provider, "requests"):
        op = operation(contract, data["operation"])
        if op.kind != "submit" or (channel and channel.models and not set(channel.models) & set(op.models)):
            continue
        body = copy.deepcopy(data["body"])
        auth = auth_headers(contract, key) if key else auth_headers(contract)
        headers = {**auth, **data.get("headers", {})}
        query: dict[str, str] = {}
        _strip(contract, body, headers)
        if channel is not None and url is not None:
            _put(body, headers, query, channel.url_from, url)
            if channel.when_from is not None:
                _put(body, headers, query, channel.when_from, channel.when_in[0])
            if mode is not None and channel.mode_from is not None:
                _put(body, headers, query, channel.mode_from, mode)
            if events is not None and channel.filter_from is not None:
                _put(body, headers, query, channel.filter_from, events)
        return Submit(op, body, headers, query)
    raise AssertionError(f"{provider} has no request fixture for channel {channel}")


class Mock:
    """One mock on a frozen clock, driven in-process (no lifespan: deliveries wait for run_due)."""

    def __init__(self, state: MockState, client: httpx.AsyncClient) -> None:
        self.state, self.client = state, client

    async def submit(self, provider: str, request: Submit) -> httpx.Response:
        response: httpx.Response = await request.send(self.client)
        return response

    async def job_for(self, provider: str, channel: WebhookChannel | None, url: str | None, **kw: Any) -> Job:
        response = await self.submit(provider, request_for(provider, channel, url, **kw))
        assert response.status_code == load(provider).submit.status, response.text
        return list(self.state.jobs.values())[-1]

    async def status(self, job: Job, key: str | None = None) -> httpx.Response:
        contract = load(job.provider)
        op = next(o for o in contract.operations if o.kind == "status" and job.model in o.models)
        path, query = request_path(op, job.id)
        headers = auth_headers(contract, key) if key else auth_headers(contract)
        return await self.client.get(path, params=query, headers=headers)

    def advance_to(self, moment: float) -> None:
        advance_to(self.state, moment)

    def finish(self, job: Job) -> float:
        return finish(self.state, job)

    def outbound(self, job: Job | None = None) -> list[dict[str, Any]]:
        return outbound(self.state, job)


def advance_to(state: MockState, moment: float) -> None:
    """Move ``state``'s clock on to ``moment`` (not back, if it is there already)."""
    now = state.now()
    if moment > now:
        state.clock.advance(moment - now)


def finish(state: MockState, job: Job) -> float:
    """Move the clock to the moment ``job`` ends; returns that moment."""
    end = job.terminal_at()
    assert end is not None
    advance_to(state, end)
    return end


def outbound(state: MockState, job: Job | None = None) -> list[dict[str, Any]]:
    """The journal's webhook attempts (of ``job``)."""
    return [e for e in state.journal if e.get("direction") == "outbound" and (job is None or e["job"] == job.id)]


@asynccontextmanager
async def serve(state: MockState) -> AsyncIterator[Mock]:
    """``state``'s mock, driven in-process."""
    transport = httpx.ASGITransport(app=build_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield Mock(state, client)


@asynccontextmanager
async def mock(*providers: str, **options: Any) -> AsyncIterator[Mock]:
    """A mock of ``providers`` (default: all) on a frozen clock; plain-http loopback receivers are
    allowed unless told otherwise."""
    options.setdefault("allow_http_webhooks", True)
    async with serve(create_state(list(providers) or None, seed=1, clock=Clock(speed=0, start=START), **options)) as m:
        yield m

"""Fixtures shared by the tests: a frozen-clock mock and a client for it, and a real redis-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
from hypothesis import HealthCheck, settings
from starlette.testclient import TestClient
from veomock.contracts import available
from veomock.mocks import Clock, MockState, build_app, create_state
from veomock.mocks.serving import ServerThread

from tests.live import LiveServer
from tests.redis_server import redis_server

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

START = 1_767_965_610.0  # 2026-01-09T13:33:30Z, a fixed provider time for frozen clocks
PROVIDERS = sorted(available())


@pytest.fixture
def state() -> MockState:
    """Every provider, seeded, on a frozen clock that tests advance by hand."""
    return create_state(seed=1, clock=Clock(speed=0, start=START))


@pytest.fixture
def client(state: MockState) -> Iterator[TestClient]:
    with TestClient(build_app(state), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def asgi_client(state: MockState) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the ``state`` mock in-process (httpx.ASGITransport, no socket)."""
    transport = httpx.ASGITransport(app=build_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture(scope="session")
def _live_socket() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server


@pytest.fixture
def live_server(_live_socket: ServerThread, state: MockState) -> LiveServer:
    """The ``state`` mock over a real socket (uvicorn on 127.0.0.1): ``live_server.url``."""
    return LiveServer(_live_socket.base_url, state, _live_socket).serve(state)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the whole run, started by the first test that needs it."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def store(redis_url: str) -> str:
    """The redis-server's URL, its database emptied for this test."""
    redis.Redis.from_url(redis_url).flushdb()
    return redis_url

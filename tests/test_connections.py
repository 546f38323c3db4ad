"""Connection deadlines over a real socket: slow heads, slow bodies and idle connections are closed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from veomock.mocks import MockState, build_app
from veomock.mocks.serving import ServerThread

SHORT = 0.3  # seconds: each deadline of the server under test


@pytest.fixture(scope="module")
def guarded_server() -> Iterator[ServerThread]:
    with ServerThread(keep_alive=SHORT, header_timeout=SHORT, body_timeout=SHORT) as server:
        yield server


def _closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a read times out at 10 s)."""
    conn.settimeout(10)
    got = b""
    while chunk := conn.recv(65536):
        got += chunk
    return got


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connected, then nothing
        b"POST /api/v1/generateTask/veo-3-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # half a head
        b"GET /v1/credits HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa",  # a header line never ended
    ],
    ids=["idle", "partial-head", "partial-header-line"],
)
def test_a_request_head_that_never_completes_is_closed(
    guarded_server: ServerThread, state: MockState, sent: bytes
) -> None:
    guarded_server.use(build_app(state))
    with socket.create_connection((guarded_server.host, guarded_server.port)) as conn:
        conn.sendall(sent)
        assert _closed(conn) == b""
    assert len(state.journal) == 0


def test_a_body_that_never_completes_is_closed(guarded_server: ServerThread, state: MockState) -> None:
    guarded_server.use(build_app(state))
    head = b"POST /v1/videos/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    with socket.create_connection((guarded_server.host, guarded_server.port)) as conn:
        conn.sendall(head + b"Content-Length: 1000\r\n\r\n" + b'{"model": "veo-3", ')
        answer = _closed(conn)
    assert b" 200 " not in answer.split(b"\r\n", 1)[0]
    assert state.jobs == {}


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(
    guarded_server: ServerThread, state: MockState
) -> None:
    guarded_server.use(build_app(state))
    with socket.create_connection((guarded_server.host, guarded_server.port)) as conn:
        conn.sendall(b"GET /_veomock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = _closed(conn)
    assert answer.startswith(b"HTTP/1.1 200 ") and b'"ok":true' in answer


def test_requests_in_time_are_answered_on_one_connection(guarded_server: ServerThread, state: MockState) -> None:
    guarded_server.use(build_app(state))
    request = b"GET /_veomock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection((guarded_server.host, guarded_server.port)) as conn:
        conn.sendall(request * 3)  # pipelined
        answer = _closed(conn)
    assert answer.count(b"HTTP/1.1 200 ") == 3


@pytest.mark.parametrize("together", [True, False], ids=["pipelined", "after-the-answer"])
def test_a_next_request_head_that_never_completes_is_closed(
    guarded_server: ServerThread, state: MockState, together: bool
) -> None:
    """A whole request, then half of the next one's head: the first is answered, then the
    connection is closed (with the half head sent at once, or once the answer came)."""
    guarded_server.use(build_app(state))
    whole = b"GET /_veomock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    half = b"GET /_veomock/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    with socket.create_connection((guarded_server.host, guarded_server.port)) as conn:
        conn.sendall(whole + half if together else whole)
        answer = b""
        if not together:
            conn.settimeout(10)
            answer = conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")
            conn.sendall(half)
        answer += _closed(conn)
    assert answer.count(b"HTTP/1.1 200 ") == 1

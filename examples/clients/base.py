"""What every reference client shares: HTTP with retries and backoff, the polling loop, downloads,
and the veomock adapter protocol (job JSON in, outcome JSON out; see conformance/PROTOCOL.md).

A provider client subclasses :class:`Client` and says only what differs: where to submit, where
to poll, how to read a status body. Only httpx and the standard library are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

__all__ = ["ApiError", "Client", "Receiver", "Status", "Unreadable", "Waits", "main", "run"]

TERMINAL = ("succeeded", "failed", "error")


class _SystemTrust(ssl.SSLContext):
    """``ssl.create_default_context()`` that loads the system's CAs at its first TLS connection,
    once. Loading them is the slowest part of a client's start, and a run against the mock over
    http never needs them; the first https connection verifies exactly as the default context does.
    """

    _loaded = False
    _lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if not self._loaded:
                self.load_default_certs()
                self._loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self._load()
        return super().wrap_bio(*args, **kwargs)


_TLS = _SystemTrust(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names, as the default does


class Unreadable(Exception):
    """No usable answer (a network error, or a body that does not parse) after the retries allowed."""


class ApiError(Exception):
    """An HTTP error the client gave up on (not retryable, or retried too often)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = response.text
        super().__init__(f"HTTP {self.status}: {str(self.body)[:200]}")


@dataclass
class Status:
    """A status body, read: a canonical state, and the result or the failure."""

    state: str  # queued, running, succeeded, failed, error
    urls: list[str] = field(default_factory=list)
    code: str | None = None
    message: str | None = None


class Receiver:
    """A webhook receiver: keeps each JSON body, then answers the callback with 200. With a
    certificate and key (PEM files) it serves https."""

    def __init__(self, addr: str, cert: str | None = None, key: str | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # only a webhook job needs it

        host, _, port = addr.rpartition(":")
        self.bodies: list[Any] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                # Keep the body before answering: once the sender sees the 200, the client sees the body.
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                if parsed is not None:
                    with receiver.lock:
                        receiver.bodies.append(parsed)
                self.send_response(receiver.answer())
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        if cert and key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        # A short poll: shutdown() waits for it (0.5 s by default, per job).
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def answer(self) -> int:
        return 200

    def received(self) -> list[Any]:
        with self.lock:
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Client:
    """An async-job video client: submit, poll until done, download the result."""

    auth_header = "Authorization"
    auth_prefix = "Bearer "
    poll_interval = 5.0  # seconds between status polls
    first_poll_after = 0.0  # seconds to wait before the first poll
    max_retries = 3  # retries of one request on 429, 5xx and network errors
    backoff = 1.0  # first retry wait; doubles each time
    retry_statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    retry_sent_submits = False  # resubmit after a network error once sent (risks a second job)

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = http or httpx.Client(timeout=30.0, verify=_TLS)
        self.sleep = sleep
        self.now = now
        self.receiver: Receiver | None = None

    # -- what a provider client defines ----------------------------------------------------------

    def submit(self, model: str, body: dict[str, Any]) -> str:
        raise NotImplementedError

    def status(self, model: str, job_id: str) -> Any:
        raise NotImplementedError

    def read(self, body: Any) -> Status:
        raise NotImplementedError

    def with_webhook(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        """The request asking for callbacks to ``url`` (clients that take webhooks define it)."""
        raise NotImplementedError

    def job_of(self, callback: Any) -> str | None:
        """The job id a callback body is about."""
        return None

    # -- HTTP ------------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {self.auth_header: f"{self.auth_prefix}{self.api_key}"}

    def retryable(self, response: httpx.Response) -> bool:
        return response.status_code in self.retry_statuses

    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential backoff, never shorter than the server's Retry-After."""
        wait = self.backoff * 2.0**attempt
        if response is not None:
            with contextlib.suppress(ValueError):
                wait = max(wait, float(response.headers.get("retry-after", "")))
        return wait

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call, retried with backoff on 429, 5xx and network errors.

        A request that changes something (a submit) is retried after a network error only when it
        never reached the server (a connect error): once sent, it may have created a job, and a
        second submit would create a second one. A JSON answer that does not parse counts as a
        network error (the body was damaged on the way).
        """
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        safe = method in ("GET", "HEAD") or self.retry_sent_submits
        for attempt in range(self.max_retries + 1):
            response = None
            try:
                response = self.http.request(method, self.base_url + path, headers=headers, **kwargs)
                if response.is_success and "json" in response.headers.get("content-type", ""):
                    response.json()
            except (httpx.TransportError, ValueError) as exc:
                if attempt == self.max_retries or not (safe or isinstance(exc, httpx.ConnectError)):
                    raise Unreadable(f"{method} {path}: {exc or type(exc).__name__}") from exc
                response = None
            else:
                if response.is_success:
                    return response
                if not self.retryable(response) or attempt == self.max_retries:
                    raise ApiError(response)
            self.sleep(self.retry_wait(attempt, response))
        raise AssertionError("unreachable")

    def post_json(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        content = json.dumps(body).encode()
        return self.send("POST", path, content=content, headers={"Content-Type": "application/json"}, **kwargs)

    # -- the job ---------------------------------------------------------------------------------

    def wait(self, model: str, job_id: str, timeout: float) -> Status:
        """Poll until the job ends; TimeoutError when ``timeout`` seconds pass first."""
        start = self.now()
        if self.first_poll_after:
            self.sleep(self.first_poll_after)
        while True:
            status = self.from_callbacks(job_id) or self.read(self.status(model, job_id))
            if status.state in TERMINAL:
                return status
            if self.now() - start >= timeout:
                raise TimeoutError(f"job {job_id} still {status.state} after {timeout:g}s")
            self.sleep(self.poll_interval)

    def make_receiver(self, addr: str, cert: str | None = None, key: str | None = None) -> Receiver:
        return Receiver(addr, cert, key)

    def from_callbacks(self, job_id: str) -> Status | None:
        """The terminal state a callback reported (duplicates and stale states are ignored)."""
        if self.receiver is None:
            return None
        for body in self.receiver.received():
            if self.job_of(body) == job_id:
                status = self.read(body)
                if status.state in TERMINAL:
                    return status
        return None

    def download(self, url: str) -> int:
        response = self.http.get(url)
        response.raise_for_status()
        return len(response.content)

    def category(self, error: ApiError) -> str:
        """The protocol's category for an HTTP error the client gave up on."""
        if error.status == 402:
            return "insufficient_balance"
        if error.status in (401, 403):
            return "auth"
        if error.status == 429:
            return "rate_limited"
        if error.status >= 500:
            return "unavailable"
        return "invalid_request"

    def failure_category(self, status: Status) -> str:
        return status.state

    def generate(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Run one job to its end and describe it as a protocol outcome."""
        model = str(job["model"])
        job_id = None
        try:
            body = dict(job["request"])
            if job.get("webhook_url") and self.receiver is not None:
                body = self.with_webhook(body, str(job["webhook_url"]))
            job_id = self.submit(model, body)
            status = self.wait(model, job_id, float(job.get("timeout", 900)))
            if status.state != "succeeded":
                return {
                    "status": "failed",
                    "job_id": job_id,
                    "category": self.failure_category(status),
                    "code": status.code,
                    "message": status.message,
                }
            sizes = [self.download(url) for url in status.urls] if job.get("download", True) else []
            return {"status": "succeeded", "job_id": job_id, "urls": status.urls, "downloaded": sizes}
        except ApiError as exc:
            return {
                "status": "failed",
                "job_id": job_id,
                "category": self.category(exc),
                "http_status": exc.status,
                "message": str(exc),
            }
        except TimeoutError as exc:
            return {"status": "failed", "job_id": job_id, "category": "timeout", "message": str(exc)}
        except httpx.HTTPStatusError as exc:
            return {"status": "failed", "job_id": job_id, "category": "expired", "message": str(exc)}
        except (httpx.TransportError, Unreadable) as exc:
            return {"status": "failed", "job_id": job_id, "category": "unavailable", "message": str(exc)}


class _VirtualTime:
    """Waiting on the mock's clock (VEOMOCK_CLOCK_URL): sleep advances it, now reads the sum."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url, self.http, self.elapsed = url, http, 0.0

    def sleep(self, seconds: float) -> None:
        self.http.post(self.url, json={"advance": seconds}).raise_for_status()
        self.elapsed += seconds

    def now(self) -> float:
        return self.elapsed


class _ScaledTime:
    """Real time with the mock's speed (VEOMOCK_SPEED): provider seconds are real seconds / speed."""

    def __init__(self, speed: float) -> None:
        self.speed = speed

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)

    def now(self) -> float:
        return time.monotonic() * self.speed


class Waits(Protocol):
    """A clock to wait on: the suite's own, given to a client that runs in its process."""

    def sleep(self, seconds: float) -> None: ...

    def now(self) -> float: ...


def run(
    cls: type[Client], job: Mapping[str, Any], env: Mapping[str, str], clock: Waits | None = None
) -> dict[str, Any]:
    """The in-process adapter entry: build the client from the environment and run the job. In
    exact mode the suite gives an in-process client its ``clock``; a program waits through
    ``VEOMOCK_CLOCK_URL`` instead, and a run in real time has ``VEOMOCK_SPEED``."""
    http = httpx.Client(timeout=30.0, verify=_TLS)
    try:
        clock_url = env.get("VEOMOCK_CLOCK_URL")
        timing: dict[str, Any] = {}
        if clock is not None:
            timing = {"sleep": clock.sleep, "now": clock.now}
        elif clock_url:
            virtual = _VirtualTime(clock_url, http)
            timing = {"sleep": virtual.sleep, "now": virtual.now}
        elif env.get("VEOMOCK_SPEED"):
            scaled = _ScaledTime(float(env["VEOMOCK_SPEED"]))
            timing = {"sleep": scaled.sleep, "now": scaled.now}
        client = cls(env["VEOMOCK_BASE_URL"], env["VEOMOCK_API_KEY"], http=http, **timing)
        if job.get("webhook_url") and env.get("VEOMOCK_WEBHOOK_ADDR"):
            tls = (env.get("VEOMOCK_WEBHOOK_CERT"), env.get("VEOMOCK_WEBHOOK_KEY"))
            client.receiver = client.make_receiver(env["VEOMOCK_WEBHOOK_ADDR"], *tls)
        try:
            return client.generate(job)
        finally:
            if client.receiver is not None:
                client.receiver.close()
    finally:
        http.close()


def main(cls: type[Client]) -> None:
    """The subprocess adapter entry: job JSON on stdin, outcome JSON on stdout."""
    job = json.load(sys.stdin)
    print(json.dumps(run(cls, job, os.environ)))

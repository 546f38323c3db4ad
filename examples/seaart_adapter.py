"""A thin adapter that grades the published ``seaart-sdk`` package (PyPI), unchanged, as a client.

The SDK is a SeaArt / Vtrix gateway client that this project did not write. Its base URL is a
setting (``ClientConfig.base_url``; the SDK adds ``/model``), so it talks to the mock at the
provider's real paths: ``POST /model/v1/generation``, then ``GET /model/v1/generation/task/{id}``
every ``with_poll_interval`` seconds, with ``Authorization: Bearer KEY``.

What the adapter adds, and nothing more:

- the job's request goes to ``client.modal.create`` unchanged, and ``task.wait`` follows it with
  the job's timeout;
- waiting: the SDK calls ``time.sleep`` and ``time.monotonic`` of the standard library and takes
  no clock. In real-time mode (``VEOMOCK_SPEED``) it sleeps for real and the adapter only sets
  its interval and timeout in real seconds (provider seconds / speed). In exact mode
  (``VEOMOCK_CLOCK_URL``) the adapter binds the name ``time`` in the SDK's ``modal`` module to a
  stand-in whose ``sleep`` advances the mock's clock (the SDK's source stays as shipped);
- the outcome: the SDK's result (``Task.urls()``) or its ``SeaArtError`` (``kind``, ``status``)
  translated into the protocol's outcome. The SDK does not download results, so the adapter
  declares ``downloads: false``.

``RECORD`` is what the SDK fails, per scenario, as the suite grades version 0.1.4; the suite's
tests hold it to that, so a change of behaviour (or of the suite) shows.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import seaart_sdk
from seaart_sdk import modal as sdk_modal
from seaart_sdk.modal_types import with_poll_interval, with_poll_timeout

__all__ = ["CAPABILITIES", "POLL_INTERVAL", "RECORD", "generate", "recorded"]

CAPABILITIES = {"downloads": False, "max_retries": 0}
POLL_INTERVAL = 3.0  # the SDK's default (PollConfig.interval), in provider seconds

# Scenario name (the same in every variant) -> the checks it fails; every other applicable check
# passes. seaart-sdk 0.1.4, and why:
# - failure.code: a failed task raises SeaArtError(kind "task_failed") whose only trace of the
#   provider's error is the message; error.code never reaches the caller.
# - retry.transient, result.success, retry.gives_up: no request is retried on 429 or 5xx (the
#   SDK retries only network errors while polling, three times).
# - failure.category on the balance error: its status is 403 (a 402 in the balance_status
#   variant), and the SDK makes every 401 and 403 SeaArtError(kind "auth").
# - outcome.protocol on a truncated or garbled answer: http.client.IncompleteRead and
#   json.JSONDecodeError escape as they are, not as SeaArtError (a reset or a hang is wrapped).
RECORD: dict[str, set[str]] = {
    "failed-2014001": {"failure.code"},
    "failed-002014001": {"failure.code"},
    "error-110001": {"failure.code"},
    "transient-submit-rate_limited": {"result.success", "retry.transient"},
    "transient-submit-internal": {"result.success", "retry.transient"},
    "transient-submit-rate_limited-retry-after": {"result.success", "retry.transient"},
    "transient-status-rate_limited-retry-after": {"result.success", "retry.transient"},
    "transient-status-internal": {"result.success", "retry.transient"},
    "transient-status-internal-spread": {"result.success", "retry.transient"},
    "transport-submit-truncate": {"outcome.protocol"},
    "transport-submit-malformed": {"outcome.protocol"},
    "transport-status-truncate": {"outcome.protocol"},
    "transport-status-malformed": {"outcome.protocol"},
    "persistent-internal": {"retry.gives_up"},
    "persistent-rate_limited": {"retry.gives_up"},
    "refused-insufficient_balance": {"failure.category"},
    "refused-insufficient_balance[balance_status=402]": set(),
}


def recorded(scenario_id: str) -> set[str]:
    """What RECORD says ``provider/model/name[variant=option]`` fails: its entry with the variant,
    else the entry of its name."""
    tail = scenario_id.rsplit("/", 1)[-1]
    return RECORD.get(tail, RECORD.get(tail.split("[", 1)[0], set()))


class _Waiting(threading.local):
    """Per thread: the mock's clock URL and the provider seconds waited, or real time."""

    url: str | None = None
    elapsed: float = 0.0


class _Time:
    """What the SDK's ``modal`` module sees as ``time``: the mock's clock while a job runs."""

    def __init__(self) -> None:
        self.waiting = _Waiting()
        self.http = httpx.Client(timeout=30.0)  # loopback, plain http: no TLS context to load

    def sleep(self, seconds: float) -> None:
        if self.waiting.url is None:
            time.sleep(seconds)
            return
        self.http.post(self.waiting.url, json={"advance": seconds}).raise_for_status()
        self.waiting.elapsed += seconds

    def monotonic(self) -> float:
        return time.monotonic() if self.waiting.url is None else self.waiting.elapsed


_TIME = _Time()
sdk_modal.time = _TIME  # type: ignore[assignment]


def _category(error: seaart_sdk.SeaArtError) -> str:
    """The protocol's category for what the SDK raised, read from its ``kind`` and ``status``."""
    if error.kind == seaart_sdk.ERR_TASK_FAILED:
        return "failed"
    if error.kind == seaart_sdk.ERR_AUTH:
        return "auth"
    if error.kind == seaart_sdk.ERR_QUOTA:
        return "rate_limited"
    if error.kind == seaart_sdk.ERR_TIMEOUT and error.status is None:
        return "timeout"
    status = error.status or 0
    if status == 402:
        return "insufficient_balance"
    if 400 <= status < 500:
        return "invalid_request"
    return "unavailable"


def generate(job: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The in-process adapter entry (``--python examples.seaart_adapter:generate``)."""
    client = seaart_sdk.Client(
        seaart_sdk.ClientConfig(api_key=env["VEOMOCK_API_KEY"], base_url=env["VEOMOCK_BASE_URL"])
    )
    _TIME.waiting.url, _TIME.waiting.elapsed = env.get("VEOMOCK_CLOCK_URL"), 0.0
    scale = 1.0 / float(env.get("VEOMOCK_SPEED") or 1)  # real seconds per provider second
    interval, timeout = POLL_INTERVAL * scale, float(job.get("timeout", 900)) * scale
    task_id = None
    try:
        task = client.modal.create(dict(job["request"]))
        task_id = task.id
        done = task.wait(with_poll_interval(interval), with_poll_timeout(timeout))
        return {"status": "succeeded", "job_id": task_id, "urls": done.urls(), "downloaded": []}
    except seaart_sdk.SeaArtError as exc:
        outcome: dict[str, Any] = {
            "status": "failed",
            "job_id": exc.task_id or task_id,
            "category": _category(exc),
            "message": str(exc),
        }
        if exc.status is not None:
            outcome["http_status"] = exc.status
        return outcome
    finally:
        _TIME.waiting.url = None


if __name__ == "__main__":
    print(json.dumps(generate(json.load(sys.stdin), os.environ)))

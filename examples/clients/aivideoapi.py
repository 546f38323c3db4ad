"""aivideoapi Veo 3.1 reference client: POST /v1/videos/generations, then GET /v1/tasks/{id}.

Create answers {code, msg, data: {taskId}}; the task object is bare: pending, processing, then
completed (output.urls) or failed (error.code, error.message). Errors are {error: {code, message,
type}}; spend_limit_exceeded is a 429 that no retry can clear, so it is not retried. With a
callback_url the task is posted back when it ends (the body is the task object); the client stops
polling once a callback told it the end, and keeps polling in case no callback comes.
"""

from __future__ import annotations

from typing import Any

import httpx

from examples.clients.base import ApiError, Client, Status, Waits, main, run

STATES = {"pending": "queued", "processing": "running", "completed": "succeeded", "failed": "failed"}
FINAL_429 = ("spend_limit_exceeded",)


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class AivideoapiClient(Client):
    poll_interval = 5.0

    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json("/v1/videos/generations", body).json()["data"]["taskId"])

    def status(self, model: str, job_id: str) -> Any:
        return self.send("GET", f"/v1/tasks/{job_id}").json()

    def read(self, body: Any) -> Status:
        state = STATES.get(body["status"], "running")
        if state == "succeeded":
            return Status(state, urls=list(body["output"]["urls"]))
        if state == "failed":
            error = body.get("error") or {}
            return Status(state, code=error.get("code"), message=error.get("message"))
        return Status(state)

    def with_webhook(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        return {**body, "callback_url": url}

    def job_of(self, callback: Any) -> str | None:
        return callback.get("id") if isinstance(callback, dict) else None

    def retryable(self, response: httpx.Response) -> bool:
        if response.status_code == 429:
            try:
                return _error_code(response.json()) not in FINAL_429
            except ValueError:
                return True
        return super().retryable(response)

    def category(self, error: ApiError) -> str:
        if _error_code(error.body) in ("insufficient_credits", *FINAL_429):
            return "insufficient_balance"
        return super().category(error)


CAPABILITIES = {"polling": True, "webhooks": True}


def generate(job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
    return run(AivideoapiClient, job, env, clock)


if __name__ == "__main__":
    main(AivideoapiClient)

"""Vtrix veo_31_fast reference client: POST /model/v1/generation, then poll the task.

A task reads in_progress (pending or processing in the CLI's vocabulary) until it is completed,
with the URLs in output[].content[].url, or failed, with error.code and error.error_message (or
error.message in the other documented error object). No callbacks: polling only.
"""

from __future__ import annotations

from typing import Any

from examples.clients.base import Client, Status, Waits, main, run

RUNNING = ("in_progress", "pending", "processing")


class VtrixClient(Client):
    poll_interval = 5.0

    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json("/model/v1/generation", body).json()["id"])

    def status(self, model: str, job_id: str) -> Any:
        return self.send("GET", f"/model/v1/generation/task/{job_id}").json()

    def read(self, body: Any) -> Status:
        name = body["status"]
        if name == "completed":
            urls = [c["url"] for block in body.get("output") or [] for c in block.get("content") or [] if c.get("url")]
            return Status("succeeded", urls=urls)
        if name == "failed":
            error = body.get("error") or {}
            return Status(
                "failed",
                code=str(error.get("code")),
                message=error.get("error_message") or error.get("message"),
            )
        return Status("running" if name in RUNNING else "queued")

    def category(self, error: Any) -> str:
        text = str(error.body).lower()
        if error.status in (402, 403) and ("balance" in text or "credit" in text):
            return "insufficient_balance"
        return super().category(error)


def generate(job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
    return run(VtrixClient, job, env, clock)


if __name__ == "__main__":
    main(VtrixClient)

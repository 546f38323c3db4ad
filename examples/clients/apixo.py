"""APIXO Veo 3.1 reference client: generateTask, then statusTask until success or failed.

APIXO answers in an envelope {code, message, data}; a finished task carries its result URLs in
data.resultJson, a string holding JSON. The docs advise a first poll after 60 s, then every 5 s.
With a webhook URL the task asks for request_type "callback" and APIXO posts the status body there.
"""

from __future__ import annotations

import json
from typing import Any

from examples.clients.base import Client, Status, Waits, main, run

STATES = {"pending": "queued", "processing": "running", "success": "succeeded", "failed": "failed"}


class ApixoClient(Client):
    poll_interval = 5.0
    first_poll_after = 60.0

    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json(f"/api/v1/generateTask/{model}", body).json()["data"]["taskId"])

    def status(self, model: str, job_id: str) -> Any:
        return self.send("GET", f"/api/v1/statusTask/{model}", params={"taskId": job_id}).json()

    def with_webhook(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        return {**body, "request_type": "callback", "callback_url": url}

    def job_of(self, callback: Any) -> str | None:
        data = callback.get("data") if isinstance(callback, dict) else None
        return data.get("taskId") if isinstance(data, dict) else None

    def read(self, body: Any) -> Status:
        data = body["data"]
        state = STATES.get(data["state"], "running")
        if state == "succeeded":
            return Status(state, urls=list(json.loads(data["resultJson"])["resultUrls"]))
        if state == "failed":
            return Status(state, code=str(data.get("failCode")), message=data.get("failMsg"))
        return Status(state)


# Callbacks come over https only (a certificate for the receiver comes with the job's environment).
CAPABILITIES = {"polling": True, "webhooks": True}


def generate(job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
    return run(ApixoClient, job, env, clock)


if __name__ == "__main__":
    main(ApixoClient)

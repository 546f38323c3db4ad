"""Pixazo Veo 3.1 reference client: one submit path per model, one universal status path.

The key goes in Ocp-Apim-Subscription-Key. A job ends COMPLETED (output.media_url holds the URLs),
FAILED (a generation failure) or ERROR (a system error, not charged); Pixazo has no failure codes,
so the status itself is the code. The docs advise polling every 5-10 s.
"""

from __future__ import annotations

from typing import Any

from examples.clients.base import Client, Status, Waits, main, run

PATHS = {
    "veo-3-1-fast": "/veo31f/v1/veo-3.1-fast/generate",
    "veo-3-1-fast-reference-to-video": ("/veo-3-1-fast-reference-to-video/v1/veo-3-1-fast-reference-to-video-request"),
    "veo-3-1": "/veo/v1/veo-3.1/generate",
}
STATES = {
    "QUEUED": "queued",
    "PROCESSING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "ERROR": "error",
}


class PixazoClient(Client):
    auth_header = "Ocp-Apim-Subscription-Key"
    auth_prefix = ""
    poll_interval = 5.0

    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json(PATHS[model], body).json()["request_id"])

    def status(self, model: str, job_id: str) -> Any:
        return self.send("GET", f"/v2/requests/status/{job_id}").json()

    def read(self, body: Any) -> Status:
        name = body["status"]
        state = STATES.get(name, "running")
        if state == "succeeded":
            return Status(state, urls=list(body["output"]["media_url"]))
        if state in ("failed", "error"):
            return Status(state, code=name, message=body.get("error"))
        return Status(state)


def generate(job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
    return run(PixazoClient, job, env, clock)


if __name__ == "__main__":
    main(PixazoClient)

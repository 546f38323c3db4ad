"""Gemini API Veo 3.1 reference client: POST models/{model}:predictLongRunning, then GET the operation.

The submit answers an operation's resource name (models/{model}/operations/{id}); polling GET
/v1beta/{name} answers the name alone until the operation is done. A done operation holds the video
URIs at response.generateVideoResponse.generatedSamples[].video.uri, or an error (a google.rpc
Status), or, for a video the safety filters removed, raiMediaFilteredReasons. The key goes in the
x-goog-api-key header, the download too, which redirects to the file. No callbacks.
"""

from __future__ import annotations

from typing import Any

from examples.clients.base import ApiError, Client, Status, Waits, main, run


def _error_status(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("status") if isinstance(error, dict) else None


class GeminiClient(Client):
    auth_header = "x-goog-api-key"
    auth_prefix = ""
    poll_interval = 10.0  # the documented polling loop sleeps 10 s

    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json(f"/v1beta/models/{model}:predictLongRunning", body).json()["name"])

    def status(self, model: str, job_id: str) -> Any:
        return self.send("GET", f"/v1beta/{job_id}").json()

    def read(self, body: Any) -> Status:
        if not body.get("done"):
            return Status("running")
        error = body.get("error")
        if error:
            return Status("error", code=str(error.get("code")), message=error.get("message"))
        video = (body.get("response") or {}).get("generateVideoResponse") or {}
        reasons = video.get("raiMediaFilteredReasons") or []
        if reasons:
            return Status("failed", code=str(reasons[0]), message=str(reasons[0]))
        samples = video.get("generatedSamples") or []
        return Status("succeeded", urls=[s["video"]["uri"] for s in samples if (s.get("video") or {}).get("uri")])

    def download(self, url: str) -> int:
        response = self.http.get(url, headers=self.headers(), follow_redirects=True)
        response.raise_for_status()
        return len(response.content)

    def category(self, error: ApiError) -> str:
        if _error_status(error.body) == "FAILED_PRECONDITION":
            return "insufficient_balance"
        if "API_KEY_INVALID" in str(error.body) or _error_status(error.body) == "PERMISSION_DENIED":
            return "auth"
        return super().category(error)


def generate(job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
    return run(GeminiClient, job, env, clock)


if __name__ == "__main__":
    main(GeminiClient)

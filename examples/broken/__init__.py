"""Deliberately broken clients: each is a reference client with one named defect, paired with the
conformance check that must catch it. The suite's tests require every one to be caught.

Run one as a subprocess client: ``python -m examples.broken NAME`` (job on stdin, outcome on stdout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from examples.clients.aivideoapi import AivideoapiClient
from examples.clients.apixo import ApixoClient
from examples.clients.base import TERMINAL, ApiError, Client, Receiver, Status, Unreadable, Waits, run
from examples.clients.gemini import GeminiClient
from examples.clients.pixazo import PixazoClient
from examples.clients.vtrix import VtrixClient

__all__ = ["CATALOGUE", "Broken", "by_name"]


@dataclass(frozen=True)
class Broken:
    name: str
    provider: str
    client: type[Client]
    catches: str  # the check that must fail
    defect: str
    kinds: tuple[str, ...] = ()  # scenario kinds that show the defect (every kind when empty)
    webhooks: bool = False  # the client declares it receives webhooks

    def generate(self, job: dict[str, Any], env: dict[str, str], clock: Waits | None = None) -> dict[str, Any]:
        return run(self.client, job, env, clock)


# -- requests ----------------------------------------------------------------------------------


class ApixoNoBearer(ApixoClient):
    auth_prefix = ""


class PixazoBearerAuth(PixazoClient):
    auth_header = "Authorization"
    auth_prefix = "Bearer "


class VtrixTextBody(VtrixClient):
    def post_json(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.send("POST", path, content=json.dumps(body).encode(), headers={"Content-Type": "text/plain"})


class AivideoapiRenamesModel(AivideoapiClient):
    def submit(self, model: str, body: dict[str, Any]) -> str:
        return super().submit(model, {**body, "model": "veo-3.1"})


class ApixoWrongPath(ApixoClient):
    def submit(self, model: str, body: dict[str, Any]) -> str:
        return str(self.post_json("/api/v1/generateTask/veo3", body).json()["data"]["taskId"])


class PixazoDropsOptionalFields(PixazoClient):
    def submit(self, model: str, body: dict[str, Any]) -> str:
        return super().submit(model, {k: v for k, v in body.items() if k in ("prompt", "image_urls")} | {"seed": 7})


class GeminiKeylessDownload(GeminiClient):
    def download(self, url: str) -> int:
        response = self.http.get(url, follow_redirects=True)
        response.raise_for_status()
        return len(response.content)


class GeminiFilteredIsSuccess(GeminiClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        return Status("succeeded") if status.state == "failed" else status


class ApixoKeepsOnlyTextFields(ApixoClient):
    def submit(self, model: str, body: dict[str, Any]) -> str:
        kept = {k: v for k, v in body["input"].items() if k in ("mode", "prompt", "generationType", "aspect_ratio")}
        return super().submit(model, {**body, "input": kept})


# -- polling -----------------------------------------------------------------------------------


class PixazoPollsFast(PixazoClient):
    poll_interval = 1.0


class ApixoEagerFirstPoll(ApixoClient):
    first_poll_after = 0.0


class VtrixPollsAfterEnd(VtrixClient):
    def wait(self, model: str, job_id: str, timeout: float) -> Status:
        status = super().wait(model, job_id, timeout)
        for _ in range(2):
            self.sleep(self.poll_interval)
            self.status(model, job_id)
        return status


class ApixoPendingIsFailure(ApixoClient):
    def read(self, body: Any) -> Status:
        if body["data"]["state"] == "pending":
            return Status("failed", code="pending", message="unexpected state")
        return super().read(body)


class AivideoapiIgnoresTimeout(AivideoapiClient):
    def wait(self, model: str, job_id: str, timeout: float) -> Status:
        return super().wait(model, job_id, timeout * 3)


class PixazoGivesUpEarly(PixazoClient):
    def wait(self, model: str, job_id: str, timeout: float) -> Status:
        return super().wait(model, job_id, timeout / 3)


# -- results -----------------------------------------------------------------------------------


class ApixoReadsWrongField(ApixoClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        if status.state == "succeeded":
            status.urls = list(body["data"].get("resultUrls") or [])
        return status


class VtrixReportsTaskUrl(VtrixClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        if status.state == "succeeded":
            status.urls = [f"{self.base_url}/model/v1/generation/task/{body['id']}"]
        return status

    def download(self, url: str) -> int:
        return 0


class AivideoapiSkipsDownload(AivideoapiClient):
    def download(self, url: str) -> int:
        return 0


class AivideoapiHeadOnly(AivideoapiClient):
    def download(self, url: str) -> int:
        return int(self.http.head(url).headers["content-length"])


class ApixoIgnoresExpiry(ApixoClient):
    def download(self, url: str) -> int:
        return len(self.http.get(url).content)


class PixazoPartialDownload(PixazoClient):
    def download(self, url: str) -> int:
        with self.http.stream("GET", url) as response:
            return len(next(response.iter_bytes(1024)))


class VtrixStrictStatus(VtrixClient):
    def read(self, body: Any) -> Status:
        if body["status"] not in ("in_progress", "completed", "failed"):
            return Status("error", code="UNKNOWN_STATUS", message=f"unexpected status {body['status']!r}")
        return super().read(body)


# -- failures ----------------------------------------------------------------------------------


class ApixoMessageAsCode(ApixoClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        if status.state == "failed":
            status.code = status.message
        return status


class PixazoErrorAsFailed(PixazoClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        if status.state == "error":
            status.state = "failed"
        return status


class VtrixNumericCode(VtrixClient):
    def read(self, body: Any) -> Status:
        status = super().read(body)
        if status.state == "failed" and status.code and status.code.isdigit():
            status.code = str(int(status.code))
        return status


class PixazoBalanceIsAuth(PixazoClient):
    def category(self, error: ApiError) -> str:
        return "auth" if error.status == 402 else super().category(error)


class PixazoBadOutcome(PixazoClient):
    def generate(self, job: Any) -> dict[str, Any]:
        outcome = super().generate(job)
        return {
            "result": "ok" if outcome["status"] == "succeeded" else "error",
            "task": outcome.get("job_id"),
        }


# -- retries -----------------------------------------------------------------------------------


class AivideoapiRetries4xx(AivideoapiClient):
    retry_statuses = (400, 401, 402, 403, 429, 500, 502, 503, 504)


class ApixoNoRetry(ApixoClient):
    max_retries = 0


class PixazoIgnoresRetryAfter(PixazoClient):
    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        return self.backoff * 2.0**attempt


class VtrixNoBackoff(VtrixClient):
    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        return 0.0


class ApixoShrinkingBackoff(ApixoClient):
    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        return 8.0 / 2.0**attempt


class VtrixConstantBackoff(VtrixClient):
    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        return 2.0


class ApixoResubmitsAfterNetworkError(ApixoClient):
    retry_sent_submits = True


class PixazoBadPollIsFailure(PixazoClient):
    max_retries = 0

    def status(self, model: str, job_id: str) -> Any:
        try:
            return super().status(model, job_id)
        except Unreadable:
            return {"status": "ERROR", "error": "status unreadable"}


class VtrixRetryBudgetPerJob(VtrixClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = self.max_retries

    def retry_wait(self, attempt: int, response: httpx.Response | None) -> float:
        self.budget -= 1
        if self.budget < 0 and response is not None:
            raise ApiError(response)
        return super().retry_wait(attempt, response)


class AivideoapiRetriesForever(AivideoapiClient):
    max_retries = 12


class AivideoapiRetriesSpendLimit(AivideoapiClient):
    def retryable(self, response: httpx.Response) -> bool:
        return response.status_code in self.retry_statuses


# -- webhooks ----------------------------------------------------------------------------------


class AivideoapiIgnoresCallbacks(AivideoapiClient):
    def from_callbacks(self, job_id: str) -> Status | None:
        return None


class AivideoapiNoCallbackUrl(AivideoapiClient):
    def with_webhook(self, body: dict[str, Any], url: str) -> dict[str, Any]:
        return body


class _FailingFirst(Receiver):
    def __init__(self, addr: str) -> None:
        super().__init__(addr)
        self.calls = 0

    def answer(self) -> int:
        self.calls += 1
        return 500 if self.calls == 1 else 200


class AivideoapiRefusesFirstCallback(AivideoapiClient):
    def make_receiver(self, addr: str, cert: str | None = None, key: str | None = None) -> Receiver:
        return _FailingFirst(addr)


class ApixoPlainHttpReceiver(ApixoClient):
    def make_receiver(self, addr: str, cert: str | None = None, key: str | None = None) -> Receiver:
        return Receiver(addr)  # no TLS where the callback URL is https


class AivideoapiActsOnEveryCallback(AivideoapiClient):
    def generate(self, job: Any) -> dict[str, Any]:
        outcome = super().generate(job)
        if outcome["status"] == "succeeded" and self.receiver is not None:
            done = [b for b in self.receiver.received() if self.job_of(b) == outcome["job_id"]]
            for _ in done[1:]:
                for url in outcome["urls"]:
                    self.download(url)
        return outcome


class AivideoapiRedoesALateCallback(AivideoapiClient):
    """Ends a job by polling, then waits a while for the callback it asked for and, when that
    arrives late, acts on it as news: the result is downloaded a second time."""

    def generate(self, job: Any) -> dict[str, Any]:
        outcome = super().generate(job)
        receiver = self.receiver
        if outcome["status"] != "succeeded" or receiver is None:
            return outcome

        def ended() -> bool:
            bodies = [b for b in receiver.received() if self.job_of(b) == outcome["job_id"]]
            return any(self.read(b).state in TERMINAL for b in bodies)

        if ended():
            return outcome  # the callback ended the job: nothing more to wait for
        for _ in range(3):
            self.sleep(self.poll_interval)
            if ended():
                for url in outcome["urls"]:
                    self.download(url)
                break
        return outcome


CATALOGUE = (
    Broken(
        "apixo-no-bearer",
        "apixo",
        ApixoNoBearer,
        "request.auth",
        "sends the key without 'Bearer '",
        ("success",),
    ),
    Broken(
        "pixazo-bearer-auth",
        "pixazo",
        PixazoBearerAuth,
        "request.auth",
        "sends Authorization: Bearer instead of Ocp-Apim-Subscription-Key",
        ("success",),
    ),
    Broken(
        "vtrix-text-body",
        "vtrix",
        VtrixTextBody,
        "request.content_type",
        "posts JSON as text/plain",
        ("success",),
    ),
    Broken(
        "aivideoapi-renames-model",
        "aivideoapi",
        AivideoapiRenamesModel,
        "request.body",
        "rewrites the model id to veo-3.1",
        ("success",),
    ),
    Broken(
        "pixazo-drops-fields",
        "pixazo",
        PixazoDropsOptionalFields,
        "request.body",
        "drops optional fields and adds a seed",
        ("success",),
    ),
    Broken(
        "apixo-wrong-path",
        "apixo",
        ApixoWrongPath,
        "request.routes",
        "submits to /generateTask/veo3",
        ("success",),
    ),
    Broken(
        "apixo-keeps-only-text-fields",
        "apixo",
        ApixoKeepsOnlyTextFields,
        "request.body",
        "drops image_urls and the other optional fields of the documented requests",
        ("success",),
    ),
    Broken("pixazo-polls-fast", "pixazo", PixazoPollsFast, "polling.interval", "polls every second", ("success",)),
    Broken(
        "apixo-eager-first-poll",
        "apixo",
        ApixoEagerFirstPoll,
        "polling.interval",
        "polls at once instead of after 60 s",
        ("success",),
    ),
    Broken(
        "vtrix-polls-after-end",
        "vtrix",
        VtrixPollsAfterEnd,
        "polling.stops_at_terminal",
        "polls twice more after the task ended",
        ("success",),
    ),
    Broken(
        "apixo-pending-is-failure",
        "apixo",
        ApixoPendingIsFailure,
        "result.success",
        "does not know the pending state (a task still queued at its first poll)",
        ("success",),
    ),
    Broken(
        "aivideoapi-ignores-timeout",
        "aivideoapi",
        AivideoapiIgnoresTimeout,
        "polling.timeout",
        "waits three times its timeout",
        ("hang",),
    ),
    Broken(
        "pixazo-gives-up-early",
        "pixazo",
        PixazoGivesUpEarly,
        "polling.timeout",
        "gives up at a third of its timeout",
        ("hang",),
    ),
    Broken(
        "apixo-reads-wrong-field",
        "apixo",
        ApixoReadsWrongField,
        "result.success",
        "reads data.resultUrls instead of the JSON in data.resultJson",
        ("success",),
    ),
    Broken(
        "vtrix-reports-task-url",
        "vtrix",
        VtrixReportsTaskUrl,
        "result.success",
        "reports the task URL instead of output[].content[].url",
        ("success",),
    ),
    Broken(
        "aivideoapi-skips-download",
        "aivideoapi",
        AivideoapiSkipsDownload,
        "result.download",
        "never downloads the result",
        ("success",),
    ),
    Broken(
        "aivideoapi-head-only",
        "aivideoapi",
        AivideoapiHeadOnly,
        "result.download",
        "sends HEAD and reports Content-Length instead of downloading",
        ("success",),
    ),
    Broken(
        "apixo-ignores-expiry",
        "apixo",
        ApixoIgnoresExpiry,
        "failure.category",
        "reports the expired URL's error page as the downloaded clip",
        ("expired",),
    ),
    Broken(
        "pixazo-partial-download",
        "pixazo",
        PixazoPartialDownload,
        "result.download",
        "reads only the first KiB of the file",
        ("success",),
    ),
    Broken(
        "vtrix-strict-status",
        "vtrix",
        VtrixStrictStatus,
        "result.success",
        "treats the CLI status names (pending, processing) as errors",
        ("success",),
    ),
    Broken(
        "apixo-message-as-code",
        "apixo",
        ApixoMessageAsCode,
        "failure.code",
        "reports failMsg as the failure code",
        ("job-failure",),
    ),
    Broken(
        "pixazo-error-as-failed",
        "pixazo",
        PixazoErrorAsFailed,
        "failure.kind",
        "reports a system ERROR as a generation failure",
        ("job-failure",),
    ),
    Broken(
        "gemini-keyless-download",
        "gemini",
        GeminiKeylessDownload,
        "result.success",
        "downloads the video without the API key, which the download route asks for",
        ("success",),
    ),
    Broken(
        "gemini-filtered-is-success",
        "gemini",
        GeminiFilteredIsSuccess,
        "failure.code",
        "takes a done operation whose video the safety filters removed for a success",
        ("job-failure",),
    ),
    Broken(
        "vtrix-numeric-code",
        "vtrix",
        VtrixNumericCode,
        "failure.code",
        "turns the code 002014001 into 2014001",
        ("job-failure",),
    ),
    Broken(
        "pixazo-balance-is-auth",
        "pixazo",
        PixazoBalanceIsAuth,
        "failure.category",
        "reports a 402 as an auth failure",
        ("refused",),
    ),
    Broken(
        "pixazo-bad-outcome",
        "pixazo",
        PixazoBadOutcome,
        "outcome.protocol",
        "prints its own result object instead of the protocol's outcome",
        ("success",),
    ),
    Broken(
        "aivideoapi-retries-4xx",
        "aivideoapi",
        AivideoapiRetries4xx,
        "retry.not_retryable",
        "retries 400, 401, 402 and 403",
        ("refused",),
    ),
    Broken(
        "aivideoapi-retries-spend-limit",
        "aivideoapi",
        AivideoapiRetriesSpendLimit,
        "retry.not_retryable",
        "retries the 429 spend_limit_exceeded, which is marked not retryable",
        ("refused",),
    ),
    Broken("apixo-no-retry", "apixo", ApixoNoRetry, "retry.transient", "never retries 429 or 5xx", ("transient",)),
    Broken(
        "pixazo-ignores-retry-after",
        "pixazo",
        PixazoIgnoresRetryAfter,
        "retry.retry_after",
        "backs off 1 s, 2 s whatever Retry-After says",
        ("transient",),
    ),
    Broken(
        "vtrix-no-backoff",
        "vtrix",
        VtrixNoBackoff,
        "retry.backoff",
        "retries at once, without waiting",
        ("transient",),
    ),
    Broken(
        "apixo-shrinking-backoff",
        "apixo",
        ApixoShrinkingBackoff,
        "retry.backoff",
        "waits 8 s, then 4 s, then 2 s",
        ("transient",),
    ),
    Broken(
        "vtrix-constant-backoff",
        "vtrix",
        VtrixConstantBackoff,
        "retry.backoff",
        "waits 2 s before every retry, never longer",
        ("transient",),
    ),
    Broken(
        "apixo-resubmits-after-network-error",
        "apixo",
        ApixoResubmitsAfterNetworkError,
        "retry.one_job",
        "resubmits after a reset or a hung submit, creating and paying for a second job",
        ("transport",),
    ),
    Broken(
        "pixazo-bad-poll-is-failure",
        "pixazo",
        PixazoBadPollIsFailure,
        "retry.transport",
        "reports the job as failed when one poll's answer is lost or garbled",
        ("transport",),
    ),
    Broken(
        "vtrix-retry-budget-per-job",
        "vtrix",
        VtrixRetryBudgetPerJob,
        "retry.transient",
        "counts its three retries per job, not per request",
        ("transient",),
    ),
    Broken(
        "aivideoapi-retries-forever",
        "aivideoapi",
        AivideoapiRetriesForever,
        "retry.gives_up",
        "retries a failing request twelve times",
        ("persistent",),
    ),
    Broken(
        "aivideoapi-ignores-callbacks",
        "aivideoapi",
        AivideoapiIgnoresCallbacks,
        "webhook.stops_polling",
        "keeps polling after the callback delivered the result",
        ("webhook",),
        webhooks=True,
    ),
    Broken(
        "aivideoapi-no-callback-url",
        "aivideoapi",
        AivideoapiNoCallbackUrl,
        "webhook.requested",
        "listens for callbacks but never puts callback_url in the submit",
        ("webhook",),
        webhooks=True,
    ),
    Broken(
        "aivideoapi-refuses-first-callback",
        "aivideoapi",
        AivideoapiRefusesFirstCallback,
        "webhook.ack",
        "answers the first callback with 500",
        ("webhook",),
        webhooks=True,
    ),
    Broken(
        "apixo-plain-http-receiver",
        "apixo",
        ApixoPlainHttpReceiver,
        "webhook.ack",
        "serves plain http where APIXO calls back over https only",
        ("webhook",),
        webhooks=True,
    ),
    Broken(
        "aivideoapi-acts-on-every-callback",
        "aivideoapi",
        AivideoapiActsOnEveryCallback,
        "webhook.idempotent",
        "downloads the result again for every duplicate callback",
        ("webhook",),
        webhooks=True,
    ),
    Broken(
        "aivideoapi-redoes-a-late-callback",
        "aivideoapi",
        AivideoapiRedoesALateCallback,
        "webhook.idempotent",
        "downloads the result again when the callback arrives after polling ended the job",
        ("webhook",),
        webhooks=True,
    ),
)


def by_name(name: str) -> Broken:
    for broken in CATALOGUE:
        if broken.name == name:
            return broken
    raise KeyError(f"no broken client {name!r}; known: {', '.join(b.name for b in CATALOGUE)}")

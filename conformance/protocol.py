"""The adapter protocol: what the suite hands a client (a job) and what it reads back (an outcome).

The same shapes serve the subprocess adapter (JSON on stdin and stdout, see PROTOCOL.md) and the
in-process Python adapter (plain dicts). Capabilities say what a client can do; they select the
scenarios and checks that apply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "CATEGORIES",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_CLOCK_URL",
    "ENV_PROVIDER",
    "ENV_SPEED",
    "ENV_WEBHOOK_ADDR",
    "ENV_WEBHOOK_CERT",
    "ENV_WEBHOOK_KEY",
    "Capabilities",
    "Job",
    "Outcome",
    "ProtocolError",
]

ENV_BASE_URL = "VEOMOCK_BASE_URL"
ENV_API_KEY = "VEOMOCK_API_KEY"
ENV_PROVIDER = "VEOMOCK_PROVIDER"
ENV_WEBHOOK_ADDR = "VEOMOCK_WEBHOOK_ADDR"
ENV_CLOCK_URL = "VEOMOCK_CLOCK_URL"
ENV_SPEED = "VEOMOCK_SPEED"
ENV_WEBHOOK_CERT = "VEOMOCK_WEBHOOK_CERT"  # PEM: the receiver's certificate chain, for https callbacks
ENV_WEBHOOK_KEY = "VEOMOCK_WEBHOOK_KEY"  # PEM: its private key

# Why a job did not succeed, as the client reports it.
CATEGORIES = {
    "failed": "the job ended in the provider's failed state (a generation failure)",
    "error": "the job ended in the provider's error state (a system error), where it has one",
    "invalid_request": "the request was refused as invalid (400), or the client refused it itself",
    "auth": "the API key was missing or refused (401, or 403 for access)",
    "insufficient_balance": "the account cannot pay for the job (402, or the provider's balance error)",
    "rate_limited": "429s went on after the client's retries",
    "unavailable": "5xx answers or network errors went on after the client's retries",
    "timeout": "the job did not end within the client's own timeout",
    "expired": "the result URL no longer served the media when the client fetched it",
}


class ProtocolError(ValueError):
    """A job or an outcome that does not follow the protocol; the message says what to fix."""


@dataclass(frozen=True)
class Job:
    """One job for the client: submit ``request`` for ``model``, wait, report."""

    provider: str
    model: str
    request: dict[str, Any]
    timeout: float = 900.0  # provider seconds the client waits for the job before giving up
    download: bool = True  # fetch the media and report its size
    webhook_url: str | None = None  # where the client's receiver listens, when it takes webhooks
    headers: dict[str, str] = field(default_factory=dict)  # extra headers the request needs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Job:
        try:
            return cls(
                provider=str(data["provider"]),
                model=str(data["model"]),
                request=dict(data["request"]),
                timeout=float(data.get("timeout", 900.0)),
                download=bool(data.get("download", True)),
                webhook_url=data.get("webhook_url"),
                headers=dict(data.get("headers") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not a job: {exc}; see conformance/PROTOCOL.md") from None


@dataclass(frozen=True)
class Outcome:
    """What the client reports: success with the media URLs, or failure with a category and code."""

    status: str  # "succeeded" or "failed"
    job_id: str | None = None
    urls: tuple[str, ...] = ()
    downloaded: tuple[int, ...] = ()  # bytes fetched per URL, when the job asked for downloads
    category: str | None = None
    code: str | None = None  # the provider's failure code, as text
    http_status: int | None = None  # the HTTP status of a refused request
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["urls"], out["downloaded"] = list(self.urls), list(self.downloaded)
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        if not isinstance(data, Mapping):
            raise ProtocolError(f"an outcome is a JSON object, not {type(data).__name__}")
        status = data.get("status")
        if status not in ("succeeded", "failed"):
            raise ProtocolError(f'outcome status must be "succeeded" or "failed", not {status!r}')
        category = data.get("category")
        if status == "failed" and category not in CATEGORIES:
            raise ProtocolError(f"a failed outcome needs a category, one of {', '.join(CATEGORIES)}; got {category!r}")
        urls = data.get("urls") or []
        downloaded = data.get("downloaded") or []
        if not isinstance(urls, Sequence) or isinstance(urls, str) or not all(isinstance(u, str) for u in urls):
            raise ProtocolError("outcome urls must be a list of strings")
        if not isinstance(downloaded, Sequence) or not all(isinstance(n, int) for n in downloaded):
            raise ProtocolError("outcome downloaded must be a list of byte counts")
        code = data.get("code")
        http_status = data.get("http_status")
        return cls(
            status=status,
            job_id=None if data.get("job_id") is None else str(data["job_id"]),
            urls=tuple(urls),
            downloaded=tuple(downloaded),
            category=category,
            code=None if code is None else str(code),
            http_status=None if http_status is None else int(http_status),
            message=data.get("message"),
        )


@dataclass(frozen=True)
class Capabilities:
    """What a client can do. ``models`` empty means every model of the provider."""

    polling: bool = True
    webhooks: bool = False
    downloads: bool = True
    models: tuple[str, ...] = ()
    max_retries: int = 3  # transient failures (429, 5xx) the client rides out per request

    def supports(self, model: str) -> bool:
        return not self.models or model in self.models

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["models"] = list(self.models)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Capabilities:
        known = {"polling", "webhooks", "downloads", "models", "max_retries"}
        unknown = set(data) - known
        if unknown:
            raise ProtocolError(f"unknown capabilities {sorted(unknown)}; known: {sorted(known)}")
        return cls(
            polling=bool(data.get("polling", True)),
            webhooks=bool(data.get("webhooks", False)),
            downloads=bool(data.get("downloads", True)),
            models=tuple(data.get("models") or ()),
            max_retries=int(data.get("max_retries", 3)),
        )

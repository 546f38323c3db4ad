"""Result checks: the outcome the client reports, against what the mock served.

``outcome.protocol`` (one valid outcome line), ``result.*`` (the media URLs at the contract's
``result.urls``, each downloaded whole before ``media.expires_after``) and ``failure.*`` (the
code at ``result.failure_code``, the failed and error states of ``lifecycle.states``, the
categories of refused requests from ``errors``).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from veomock.conformance.checks.core import Problem, Run, at, check, show
from veomock.conformance.facts import extract, result_paths
from veomock.conformance.server import Exchange


@check("outcome.protocol", "the client reports one valid outcome as PROTOCOL.md says", cites=("PROTOCOL.md (Outcome)",))
def _protocol(run: Run) -> Iterator[Problem]:
    if run.problem is not None:
        yield Problem(
            observed=run.problem + (f"; stderr: {run.stderr.strip()[-300:]}" if run.stderr.strip() else ""),
            expected="one JSON outcome on stdout and exit status 0",
            path="PROTOCOL.md (Outcome)",
            fix="print exactly one outcome object as the last line of stdout; see conformance/PROTOCOL.md",
        )


def _expects_success(run: Run) -> bool:
    return bool(run.scenario.expect.get("status") == "succeeded")


@check(
    "result.success",
    "a job that succeeds is reported with the media URLs the provider gave",
    _expects_success,
    cites=("result.urls", "lifecycle.states"),
    outcome=True,
)
def _success(run: Run) -> Iterator[Problem]:
    paths = result_paths(run.contract)
    outcome = run.reported
    if outcome.status != "succeeded":
        yield Problem(
            observed=f"outcome {outcome.status} ({outcome.category}: {outcome.message or outcome.code})",
            expected="succeeded: the job completed",
            path=paths.yaml_path("urls"),
            fix="follow the job to its terminal state and report success when it succeeded",
        )
        return
    wanted: list[str] = []
    for job in run.jobs:
        body = run.terminal_body(job)
        found = [str(u) for u in extract(body, paths.urls)] if body is not None else []
        wanted.extend(found or run.expected_urls.get(job, []))
    if list(outcome.urls) != wanted:
        yield Problem(
            observed=f"urls {show(list(outcome.urls))}",
            expected=f"urls {show(wanted)}, read from the status body at {paths.urls}",
            path=paths.yaml_path("urls"),
            fix=f"read the result URLs at {paths.urls} of the completed status body",
        )


def _downloads(run: Run) -> bool:
    return _expects_success(run) and run.job.download and run.capabilities.downloads


@check(
    "result.download",
    "each result file is downloaded, whole, before the URL expires",
    _downloads,
    cites=("media.path", "media.expires_after"),
    outcome=True,
)
def _download(run: Run) -> Iterator[Problem]:
    outcome = run.reported
    if outcome.status != "succeeded":
        return
    expires = run.contract.media_expires_after
    fetched: dict[str, Exchange] = {}
    for exchange in run.media:
        # A download is a GET answered 200 with the whole file: a HEAD or a range request is not.
        if exchange.method == "GET" and exchange.status == 200 and "range" not in exchange.headers:
            fetched.setdefault(_path_of(exchange), exchange)
    for exchange in run.media:  # a URL that redirects is fetched once what it points to is
        target = _url_path(exchange.response_headers.get("location", ""))
        if 300 <= exchange.status < 400 and target in fetched:
            fetched.setdefault(_path_of(exchange), fetched[target])
    for i, url in enumerate(outcome.urls):
        got = fetched.get(_url_path(url))
        if got is None:
            seen = [f"{e.method} {e.status}" for e in run.media if e.path == _url_path(url)]
            yield Problem(
                observed=f"{url} was never fetched whole ({', '.join(seen) or 'no request'})",
                expected="a GET of every result URL, answered 200 with the whole file (no Range)",
                path="media.path",
                fix="download each result URL with a plain GET after the job succeeds, and read the whole body",
            )
            continue
        done = max(run.completed_at.values(), default=got.time)
        if expires is not None and got.time > done + expires:
            yield Problem(
                observed=f"{url} fetched at {at(run, got.time)}, {got.time - done:g}s after completion",
                expected=f"within {expires:g}s of completion",
                path="media.expires_after",
                fix="download results as soon as the job succeeds; the URLs expire",
            )
        reported = outcome.downloaded[i] if i < len(outcome.downloaded) else None
        size = got.response_bytes or run.media_sizes.get(got.job or "", 0)
        if reported != size:
            yield Problem(
                observed=f"reported {reported} bytes for {url}",
                expected=f"{size} bytes, the whole file",
                path="media.content_type",
                fix="read the whole response body and report its size in outcome.downloaded",
            )


def _url_path(url: str) -> str:

    return urlsplit(url).path


def _path_of(exchange: Exchange) -> str:
    return exchange.path


def _job_failure(run: Run) -> bool:
    return run.scenario.kind == "job-failure"


@check(
    "failure.code",
    "a job that fails is reported with the provider's failure code",
    _job_failure,
    cites=("result.failure_code", "failures.codes"),
    outcome=True,
)
def _failure_code(run: Run) -> Iterator[Problem]:
    paths = result_paths(run.contract)
    outcome = run.reported
    codes: list[str] = []
    for job in run.jobs:
        codes.extend(str(c) for c in extract(run.terminal_body(job), paths.failure_code))
    if outcome.status != "failed":
        yield Problem(
            observed=f"outcome {outcome.status}",
            expected=f"failed with code {codes[0] if codes else '?'}",
            path="lifecycle.states",
            fix="treat the failed and error states as terminal failures",
        )
        return
    if codes and outcome.code != codes[0]:
        yield Problem(
            observed=f"code {outcome.code!r}",
            expected=f"code {codes[0]!r}, read at {paths.failure_code} of the terminal status body",
            path=paths.yaml_path("failure_code"),
            fix=f"report the provider's code from {paths.failure_code} unchanged",
        )


@check(
    "failure.kind",
    "generation failures and system errors are told apart where the provider does",
    _job_failure,
    cites=("lifecycle.states",),
    outcome=True,
)
def _failure_kind(run: Run) -> Iterator[Problem]:
    outcome = run.reported
    allowed = run.scenario.expect.get("categories", [])
    if outcome.status == "failed" and outcome.category not in allowed:
        states = run.contract.states
        yield Problem(
            observed=f"category {outcome.category!r}",
            expected=f"category {' or '.join(allowed)} (status {states['failed']!r} is a failure, "
            f"{states['error']!r} a system error)",
            path="lifecycle.states",
            fix="map the provider's failed state to category failed and its error state to category error",
        )


def _refusal(run: Run) -> bool:
    kind = run.scenario.kind
    failing = kind in ("transport", "expired") and run.scenario.expect.get("status") == "failed"
    return failing or kind in ("refused", "invalid-request", "persistent", "hang")


# Where the contract says why the job could not succeed, by scenario kind (refusals name their error).
_WHY = {
    "hang": "lifecycle.timing",
    "expired": "media.expires_after",
    "transport": "PROTOCOL.md (Outcome)",
    "invalid-request": "models",
}


@check(
    "failure.category",
    "a refused, abandoned, unreachable or expired job is reported with the right category",
    _refusal,
    cites=("errors", "media.expires_after", "PROTOCOL.md (Outcome)"),
    outcome=True,
)
def _failure_category(run: Run) -> Iterator[Problem]:
    outcome = run.reported
    expect = run.scenario.expect
    allowed = expect.get("categories", [])
    rule = run.scenario.rules[0]["action"].get("error") if run.scenario.rules else None
    path = f"errors.{rule}.status" if rule else _WHY.get(run.scenario.kind, "models")
    if outcome.status != "failed" or outcome.category not in allowed:
        yield Problem(
            observed=f"outcome {outcome.status}, category {outcome.category!r}",
            expected=f"failed, category {' or '.join(allowed)}",
            path=path,
            fix="map HTTP errors and time-outs to the protocol's categories (PROTOCOL.md, Outcome)",
        )
    wanted = expect.get("http_status")
    if wanted is not None and outcome.status == "failed" and outcome.http_status != wanted:
        yield Problem(
            observed=f"http_status {outcome.http_status}",
            expected=f"http_status {wanted}",
            path=path,
            fix="report the HTTP status of the refused request in outcome.http_status",
        )

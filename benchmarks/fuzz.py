"""``make fuzz``: Schemathesis against the live mock from its OpenAPI documents, then a long soak.

Part one generates requests for every operation of every provider from the document
:func:`veomock.mocks.openapi.document` gives (Schemathesis, seeded) and sends them to a mock
served over a real socket, with the server-side checks: no 5xx, responses conform to the
documented schemas, documented status codes, documented content types. Part two is the soak of
:mod:`benchmarks.soak` at 200,000 mixed requests against ``veomock serve``, each answer checked
against its operation's documented schema. It prints requests tried, 5xx answers, dropped
connections, answers not in a provider's shape, the server's RSS before and after, and how many
callback targets beyond loopback were refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seeded
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from veomock.conformance.facts import auth_headers
from veomock.contracts import Contract, available, load
from veomock.mocks import Clock, build_app, create_state
from veomock.mocks.openapi import document
from veomock.mocks.serving import ServerThread

from benchmarks import soak

__all__ = ["Shapes", "Tried", "main", "schemathesis_run"]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Tried:
    """What Schemathesis sent to one provider's mock, and every check that failed."""

    provider: str
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def schemathesis_run(provider: str, examples: int, seed: int | None = None) -> Tried:
    """``examples`` valid and ``examples`` invalid cases per operation of ``provider``, against a fresh
    mock on a socket; derandomized when ``seed`` is None, else seeded with it."""
    state = create_state([provider], seed=1, clock=Clock(speed=0, start=1_767_965_610.0))
    contract = state.contracts[provider]
    tried = Tried(provider)
    auth = auth_headers(contract, "sk-fuzz-key")
    options = {
        "max_examples": examples,
        "derandomize": seed is None,
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "phases": [Phase.explicit, Phase.generate],
    }
    with ServerThread() as server:
        server.use(build_app(state))
        schema = schemathesis.openapi.from_dict(document(contract, server.base_url))
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                test = _test(result.ok(), mode, server.base_url, auth, tried, options)
                try:
                    (test if seed is None else seeded(seed)(test))()
                except Unsatisfiable:  # nothing of this operation can be invalid (no body, no parameter)
                    continue
    return tried


def _test(
    operation: Any, mode: GenerationMode, base_url: str, auth: dict[str, str], tried: Tried, options: dict[str, Any]
) -> Any:
    """A Hypothesis test that sends every case Schemathesis draws for ``operation`` (valid or
    invalid, as ``mode`` says) and checks the answer."""
    label = f"{operation.label} ({mode.value})"

    def call(case: Any) -> None:
        tried.cases += 1
        response = case.call(base_url=base_url, headers={**(case.headers or {}), **auth}, timeout=30)
        tried.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, Exception) as exc:  # a failed check: kept, with what was sent and answered
            if len(tried.failures) < 20:
                tried.failures.append(f"{label}: {exc}\n  sent {case.body!r:.300}\n  got {response.text[:300]}")

    return settings(**options)(given(case=operation.as_strategy(generation_mode=mode))(call))


class Shapes:
    """Is an answer in its provider's documented shape? The document's schema for its operation and status."""

    def __init__(self, contracts: dict[str, Contract]) -> None:
        self.validators: dict[tuple[str, str, int], Any] = {}
        self.statuses: dict[tuple[str, str], set[int]] = {}
        for provider, contract in contracts.items():
            spec = document(contract)
            for methods in spec["paths"].values():
                for operation in methods.values():
                    name = operation["operationId"]
                    for status, answer in operation["responses"].items():
                        self.statuses.setdefault((provider, name), set()).add(int(status))
                        media = answer.get("content", {}).get("application/json")
                        if media is not None:
                            self.validators[(provider, name, int(status))] = jsonschema_rs.validator_for(
                                media["schema"]
                            )

    def problem(self, provider: str, operation: str | None, status: int, body: bytes) -> str | None:
        """Why an answer is not in shape, or None."""
        if operation is None:
            return None
        if status not in self.statuses.get((provider, operation), ()):
            return f"{provider} {operation}: status {status} is not documented"
        validator = self.validators.get((provider, operation, status))
        if validator is None:
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return f"{provider} {operation}: {status} answer is not JSON: {body[:120]!r}"
        if not validator.is_valid(value):
            return f"{provider} {operation}: {status} answer is not in the documented shape: {body[:200]!r}"
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz")
    parser.add_argument("--examples", type=int, default=400, help="Schemathesis cases per operation")
    parser.add_argument("--requests", type=int, default=200_000, help="requests in the soak")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    providers = list(available())
    print(f"== Schemathesis from the OpenAPI documents: {args.examples} cases per operation, seed {args.seed} ==")
    total = 0
    failures: list[str] = []
    for provider in providers:
        started = time.perf_counter()
        tried = schemathesis_run(provider, args.examples, args.seed)
        total += tried.cases
        failures += tried.failures
        fivexx = sum(n for s, n in tried.statuses.items() if s >= 500)
        seconds = time.perf_counter() - started
        print(
            f"  {provider:<11} {tried.cases:>6} cases in {seconds:5.1f} s; 5xx {fivexx}; "
            f"failed checks {len(tried.failures)}; statuses {dict(sorted(tried.statuses.items()))}"
        )
    print(f"  total: {total} cases, {len(failures)} failed checks")
    for failure in failures[:10]:
        print("  " + failure.replace("\n", "\n    "))

    print(f"== soak: {args.requests:,} mixed requests against veomock serve ==")
    shapes = Shapes({p: load(p) for p in providers})
    with soak.Server("--speed", "600", "--max-jobs", "2000") as server:
        result = asyncio.run(soak.soak(server, args.requests, max(args.requests // 10, 1), shapes=shapes))
    print(soak.report(result))
    print(
        f"  figures: requests tried {total + result.sent:,} ({total:,} Schemathesis, {result.sent:,} soak); "
        f"5xx {sum(n for s, n in result.statuses.items() if s >= 500)}; dropped connections {result.dropped}; "
        f"answers not in a provider's shape {result.off_shape + len(failures)}; "
        f"RSS {result.rss[0][1]:.1f} MiB before, {result.rss[-1][1]:.1f} MiB after; "
        f"hostile callback targets refused {result.refused_targets} of {result.kinds['target']}"
    )


if __name__ == "__main__":
    main()

"""Messages speak JSON: hostile and incomplete bodies get answers that say null, string, array.

Every field of every documented request (top level and one level down) is dropped or replaced by
a value of each other JSON type; the answer is never a 500 and never carries Python's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from veomock.contracts import Contract
from veomock.mocks import MockState

from tests.conftest import PROVIDERS
from tests.helpers import auth_headers, fixtures, operation

PYTHON = re.compile(
    r"\bNone\b|NoneType|\bTrue\b|\bFalse\b|\b(dict|list|str|int|float|bool|tuple)\b|object is not|indices must"
    r"|Traceback|[a-z]Error\b|\bu?'[^']*'\s+is not of type"
)
HOSTILE: list[Any] = [None, [], {}, "", "x", 0, -1, 1.5, True, [None], [[]], {"a": None}]


def _variants(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "whole body null", None
    yield "whole body array", [body]
    for name, value in body.items():
        yield f"{name} dropped", {k: v for k, v in body.items() if k != name}
        for hostile in HOSTILE:
            yield f"{name}={hostile!r}", {**body, name: hostile}
        if isinstance(value, dict):
            for inner in value:
                yield f"{name}.{inner} dropped", {**body, name: {k: v for k, v in value.items() if k != inner}}
                for hostile in HOSTILE:
                    yield f"{name}.{inner}={hostile!r}", {**body, name: {**value, inner: hostile}}


def _requests(contract: Contract) -> Iterator[tuple[Any, dict[str, Any]]]:
    for _, data in fixtures(contract.provider, "requests"):
        op = operation(contract, data["operation"])
        if op.kind == "submit":
            yield op, data


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answers_to_hostile_bodies_speak_json(client: TestClient, state: MockState, provider: str) -> None:
    contract = state.contracts[provider]
    seen = 0
    for op, data in _requests(contract):
        headers = {**auth_headers(contract), **data.get("headers", {})}
        for label, body in _variants(data["body"]):
            response = client.request(op.method, op.path, json=body, headers=headers)
            seen += 1
            assert response.status_code < 500, (op.name, label, response.text)
            assert not PYTHON.search(response.text), (op.name, label, response.text)
            assert not PYTHON.search(response.headers.get("X-Veomock-Hint", "")), (op.name, label)
    assert seen > 100


CONTROL_CALLS = [
    ("POST", "/_veomock/clock", '{"advance": null}'),
    ("POST", "/_veomock/clock", '{"speed": [1]}'),
    ("POST", "/_veomock/clock", "[1]"),
    ("POST", "/_veomock/clock", "null"),
    ("POST", "/_veomock/balances", '{"key": null, "balance": 1}'),
    ("POST", "/_veomock/balances", '{"key": ["k"], "balance": 1}'),
    ("POST", "/_veomock/balances", '{"key": "k", "balance": null}'),
    ("POST", "/_veomock/balances", '{"key": "k", "balance": 1, "provider": null}'),
    ("POST", "/_veomock/balances", '{"key": "k", "balance": 1, "provider": 7}'),
    ("POST", "/_veomock/limits", '{"provider": null}'),
    ("POST", "/_veomock/limits", '{"provider": "%s", "requests_per_minute": NaN}'),
    ("POST", "/_veomock/limits", '{"provider": "%s", "bogus": 1}'),
    ("POST", "/_veomock/webhooks", "{}"),
    ("POST", "/_veomock/webhooks", '{"policy": null}'),
    ("POST", "/_veomock/webhooks", '{"policy": {"mode": null, "job": "j"}}'),
    ("POST", "/_veomock/webhooks", '{"policy": {"mode": "drop"}}'),
    ("POST", "/_veomock/webhooks", '{"policy": {"mode": "drop", "job": "j", "key": "k"}}'),
    ("POST", "/_veomock/webhooks", '{"policy": {"mode": "delay", "seconds": null, "job": "j"}}'),
    ("POST", "/_veomock/jobs/nope", '{"state": null}'),
    ("POST", "/_veomock/scenarios", "null"),
    ("POST", "/_veomock/scenarios", '{"action": null}'),
    ("POST", "/_veomock/chaos", "[]"),
    ("POST", "/_veomock/reset", ""),
]


@pytest.mark.parametrize(("method", "path", "body"), CONTROL_CALLS)
def test_control_refusals_speak_json(client: TestClient, method: str, path: str, body: str) -> None:
    response = client.request(method, path, content=body.replace("%s", PROVIDERS[0]))
    assert response.status_code < 500, response.text
    assert not PYTHON.search(response.text), response.text
    if response.status_code == 400:
        assert any(word in response.text for word in ("send", "use", "known", "must", "such as")), response.text

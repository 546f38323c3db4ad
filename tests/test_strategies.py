"""Round trip: what conformance.strategies generates is what the mock accepts, or refuses.

Parametrised over every contract in contracts/, so a new contract is covered by adding its YAML.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from veomock.conformance.facts import api_key, auth_headers, body_path, submit_operation, webhook_body_fields
from veomock.conformance.strategies import StrategyError, from_schema, invalid_requests, merge, valid_requests
from veomock.contracts import Contract, Model, available, load
from veomock.mocks import build_app, create_state
from veomock.mocks.clock import Clock
from veomock.mocks.responses import resolve_error
from veomock.mocks.scenarios import magic_in_key, magic_in_prompt
from veomock.mocks.validation import RequestValidator

EXAMPLES = 40
HOOK = "https://127.0.0.1:9/veomock-hook"  # loopback, nothing listens: no traffic leaves the machine


def _models() -> list[Any]:
    out = []
    for provider in available():
        contract = load(provider)
        for name in contract.models:
            out.append(pytest.param(provider, name, id=f"{provider}:{name}"))
    return out


MODELS = _models()


def _fields(contract: Contract, model: Model) -> dict[str, st.SearchStrategy[Any]]:
    return {path: st.just(HOOK) for path in webhook_body_fields(contract, model)}


class _Mock:
    """One mock app per test, driven over httpx.ASGITransport on a private event loop."""

    def __init__(self, provider: str) -> None:
        self.state = create_state([provider], seed=0, clock=Clock(speed=0, start=1_700_000_000))
        self.contract = self.state.contracts[provider]
        self.runner = asyncio.Runner()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(self.state)), base_url="http://mock"
        )
        self.keys = itertools.count()

    def post(self, path: str, body: Any) -> httpx.Response:
        key = api_key(self.contract, f"-{next(self.keys)}")  # a fresh balance for every request
        headers = {**auth_headers(self.contract, key), "content-type": "application/json"}

        async def send() -> httpx.Response:
            return await self.client.post(path, content=json.dumps(body), headers=headers)

        return self.runner.run(send())

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


@pytest.fixture
def mock(request: pytest.FixtureRequest) -> Iterator[_Mock]:
    provider = request.node.callspec.params["provider"]
    mock = _Mock(provider)
    yield mock
    mock.close()


def _envelope_matches(expected: Any, actual: Any, sentinel: str) -> bool:
    """``actual`` has the shape of ``expected``; where ``expected`` holds the sentinel message,
    ``actual`` may hold any non-empty text."""
    if isinstance(expected, str) and sentinel in expected:
        return isinstance(actual, str) and bool(actual.strip())
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(expected) == set(actual)
            and all(_envelope_matches(v, actual[k], sentinel) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_envelope_matches(e, a, sentinel) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


@pytest.mark.parametrize(("provider", "model_name"), MODELS)
def test_valid_requests_validate(provider: str, model_name: str) -> None:
    contract = load(provider)
    model = contract.models[model_name]
    validator = RequestValidator(model)
    reference = jsonschema.Draft202012Validator(model.full_schema)

    @settings(max_examples=EXAMPLES * 2)
    @given(valid_requests(model, fields=_fields(contract, model)))
    def check(body: dict[str, Any]) -> None:
        assert validator.check(body) is None, (body, validator.check(body))
        assert reference.is_valid(body)

    check()


@pytest.mark.parametrize(("provider", "model_name"), MODELS)
def test_invalid_requests_are_invalid(provider: str, model_name: str) -> None:
    model = load(provider).models[model_name]
    validator = RequestValidator(model)
    reference = jsonschema.Draft202012Validator(model.full_schema)

    @settings(max_examples=EXAMPLES * 2)
    @given(invalid_requests(model))
    def check(mutation: tuple[dict[str, Any], str]) -> None:
        body, reason = mutation
        assert reason
        assert not reference.is_valid(body), reason
        assert not validator.is_valid(body), reason

    check()


@pytest.mark.parametrize(("provider", "model_name"), MODELS)
def test_mock_accepts_valid_requests(provider: str, model_name: str, mock: _Mock) -> None:
    contract = mock.contract
    model = contract.models[model_name]
    op = submit_operation(contract, model)

    @settings(max_examples=EXAMPLES)
    @given(valid_requests(model, fields=_fields(contract, model)))
    def check(body: dict[str, Any]) -> None:
        response = mock.post(op.path, body)
        assert 200 <= response.status_code < 300, (body, response.status_code, response.text)
        assert response.status_code == contract.submit.status

    check()


@pytest.mark.parametrize(("provider", "model_name"), MODELS)
def test_mock_refuses_invalid_requests_in_the_provider_envelope(provider: str, model_name: str, mock: _Mock) -> None:
    contract = mock.contract
    model = contract.models[model_name]
    op = submit_operation(contract, model)
    sentinel = "\x00veomock-message\x00"
    selector = body_path(op.model_from)

    @settings(max_examples=EXAMPLES)
    @given(invalid_requests(model))
    def check(mutation: tuple[dict[str, Any], str]) -> None:
        body, reason = mutation
        response = mock.post(op.path, body)
        chosen = op.models[0] if op.model_from is None else op.model_from.render({"body": body})
        # A body naming no served model is refused before validation: as a missing model or an unknown one.
        if chosen in op.models or selector is None:
            name = "invalid_request"
        else:
            name = "model_missing" if chosen is None or chosen == "" else "model_not_found"
        spec = resolve_error(contract, name)
        assert response.status_code == spec.status, (reason, body, response.text)
        expected = spec.body.render({"message": sentinel, "retry_after": 1, "job": {}})
        assert _envelope_matches(expected, response.json(), sentinel), (reason, expected, response.text)
        entry = mock.state.journal[-1]
        if reason.startswith("breaks rule "):
            assert entry.get("rule") == reason.removeprefix("breaks rule ").split(":")[0], (reason, entry)

    check()


def test_pattern_strings_follow_ecma_semantics() -> None:
    strategy = from_schema({"type": "string", "pattern": r"^\d+s$"})

    @settings(max_examples=50)
    @given(strategy)
    def check(value: str) -> None:
        assert value.isascii() and value.endswith("s") and "\n" not in value

    check()


def test_merge_refuses_contradictions() -> None:
    with pytest.raises(StrategyError, match="const"):
        merge({"const": 8}, {"const": 4})
    assert merge({"type": "integer", "enum": [4, 6, 8]}, {"const": 8}) == {
        "type": "integer",
        "enum": [4, 6, 8],
        "const": 8,
    }
    assert merge({"maxItems": 3}, {"maxItems": 2, "minItems": 1}) == {"maxItems": 2, "minItems": 1}


def test_bad_arguments_raise_one_error_type() -> None:
    with pytest.raises(StrategyError):
        from_schema(False)
    with pytest.raises(StrategyError):
        valid_requests("not a model")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^veomock[:-]"},
        {
            "type": "object",
            "required": ["prompt"],
            "properties": {"prompt": {"type": "string", "pattern": "^a cat veomock[:. ]"}},
        },
        {"type": "string", "pattern": "^sk-veomock-(error|hang|fail|[a-z]{2})"},
    ],
    ids=["prompt-or-key", "prompt-field", "key"],
)
def test_generated_strings_are_never_magic_inputs(schema: dict[str, Any]) -> None:
    """The mock reads ``veomock:...`` in a prompt and ``veomock-<directive>`` in a key as a request
    for a fault; a valid body must ask for the provider's ordinary answer, whatever the profile."""

    @settings(max_examples=60, derandomize=True, database=None)
    @given(from_schema(schema))
    def check(value: Any) -> None:
        text = value["prompt"] if isinstance(value, dict) else value
        assert not magic_in_prompt(text) and magic_in_key(text) is None, text

    check()

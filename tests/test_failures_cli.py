"""``veomock failures``: every failure mode of every provider, from the contracts, with its trigger."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from veomock.conformance.command import main
from veomock.mocks.failures import example_body, magic_key
from veomock.mocks.scenarios import magic_in_key

from tests.conftest import PROVIDERS
from tests.faulty import load, submit_op

README = Path(__file__).resolve().parent.parent / "README.md"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["failures", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lists_every_error_failure_and_fault_of_every_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "--json")
    assert code == 0
    listing = {p["provider"]: p for p in json.loads(out)}
    assert sorted(listing) == PROVIDERS
    for provider, entry in listing.items():
        contract = load(provider)
        assert [e["name"] for e in entry["http_errors"]] == list(contract.errors)
        assert [f["code"] for f in entry["task_failures"]] == [f.code for f in contract.failures]
        assert {t["fault"] for t in entry["transport"]} == {"delay", "hang", "reset", "truncate", "malformed"}
        for error in entry["http_errors"]:
            assert error["status"] == contract.errors[error["name"]].status
            assert error["prompt"] == f"veomock:error={error['name']}"
            assert magic_in_key(error["key"]) == f"error={error['name']}"
            assert error["rule"]["action"] == {"error": error["name"]}
            assert error["chaos"]["faults"] == {f"error:{error['name']}": 1.0}
            assert error["client_sees"].startswith(f"HTTP {error['status']}")
        for failure in entry["task_failures"]:
            assert failure["status"] == contract.states[failure["state"]]
            assert failure["rule"]["action"] == {"fail": failure["code"]}
        assert entry["limits"]["status"] == 429


def test_one_provider_and_the_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    provider = PROVIDERS[-1]
    code, out, _ = _run(capsys, "--provider", provider)
    assert code == 0
    assert out.count("HTTP errors") == 1 and provider in out
    for name in load(provider).errors:
        assert f"veomock:error={name}" in out
    for failure in load(provider).failures:
        assert re.search(rf"veomock:fail={re.escape(str(failure.code).replace(' ', '%20'))}\b", out)
    assert "veomock:hang" in out and "veomock:reset" in out


def test_an_unknown_provider_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--provider", PROVIDERS[0][:-1] + "x")
    assert code == 2 and f"did you mean {PROVIDERS[0]!r}?" in err


def test_markdown_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--markdown")
    assert code == 0
    assert out.count("| failure | what the client sees | magic prompt | magic API key |") == len(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_examples_are_valid_and_magic_keys_pass_the_key_check(provider: str) -> None:
    contract = load(provider)
    _, model = submit_op(contract)
    assert example_body(model) is not None, "the catalogue's example body must be a valid request"
    key = magic_key(contract, "error=internal")
    if contract.auth.key_pattern:
        assert re.search(contract.auth.key_pattern, key)
        example = contract.raw["auth"].get("example_key")
        assert example is None or re.search(contract.auth.key_pattern, example)
    assert magic_in_key(key) == "error=internal"


def test_the_readme_has_the_cookbook() -> None:
    text = README.read_text()
    assert "## Reproduce a provider failure" in text
    tokens = ("veomock:fail=", "veomock-error=", "/_veomock/scenarios", "/_veomock/chaos", "veomock failures")
    for token in tokens:
        assert token in text

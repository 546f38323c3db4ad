"""The mock's JSON parsing and encoding answer exactly as the standard library would."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from veomock.mocks.jsontext import TooDeep, dumps, loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _std(raw: bytes | str) -> tuple[str, Any]:
    try:
        return "ok", json.loads(raw)
    except ValueError as exc:
        return "error", str(exc)


def _ours(raw: bytes | str) -> tuple[str, Any]:
    try:
        return "ok", loads(raw)
    except ValueError as exc:
        return "error", str(exc)


@given(JSON | st.integers(min_value=-(2**80), max_value=2**80))
def test_documents_parse_as_the_standard_library_parses_them(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert _ours(text.encode()) == _std(text.encode())


@given(st.binary(max_size=40) | st.text(alphabet='{}[]":,0123456789.eE+-tfnrulasNIy \\\ud800', max_size=40))
def test_any_input_parses_or_fails_as_the_standard_library_says(raw: bytes | str) -> None:
    ours, std = _ours(raw), _std(raw)
    if ours[0] == "ok" and std[0] == "ok" and isinstance(std[1], float) and math.isnan(std[1]):
        assert isinstance(ours[1], float) and math.isnan(ours[1])
    else:
        assert ours == std


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b"[Infinity, -Infinity, 1e400]",
        b"123456789012345678901234567890",
        b"[18446744073709551616, -9223372036854775809]",
        b'"\\ud800"',
        '{"a": 1}'.encode("utf-16"),
    ],
)
def test_what_orjson_refuses_the_standard_library_decides(raw: bytes) -> None:
    assert repr(loads(raw)) == repr(json.loads(raw))


def test_nesting_too_deep_is_a_value_error_that_says_so() -> None:
    with pytest.raises(TooDeep, match="nested too deeply"):
        loads(b"[" * 100_000)


@given(JSON)
def test_encoding_round_trips(value: Any) -> None:
    assert json.loads(dumps(value)) == value


def test_numbers_json_cannot_carry_encode_as_null() -> None:
    assert dumps({"a": math.inf, "b": -math.inf, "c": math.nan}) == b'{"a":null,"b":null,"c":null}'


def test_what_orjson_cannot_encode_the_standard_library_does() -> None:
    assert dumps({"n": 2**70}) == b'{"n":1180591620717411303424}'
    assert dumps({1: "a"}) == b'{"1":"a"}'
    assert dumps({"text": "é"}) == '{"text":"é"}'.encode()


def test_encoded_bodies_take_no_more_memory_than_their_length() -> None:
    import sys
    import tracemalloc

    from veomock.mocks import jsontext

    # Only what jsontext's own lines allocated counts: other threads of the test session (servers,
    # webhook dispatchers) allocate too while this runs.
    tracemalloc.start()
    try:
        body = dumps({"code": 200, "message": "success", "data": {"taskId": "task_12345678"}})
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, jsontext.__file__)])
        held = sum(stat.size for stat in snapshot.statistics("filename"))
    finally:
        tracemalloc.stop()
    assert held <= sys.getsizeof(body) + 64, (held, len(body))

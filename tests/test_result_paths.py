"""Result paths read what a client reports: dotted keys, `*`, `$json`, and `|` alternatives."""

from __future__ import annotations

from veomock.conformance.facts import extract


def test_alternatives_yield_the_first_that_has_a_value() -> None:
    failed = {"done": True, "error": {"code": 13, "message": "internal"}}
    filtered = {"done": True, "response": {"reasons": ["blocked by a filter"]}}
    path = "error.code | response.reasons"
    assert extract(failed, path) == [13]
    assert extract(filtered, path) == ["blocked by a filter"]
    assert extract({"done": True}, path) == []


def test_paths_walk_lists_and_json_strings() -> None:
    body = {"data": {"resultJson": '{"urls": ["a", "b"]}'}, "output": [{"url": "c"}, {"url": "d"}]}
    assert extract(body, "data.resultJson.$json.urls") == ["a", "b"]
    assert extract(body, "output.*.url") == ["c", "d"]
    assert extract(body, "output.1.url") == ["d"]

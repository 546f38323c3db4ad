"""The contract template language."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from veomock.contracts.templates import OMIT, TemplateError, compile_expression, compile_template

JOB = {"job": {"id": "t1", "created_at": 1767965610.929, "n": None, "urls": ["a", "b"]}}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ job.id }}", "t1"),
        ("{{ job.created_at | unix_ms }}", 1767965610929),
        ("{{ job.created_at | unix_s }}", 1767965610),
        ("{{ job.created_at | iso_ms }}", "2026-01-09T13:33:30.929Z"),
        ("{{ job.created_at | iso }}", "2026-01-09T13:33:30Z"),
        ("{{ job.created_at | sql }}", "2026-01-09 13:33:30"),
        ("{{ job.n | default('16:9') }}", "16:9"),
        ("{{ job.n | unix_ms }}", None),
        ("{{ job.urls.1 }}", "b"),
        ("id={{ job.id }}/{{ job.n }}", "id=t1/"),
        ({"$json": {"u": "{{ job.urls }}"}}, '{"u":["a","b"]}'),
        ({"a": "{{ job.n | omit_if_none }}", "b": 1}, {"b": 1}),
        (["{{ job.id }}", "{{ job.n | omit_if_none }}"], ["t1"]),
        ("{{ body.duration | seconds }}", None),
    ],
)
def test_render(template: object, expected: object) -> None:
    assert compile_template(template).render(JOB) == expected


def test_seconds_filter_reads_suffixed_durations() -> None:
    assert compile_expression("body.d | seconds")({"body": {"d": "8s"}}) == 8
    assert compile_expression("body.d | seconds")({"body": {"d": 6}}) == 6


def test_omit_marker_is_internal() -> None:
    assert repr(OMIT) == "OMIT"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ jbo.id }}", "unknown root 'jbo'"),
        ("{{ job.id | nope }}", "unknown filter 'nope'"),
        ("{{ job.id | default(not json) }}", "not a JSON literal"),
        ("{{ job..id }}", "not a dotted path"),
    ],
)
def test_bad_templates_say_what_to_fix(source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        compile_template(source)


def test_static_templates_return_fresh_copies() -> None:
    template = compile_template({"a": [1]})
    first = template.render({})
    first["a"].append(2)
    assert template.render({}) == {"a": [1]}


def _reference_lookup(ctx: Any, keys: list[str]) -> Any:
    value = ctx
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


class _ReadOnly(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


_VALUES = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "1"]), inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "0", "1"]), inner, max_size=3).map(_ReadOnly)
    ),
    max_leaves=12,
)


@given(_VALUES, st.lists(st.sampled_from(["a", "b", "0", "1"]), min_size=0, max_size=4))
def test_paths_of_any_length_read_dicts_mappings_and_lists(value: Any, rest: list[str]) -> None:
    ctx = {"body": value}
    path = ".".join(["body", *rest])
    assert compile_template("{{ " + path + " }}").render(ctx) == _reference_lookup(ctx, ["body", *rest])

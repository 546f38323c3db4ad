"""The contract template language."""

from __future__ import annotations

import pytest

from contracts.templates import OMIT, TemplateError, compile_expression, compile_template

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

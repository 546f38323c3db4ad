"""Reports of a conformance run: a terminal summary with progress, JUnit XML, and JSON."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from veomock.conformance.checks import CHECKS
from veomock.conformance.checks.core import REAL_SLACK
from veomock.conformance.runner import Result

__all__ = ["Progress", "describe_mode", "summary", "to_json", "write_json", "write_junit"]


class Progress:
    """One character per scenario, pytest style: ``.`` passed, ``F`` failed."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 64) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stdout

    def __call__(self, result: Result) -> None:
        self.done += 1
        self.stream.write("." if result.passed else "F")
        if self.done % self.width == 0 or self.done == self.total:
            self.stream.write(f" [{self.done}/{self.total}]\n")
        self.stream.flush()


def _tally(results: Sequence[Result]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for result in results:
        failed = {f.check for f in result.failures}
        for name in result.applied:
            row = table.setdefault(name, {"scenarios": 0, "failed": 0})
            row["scenarios"] += 1
            row["failed"] += name in failed
    return table


def describe_mode(mode: Mapping[str, Any] | None) -> list[str]:
    """How the run graded: exact or real time (and its tolerance), and what traffic-only skipped."""
    mode = mode or {}
    if mode.get("speed"):
        lines = [
            f"  time: real-time, provider time at {mode['speed']:g}x; intervals judged to "
            f"{mode['tolerance']:g} provider seconds ({REAL_SLACK * 1000:g} ms real)"
        ]
    else:
        lines = ["  time: exact (the client waits through the clock URL)"]
    if mode.get("traffic_only"):
        lines.append("  traffic-only: the client's requests are graded, no outcome is read; skipped:")
        lines += [f"    {name}: {why}" for name, why in mode.get("skipped_checks", {}).items()]
        lines += [f"    scenarios of kind {kind}: {why}" for kind, why in mode.get("skipped_kinds", {}).items()]
    return lines


def summary(
    results: Sequence[Result], provider: str, client: str, limit: int = 10, mode: Mapping[str, Any] | None = None
) -> str:
    """How the run graded, the table of checks, then the first ``limit`` failures in full."""
    table = _tally(results)
    lines = [f"veomock conformance: {provider}, client {client}", *describe_mode(mode)]
    width = max([len(n) for n in CHECKS] + [5])
    lines.append(f"  {'check':<{width}}  scenarios  failed")
    for name in CHECKS:
        row = table.get(name)
        if row is None:
            lines.append(f"  {name:<{width}}  {'-':>9}  {'n/a':>6}")
        else:
            mark = "" if not row["failed"] else "  <-"
            lines.append(f"  {name:<{width}}  {row['scenarios']:>9}  {row['failed']:>6}{mark}")
    failures = [f for r in results for f in r.failures]
    passed = sum(r.passed for r in results)
    if failures:
        lines.append("")
        for failure in failures[:limit]:
            lines.append(failure.render())
        if len(failures) > limit:
            lines.append(f"... and {len(failures) - limit} more failures (see the JSON report)")
    lines.append("")
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def to_json(
    results: Sequence[Result], provider: str, client: str, mode: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "provider": provider,
        "client": client,
        "mode": dict(mode or {"time": "exact", "speed": 0.0, "tolerance": 0.0}),
        "checks": {
            name: {"title": spec.title, **_tally(results).get(name, {"scenarios": 0, "failed": 0})}
            for name, spec in CHECKS.items()
        },
        "scenarios": [
            {
                "id": r.scenario.id,
                "kind": r.scenario.kind,
                "passed": r.passed,
                "checks": r.applied,
                "outcome": r.run.outcome.to_json() if r.run.outcome else None,
                "failures": [f.to_json() for f in r.failures],
                "replay": str(r.replay) if r.replay else None,
            }
            for r in results
        ],
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
    }


def write_json(
    path: Path | str, results: Sequence[Result], provider: str, client: str, mode: Mapping[str, Any] | None = None
) -> None:
    report = to_json(results, provider, client, mode)
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def write_junit(path: Path | str, results: Sequence[Result], provider: str) -> None:
    """One testsuite per provider, one testcase per (scenario, check that applied)."""
    cases = [(r, name) for r in results for name in r.applied]
    failed = sum(1 for r, name in cases if any(f.check == name for f in r.failures))
    suite = ET.Element(
        "testsuite",
        name=f"veomock.{provider}",
        tests=str(len(cases)),
        failures=str(failed),
        errors="0",
        skipped="0",
    )
    for result, name in cases:
        case = ET.SubElement(suite, "testcase", classname=result.scenario.id, name=name)
        for failure in (f for f in result.failures if f.check == name):
            node = ET.SubElement(case, "failure", message=f"{failure.observed}; expected {failure.expected}")
            node.text = failure.render()
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(str(path), encoding="utf-8", xml_declaration=True)

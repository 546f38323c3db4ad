"""``veomock drift``: compare a recorded session with the contract, and say what to change.

Every request of a HAR session (``veomock record``, veomock's journal, any HAR export) is read
against one contract:

- routes: each request is one of the contract's operations (or its media route);
- status codes: each answer's status is the operation's documented one or an error's;
- body shapes: each answer has the fields of the contract's body for its state (missing, unexpected
  and wrongly typed fields), and each error answer has the envelope of one of the contract's errors;
- states: each status names a state of ``lifecycle.states``, and a job's states come in order
  (queued, running, then one end, which lasts);
- ids: each job id has the contract's ``job_id.format``;
- timings: how long a job was queued and running, bounded by the polls around each change, falls
  within ``lifecycle.timing``.

Each difference comes with the contract path to change. Repeated differences (every poll of the
same shape) are reported once, with a count.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from veomock.contracts import CANONICAL_STATES, TERMINAL_STATES, Contract, ContractError, Operation, load
from veomock.mocks.har import (
    Exchange,
    HarError,
    find_route,
    job_fields,
    read_har,
    request_job_id,
    status_state,
    value_at,
)
from veomock.mocks.jsontext import json_type

__all__ = ["Difference", "add_arguments", "drift", "id_pattern", "kinds", "run_drift"]

_RANK = {"queued": 0, "running": 1, **dict.fromkeys(TERMINAL_STATES, 2)}
_NUMERIC = {"unix_ms", "unix_s", "ms", "int", "float", "round", "seconds"}
_TEXT = {"iso", "iso_ms", "sql", "str", "lower", "upper", "json"}
_ANY = "any"
_SLACK = 1.0  # provider seconds of tolerance on timing bounds (clock granularity)


@dataclass
class Difference:
    kind: str  # route, status, shape, state, order, id, timing, envelope
    request: str  # "POST /path (entry 3)"
    observed: str
    expected: str
    path: str  # the contract path to change
    count: int = 1

    def key(self) -> tuple[str, str, str, str]:
        """What makes two differences the same one: an id or a timing is one difference however
        many jobs show it (the first is shown, with a count)."""
        return (self.kind, self.path, "" if self.kind in ("id", "timing") else self.observed, self.expected)

    def render(self, contract: Contract) -> str:
        times = f" (x{self.count})" if self.count > 1 else ""
        return (
            f"{self.kind:<8} {self.request}{times}\n"
            f"         observed: {self.observed}\n"
            f"         contract: {self.expected}\n"
            f"         change:   contracts/{contract.file.name}: {self.path}"
        )

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "request", "observed", "expected", "path", "count")}


# -- shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    shape: Any  # dict of _Field, [shape], "string", "number", "boolean", "null", "object", _ANY, ("$json", shape)
    optional: bool = False


_PLACEHOLDER = re.compile(r"^\{\{(.*)\}\}$")


def _template_shape(source: Any) -> _Field:
    """The shape a response template renders to: fixed values by type, placeholders by their filters."""
    if isinstance(source, Mapping):
        if set(source) == {"$json"}:
            return _Field(("$json", _template_shape(source["$json"]).shape))
        return _Field({str(k): _template_shape(v) for k, v in source.items()})
    if isinstance(source, list):
        return _Field([_template_shape(source[0]).shape] if source else [])
    if isinstance(source, str):
        found = _PLACEHOLDER.match(source.strip())
        if found is None:
            return _Field("string")
        filters = [f.strip().split("(")[0] for f in found.group(1).split("|")[1:]]
        optional = "omit_if_none" in filters
        kind = _ANY
        for name in filters:
            kind = "number" if name in _NUMERIC else "string" if name in _TEXT else kind
        return _Field(kind, optional)
    if isinstance(source, bool):
        return _Field("boolean")
    if isinstance(source, int | float):
        return _Field("number")
    return _Field(_ANY if source is None else "object")


def _expected_type(shape: Any) -> str:
    if isinstance(shape, dict):
        return "object"
    if isinstance(shape, list):
        return "array"
    if isinstance(shape, tuple):
        return "string (JSON)"
    return str(shape)


def shape_differences(shape: Any, value: Any, where: str) -> Iterator[tuple[str, str, str]]:
    """(dotted path, observed, expected) for every way ``value`` departs from ``shape``."""
    if value is None or shape == _ANY:
        return
    if isinstance(shape, tuple):  # a JSON document inside a string
        inner = None
        if isinstance(value, str):
            try:
                inner = json.loads(value)
            except json.JSONDecodeError:
                inner = None
        if inner is None:
            yield where, f"{json_type(value)} {json.dumps(value)[:60]}", "a string holding JSON"
            return
        yield from shape_differences(shape[1], inner, where)
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            yield where, json_type(value), "object"
            return
        for name, spec in shape.items():
            if name not in value:
                if not spec.optional:
                    yield f"{where}.{name}", "missing", f"a field ({_expected_type(spec.shape)})"
                continue
            yield from shape_differences(spec.shape, value[name], f"{where}.{name}")
        for name in value:
            if name not in shape:
                yield f"{where}.{name}", f"an unexpected field ({json_type(value[name])})", "no such field"
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            yield where, json_type(value), "array"
        elif shape and value:
            yield from shape_differences(shape[0], value[0], f"{where}[0]")
        return
    if shape != json_type(value) and not (shape == "object" and isinstance(value, dict | list)):
        yield where, json_type(value), str(shape)


def _shape_of(spec: Any) -> Any:
    return _template_shape(spec.body.source).shape


def _compare_body(shape: Any, x: Exchange, where: str) -> list[tuple[str, str, str]]:
    if isinstance(shape, dict | list) and not x.json:
        return [(where, f"not JSON: {x.response_text[:60]!r}", "a JSON body")]
    return list(shape_differences(shape, x.response_body, where))


# -- ids ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\{([a-z0-9]+)(?::(\d+))?\}")
_TOKENS = {
    "uuid4": "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "uuid7": "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "hex": "[0-9a-f]{%s}",
    "digits": "[0-9]{%s}",
    "xid": "[0-9a-v]{%s}",
}


def id_pattern(contract: Contract) -> re.Pattern[str]:
    """A regular expression for the ids that ``job_id.format`` makes."""
    fmt = str(contract.raw["job_id"]["format"])
    out, last = [], 0
    for token in _TOKEN.finditer(fmt):
        out.append(re.escape(fmt[last : token.start()]))
        name, size = token.group(1), token.group(2)
        if name == "model":
            out.append("(?:" + "|".join(re.escape(m) for m in sorted(contract.models, key=len, reverse=True)) + ")")
        else:
            default = "20" if name == "xid" else "1,"
            out.append(_TOKENS[name] % (size or default) if "%s" in _TOKENS[name] else _TOKENS[name])
        last = token.end()
    out.append(re.escape(fmt[last:]))
    return re.compile("^" + "".join(out) + "$")


# -- the session -------------------------------------------------------------------------------


@dataclass
class _Job:
    id: str
    submitted: float
    polls: list[tuple[float, frozenset[str], str]] = field(default_factory=list)  # time, canonical candidates


def _label(x: Exchange) -> str:
    return f"{x.method} {x.path} (entry {x.index})"


def _route(contract: Contract, x: Exchange) -> tuple[Operation | None, dict[str, str]] | None:
    host = urlsplit(x.url).hostname or ""
    return find_route(contract, x.method, x.path) or find_route(contract, x.method, f"/{host}{x.path}")


def _success_status(contract: Contract, op: Operation) -> set[int]:
    if op.kind == "submit":
        return {contract.submit.status}
    if op.kind == "status":
        return {spec.status for spec in contract.status.values()}
    return {contract.balance.status} if contract.balance is not None else set()


def _state_names(contract: Contract) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for canonical, name in contract.states.items():
        names.setdefault(str(name), set()).add(canonical)
    return names


class _Session:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.found: dict[tuple[str, str, str, str], Difference] = {}
        self.jobs: dict[str, _Job] = {}
        self.ids = id_pattern(contract)
        self.names = _state_names(contract)
        status_at = {job_fields(s.body.source).get("status") for s in contract.status.values()}
        self.status_at = [p for p in status_at if p is not None]

    def report(self, kind: str, x: Exchange, observed: str, expected: str, path: str) -> None:
        difference = Difference(kind, _label(x), observed, expected, path)
        seen = self.found.get(difference.key())
        if seen is None:
            self.found[difference.key()] = difference
        else:
            seen.count += 1

    def read(self, x: Exchange) -> None:
        contract = self.contract
        route = _route(contract, x)
        if route is None:
            own = ", ".join(f"{op.method} {op.path}" for op in contract.operations)
            self.report("route", x, f"{x.method} {x.path}", f"the operations are {own}", "operations")
            return
        op, params = route
        if op is None or x.status == 0:
            return  # a media download (its bytes are no contract's shape), or no answer at all
        if x.status >= 400:
            self.error(x, op)
            return
        success = _success_status(contract, op)
        if x.status not in success:
            wanted = " or ".join(str(s) for s in sorted(success))
            path = {"submit": "responses.submit.status", "balance": "responses.balance.status"}
            self.report("status", x, f"status {x.status}", f"status {wanted}", path.get(op.kind, "responses.status"))
        if op.kind == "submit":
            self.submitted(x)
        elif op.kind == "status":
            self.polled(x, op, params)
        elif contract.balance is not None:
            self.shape(x, _shape_of(contract.balance), "responses.balance.body")

    def shape(self, x: Exchange, shape: Any, path: str) -> None:
        for where, observed, expected in _compare_body(shape, x, path):
            self.report("shape", x, f"{where.removeprefix(path).lstrip('.') or 'body'}: {observed}", expected, where)

    def error(self, x: Exchange, op: Operation) -> None:
        contract = self.contract
        candidates = [spec for spec in contract.errors.values() if spec.status == x.status]
        if not candidates:
            declared = sorted({spec.status for spec in contract.errors.values()})
            expected = f"an error status, one of {', '.join(map(str, declared))}"
            self.report("status", x, f"status {x.status}", expected, "errors")
            return
        best = min(candidates, key=lambda spec: len(_compare_body(_shape_of(spec), x, "")))
        path = f"errors.{best.name}.body"
        for where, observed, expected in _compare_body(_shape_of(best), x, path):
            self.report("envelope", x, f"{where.removeprefix(path).lstrip('.') or 'body'}: {observed}", expected, where)

    def submitted(self, x: Exchange) -> None:
        contract = self.contract
        self.shape(x, _shape_of(contract.submit), "responses.submit.body")
        where = job_fields(contract.submit.body.source).get("id")
        ident = value_at(x.response_body, where) if where is not None else None
        if ident is None:
            return
        if not self.ids.match(str(ident)):
            fmt = contract.raw["job_id"]["format"]
            self.report("id", x, f"job id {ident!r}", f"ids like {fmt}", "job_id.format")
        self.jobs[str(ident)] = _Job(str(ident), x.time)

    def polled(self, x: Exchange, op: Operation, params: Mapping[str, str]) -> None:
        contract = self.contract
        candidates, name, _ = status_state(contract, x.response_body)
        if not candidates:
            if self.status_at:
                known = ", ".join(sorted(self.names))
                observed = f"state {name!r}" if name is not None else "no state in the answer"
                self.report("state", x, observed, f"one of {known}", "lifecycle.states")
            else:
                self.report("state", x, "a body that fits no state", "the body of one state", "responses.status")
            return
        scored = {c: _compare_body(_shape_of(contract.status[c]), x, f"responses.status.{c}.body") for c in candidates}
        best = min(sorted(candidates, key=CANONICAL_STATES.index), key=lambda c: len(scored[c]))
        for where, observed, expected in scored[best]:
            prefix = f"responses.status.{best}.body"
            self.report("shape", x, f"{where.removeprefix(prefix).lstrip('.') or 'body'}: {observed}", expected, where)
        ident = request_job_id(op, x, params)
        job = self.jobs.get(ident) if ident is not None else None
        if job is not None:
            job.polls.append((x.time, frozenset(candidates), _label(x)))
            self.order(job, x)

    def order(self, job: _Job, x: Exchange) -> None:
        if len(job.polls) < 2:
            return
        (_, before, _), (_, now, _) = job.polls[-2], job.polls[-1]
        low_before, high_now = min(_RANK[s] for s in before), max(_RANK[s] for s in now)
        ended = before <= TERMINAL_STATES and now != before
        if high_now < low_before or ended:
            was, became = "/".join(sorted(before)), "/".join(sorted(now))
            expected = "queued, running, then one end that lasts"
            self.report("order", x, f"{was} then {became}", expected, "lifecycle.states")

    def timings(self) -> None:
        contract = self.contract
        (q_low, q_high), (r_low, r_high) = contract.timing["queued"], contract.timing["running"]
        for job in self.jobs.values():
            # A job may fail at any time: only one that succeeded can have been too quick.
            quick = bool(job.polls) and job.polls[-1][1] == frozenset({"succeeded"})
            distinct = all(len(c) == 1 or c <= TERMINAL_STATES for _, c, _ in job.polls)
            marks = [(t, min(_RANK[s] for s in c), label) for t, c, label in job.polls]
            spans = [("queued", 0, q_low, q_high), ("running", 1, r_low, r_high)] if distinct else []
            for state, rank, low, high in spans:
                bounds = self._span(job, marks, rank)
                if bounds is not None:
                    self._judge(job, f"lifecycle.timing.{state}", f"{state} for", bounds, low, high, quick)
            ended = self._ended(job, marks)
            if ended is not None:
                total = (q_low + r_low, q_high + r_high)
                self._judge(job, "lifecycle.timing", "from submit to the end", ended, *total, quick)

    def _span(self, job: _Job, marks: list[tuple[float, int, str]], rank: int) -> tuple[float, float | None] | None:
        """How long the job held ``rank``: (at least, at most or None), from the polls around it."""
        inside = [t for t, r, _ in marks if r == rank]
        if rank == 0:
            inside = [job.submitted, *inside]
        if not inside:
            return None
        before = [t for t, r, _ in marks if r < rank and t <= inside[0]]
        after = [t for t, r, _ in marks if r > rank and t >= inside[-1]]
        start_low = inside[0] if rank == 0 else max(before, default=job.submitted)
        end_high = min(after, default=None)
        least = inside[-1] - inside[0]
        return least, None if end_high is None else end_high - start_low

    def _ended(self, job: _Job, marks: list[tuple[float, int, str]]) -> tuple[float, float | None] | None:
        ends = [t for t, r, _ in marks if r == 2]
        if not ends:
            before = [t for t, r, _ in marks if r < 2]
            return (before[-1] - job.submitted, None) if before else None
        last_before = max((t for t, r, _ in marks if r < 2 and t < ends[0]), default=job.submitted)
        return last_before - job.submitted, ends[0] - job.submitted

    def _judge(
        self,
        job: _Job,
        path: str,
        what: str,
        bounds: tuple[float, float | None],
        low: float,
        high: float,
        quick: bool,
    ) -> None:
        least, most = bounds
        if least > high + _SLACK or (quick and most is not None and most < low - _SLACK):
            span = f"at least {least:g} s" if most is None else f"between {least:g} and {most:g} s"
            difference = Difference("timing", f"job {job.id}", f"{what} {span}", f"{low:g} to {high:g} s", path)
            seen = self.found.setdefault(difference.key(), difference)
            seen.count += seen is not difference


def drift(contract: Contract, har: Any) -> list[Difference]:
    """Every way a HAR session (text, bytes or parsed) departs from ``contract``."""
    session = _Session(contract)
    for exchange in read_har(har):
        session.read(exchange)
    session.timings()
    return list(session.found.values())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, help="the contract to compare the session with")
    parser.add_argument("session", metavar="SESSION.har", help="a HAR file: veomock record, or any HAR export")
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")


def run_drift(args: argparse.Namespace) -> int:
    try:
        contract = load(args.provider)
        differences = drift(contract, Path(args.session).read_bytes())
    except (ContractError, HarError, OSError) as exc:
        print(f"veomock: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([d.to_json() for d in differences], indent=2, ensure_ascii=False))
    elif differences:
        print(f"drift: {len(differences)} differences between {args.session} and contracts/{contract.file.name}\n")
        print("\n\n".join(d.render(contract) for d in differences))
    else:
        print(f"no drift: {args.session} follows contracts/{contract.file.name}")
    return 1 if differences else 0


def kinds(differences: Iterable[Difference]) -> set[tuple[str, str]]:
    """(kind, contract path) of each difference: what a test compares."""
    return {(d.kind, d.path) for d in differences}

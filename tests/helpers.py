"""Shared test helpers: contract-driven requests, fixtures and shape comparison."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from veomock.contracts import Contract

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
API_KEY = "sk-veomock-test"


def auth_headers(contract: Contract, key: str = API_KEY) -> dict[str, str]:
    value = f"Bearer {key}" if contract.auth.scheme == "bearer" else key
    return {contract.auth.header: value}


def media_headers(contract: Contract, key: str = API_KEY) -> dict[str, str]:
    """What a result download sends: the API key where the contract's media route asks for it."""
    return auth_headers(contract, key) if contract.media_auth else {}


def names_states(contract: Contract) -> bool:
    """Whether status bodies carry the provider's state name (some have only a done flag)."""
    return all((spec.body.fields("job") or {"status"}) >= {"status"} for spec in contract.status.values())


def fixtures(provider: str, kind: str) -> list[tuple[str, dict[str, Any]]]:
    folder = FIXTURES / provider / kind
    return [(p.stem, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def all_fixtures(providers: list[str], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for provider in providers:
        for name, data in fixtures(provider, kind):
            yield provider, name, data


def operation(contract: Contract, name: str) -> Any:
    for op in contract.operations:
        if op.name == name:
            return op
    raise AssertionError(f"{contract.provider} has no operation {name!r}")


# The documented examples' callback hosts; the mock calls back to loopback only unless told, and
# tests send nothing beyond loopback, so sample requests name a closed loopback port instead.
EXAMPLE_CALLBACK = re.compile(r"^https?://(your-server\.com|example\.com)(?=[/:]|$)")
CLOSED_LOOPBACK = "https://127.0.0.1:9"


def on_loopback(value: Any) -> Any:
    """``value`` with every URL of an example host moved to a closed loopback port."""
    if isinstance(value, str):
        return EXAMPLE_CALLBACK.sub(CLOSED_LOOPBACK, value)
    if isinstance(value, dict):
        return {k: on_loopback(v) for k, v in value.items()}
    if isinstance(value, list):
        return [on_loopback(v) for v in value]
    return value


def sample_request(contract: Contract, op_name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """A documented request for a submit operation (the first fixture that targets it), its
    callback URLs on loopback."""
    for _, data in fixtures(contract.provider, "requests"):
        op = operation(contract, data["operation"])
        if op.kind == "submit" and (op_name is None or op.name == op_name):
            return op, on_loopback(data)
    raise AssertionError(f"{contract.provider} has no request fixture for {op_name or 'any submit'}")


def shape(value: Any) -> Any:
    """A value's JSON shape: keys and types, not contents. null matches any type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def shape_diff(documented: Any, actual: Any, where: str = "body") -> list[str]:
    """What a mock answer lacks of a documented example: fields missing or of another type.

    Examples differ in which optional fields they show (one error example has no timestamps,
    another has them), so fields the mock adds beyond one example are not differences.
    """
    doc, act = shape(documented), shape(actual)
    return _diff(doc, act, where)


def _diff(doc: Any, act: Any, where: str) -> list[str]:
    if doc == "null" or act == "null":
        return []
    if isinstance(doc, dict) and isinstance(act, dict):
        out = [f"{where}.{k}: documented but missing" for k in doc if k not in act]
        for k in doc.keys() & act.keys():
            out += _diff(doc[k], act[k], f"{where}.{k}")
        return out
    if isinstance(doc, list) and isinstance(act, list):
        if doc and act:
            return _diff(doc[0], act[0], f"{where}[0]")
        return []
    return [] if doc == act else [f"{where}: documented {doc}, mock gives {act}"]


def request_path(op: Any, job_id: str) -> tuple[str, dict[str, str]]:
    """URL path and query for a status operation reading ``job_id``."""
    path, query = op.locate(job_id)
    return path, query


def mp4_facts(data: bytes) -> dict[str, float]:
    """Width, height, duration and frame rate read from an MP4's boxes (moov/trak/mdia)."""
    facts: dict[str, float] = {}

    def walk(buf: bytes, start: int, end: int) -> None:
        i = start
        while i + 8 <= end:
            size, kind = struct.unpack(">I4s", buf[i : i + 8])
            if size < 8:
                return
            body = i + 8
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                walk(buf, body, i + size)
            elif kind == b"mvhd":
                timescale, duration = struct.unpack(">II", buf[body + 12 : body + 20])
                facts["duration"] = duration / timescale
            elif kind == b"tkhd":
                w, h = struct.unpack(">II", buf[i + size - 8 : i + size])
                if w and h:
                    facts["width"], facts["height"] = w >> 16, h >> 16
            elif kind == b"mdhd":
                facts["timescale"] = struct.unpack(">I", buf[body + 12 : body + 16])[0]
            elif kind == b"stts":
                count, delta = struct.unpack(">II", buf[body + 8 : body + 16])
                facts["fps"] = facts.get("timescale", 0) / delta if delta else 0
                facts["frames"] = count
            i += size

    walk(data, 0, len(data))
    return facts


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []

"""Mixed traffic for the soaks, built from the contracts and their documented requests.

Per provider: the documented submits (without their callback fields), a status poll of a job a
submit created, the balance, and hostile requests (malformed JSON, a body past the size limit,
an unknown route, a lone surrogate, a callback beyond loopback).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veomock.contracts import Contract, Operation, load

BIG = 1 << 20
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    kind: str = "other"  # submit, status, balance, hostile, target
    submit: Operation | None = None  # what a status poll needs to follow a submit
    operation: str | None = None  # the contract operation answering, when there is one


def _auth(contract: Contract, key: str) -> dict[str, str]:
    return {contract.auth.header: f"Bearer {key}" if contract.auth.scheme == "bearer" else key}


def _root(expr: Any) -> tuple[str, str]:
    text = str(expr.source).strip("{} ").split("|")[0].strip()
    root, _, name = text.partition(".")
    return root, name


def _without_callbacks(contract: Contract, body: dict[str, Any], headers: dict[str, str]) -> None:
    for channel in contract.webhook_channels:
        for expr in (channel.url_from, channel.mode_from, channel.filter_from, channel.when_from):
            if expr is not None:
                root, name = _root(expr)
                if root == "body":
                    body.pop(name.split(".")[0], None)
                for header in [h for h in headers if h.lower() == name]:
                    headers.pop(header)


def _id_path(template: Any) -> list[str] | None:
    if template == "{{ job.id }}":
        return []
    if isinstance(template, dict):
        for key, value in template.items():
            found = _id_path(value)
            if found is not None:
                return [key, *found]
    return None


def job_id(contract: Contract, answer: Any) -> str | None:
    """The job id in a submit answer, where the contract's submit response puts it."""
    path = _id_path(contract.submit.body.source)
    for part in path or []:
        answer = answer.get(part) if isinstance(answer, dict) else None
    return answer if isinstance(answer, str) and path is not None else None


def status_call(contract: Contract, submit: Operation, job: str, key: str) -> Call:
    op = next(o for o in contract.operations if o.kind == "status" and set(o.models) & set(submit.models))
    path, query = op.locate(job)
    return Call(op.method, path, _auth(contract, key), params=query, kind="status", operation=op.name)


class Traffic:
    """Calls for every provider in ``providers``, drawn with a seeded random source."""

    def __init__(self, providers: list[str], keys: int = 20, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.contracts = {p: load(p) for p in providers}
        self.keys = [f"sk-soak-{i}" for i in range(keys)]
        self.submits: dict[str, list[tuple[Operation, dict[str, Any], dict[str, str]]]] = {}
        for provider, contract in self.contracts.items():
            folder = FIXTURES / provider / "requests"
            ops = {op.name: op for op in contract.operations}
            out = []
            for item in sorted(folder.iterdir(), key=lambda f: f.name):
                if not item.name.endswith(".json"):
                    continue
                data = json.loads(item.read_text())
                op = ops[data["operation"]]
                if op.kind == "submit":
                    body, headers = data["body"], dict(data.get("headers", {}))
                    _without_callbacks(contract, body, headers)
                    out.append((op, body, headers))
            self.submits[provider] = out

    def draw(self, jobs: dict[str, list[tuple[Operation, str, str]]]) -> tuple[str, Call]:
        """One call: mostly submits and polls of known jobs, some balances, some hostile input."""
        rng = self.rng
        provider = rng.choice(list(self.contracts))
        contract = self.contracts[provider]
        key = rng.choice(self.keys)
        roll = rng.random()
        if roll < 0.45 and jobs.get(provider):
            submit, job, owner = rng.choice(jobs[provider])
            return provider, status_call(contract, submit, job, owner)
        op, body, headers = rng.choice(self.submits[provider])
        base = {**headers, **_auth(contract, key), "Content-Type": "application/json"}
        if roll < 0.8:
            return provider, Call(
                op.method, op.path, base, json.dumps(body).encode(), kind="submit", submit=op, operation=op.name
            )
        if roll < 0.85:
            balance = next((o for o in contract.operations if o.kind == "balance"), None)
            if balance is not None:
                return provider, Call(
                    balance.method, balance.path, _auth(contract, key), kind="balance", operation=balance.name
                )
        return provider, self.hostile(contract, op, body, base)

    def hostile(self, contract: Contract, op: Operation, body: dict[str, Any], headers: dict[str, str]) -> Call:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            return Call(op.method, op.path, headers, b'{"prompt": [', kind="hostile", operation=op.name)
        if choice == 1:
            return Call(
                op.method, op.path, headers, b'{"prompt": "' + b"x" * BIG + b'"}', kind="hostile", operation=op.name
            )
        if choice == 2:
            return Call("GET", op.path + "/../../etc/passwd%00", headers, kind="hostile")
        if choice == 3:
            return Call(
                op.method,
                op.path,
                headers,
                json.dumps({**body, "\ud800": "\udfff"}).encode(),
                kind="hostile",
                operation=op.name,
            )
        if choice == 4:
            return Call(
                op.method, op.path, {**headers, "Host": 'a"b<c>@evil/x?'}, json.dumps(body).encode(), operation=op.name
            )
        channels = [c for c in contract.webhook_channels if not c.models or set(c.models) & set(op.models)]
        channel = rng.choice(channels) if channels else None
        if channel is None:
            return Call(op.method, op.path, headers, b"[]", kind="hostile", operation=op.name)
        root, name = _root(channel.url_from)
        url = rng.choice(["https://169.254.169.254/latest/meta-data", "https://10.0.0.1/", "http://example.com:6379/"])
        target = dict(body)
        extra = dict(headers)
        if root == "header":
            extra[name] = url
        elif root == "body":
            node = target
            *parents, last = name.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = url
            if channel.when_from is not None:
                when_root, when_name = _root(channel.when_from)
                if when_root == "body":
                    target[when_name.split(".")[0]] = channel.when_in[0]
        return Call(op.method, op.path, extra, json.dumps(target).encode(), kind="target", operation=op.name)

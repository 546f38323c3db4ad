"""The catalogue's example requests: Hypothesis finds them once, a file on disk keeps them.

A scenario's request is the minimal valid (or invalid) body that Hypothesis shrinks to for a
model: deterministic (derandomized), but a search that costs most of a second per contract. So
each answer is kept in ``$VEOMOCK_CACHE_DIR`` (default ``$XDG_CACHE_HOME/veomock``, else
``~/.cache/veomock``), under a key made of everything it depends on: the contract file, the
variant choice, the model, the strategies' source and the Hypothesis version. A check that finds
its examples there starts without importing Hypothesis at all. An unwritable cache is no error:
the examples are then found again each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from veomock.conformance.facts import submit_operation, webhook_body_fields
from veomock.contracts import available, load

__all__ = ["cache_dir", "example_body"]

_SOURCES = ("strategies.py", "examples.py", "facts.py")  # here, besides the contracts' loader and model


def cache_dir() -> Path:
    explicit = os.environ.get("VEOMOCK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veomock"


@cache
def _fingerprint(provider: str) -> str:
    from importlib.metadata import version

    from veomock.contracts import loader, model

    digest = hashlib.sha256(available()[provider].read_bytes())
    here = Path(__file__).resolve().parent
    for path in [*(here / name for name in _SOURCES), Path(loader.__file__), Path(model.__file__)]:
        digest.update(path.read_bytes())
    digest.update(version("hypothesis").encode())
    return digest.hexdigest()[:16]


def _path(provider: str) -> Path:
    return cache_dir() / f"examples-{provider}-{_fingerprint(provider)}.json"


@cache
def _stored(provider: str) -> dict[str, str]:
    try:
        data = json.loads(_path(provider).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(provider: str, key: str, body: str) -> None:
    table = _stored(provider)
    table[key] = body
    path = _path(provider)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(table, handle, sort_keys=True)
        os.replace(handle.name, path)
    except OSError:
        pass


@lru_cache(maxsize=256)
def example_body(provider: str, variants: str, model: str, invalid: bool) -> str:
    """The minimal valid body for ``model`` (JSON text), or with ``invalid`` a minimal invalid
    one that breaks a cross-field rule where the model has one. ``variants`` is JSON."""
    key = json.dumps([variants, model, invalid])
    found = _stored(provider).get(key)
    if found is None:
        found = _find(provider, variants, model, invalid)
        _store(provider, key, found)
    return found


def _find(provider: str, variants: str, model: str, invalid: bool) -> str:
    from hypothesis import Phase, find, settings
    from hypothesis import strategies as st
    from veomock.conformance.strategies import Mutation, invalid_requests, valid_requests

    contract = load(provider, json.loads(variants) or None)
    m = contract.models[model]
    how = settings(database=None, derandomize=True, max_examples=200, phases=(Phase.generate,))
    if invalid:
        has_rules = bool(m.rules)
        op = submit_operation(contract, m)

        def wanted(mutation: Mutation) -> bool:
            # Keep the mutation away from the field that selects the model: the point is a body
            # the model refuses, not a model the route does not serve.
            if op.model_from is not None and op.model_from.render({"body": mutation.body}) not in op.models:
                return False
            return mutation.reason.startswith("breaks rule") or not has_rules

        return json.dumps(find(invalid_requests(m), wanted, settings=how).body)
    fields: dict[str, Any] = {path: st.just("https://example.com/hook") for path in webhook_body_fields(contract, m)}
    return json.dumps(find(valid_requests(m, fields=fields), lambda body: True, settings=how))

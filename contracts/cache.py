"""Checked contracts kept on disk, so a start-up skips parsing and checking what has not changed.

An entry holds a contract's data after every check and its variant choices, and is found by a
hash of all that decides them: the file's bytes, the variants chosen, the loader's own code and
the contract schema, and the Python version (the entries are ``marshal`` data). Only contracts
that loaded without error are written. The cache lives in ``$VEOMOCK_CACHE_DIR``, else
``$XDG_CACHE_HOME/veomock``, else ``~/.cache/veomock``; a directory that cannot be written or an
entry that cannot be read only means the contract is parsed and checked again.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["directory", "key", "read", "write"]

_HERE = Path(__file__).resolve().parent
# Everything besides the contract file that decides what a load gives.
_CODE = ("cache.py", "loader.py", "model.py", "templates.py", "contract.schema.yaml")


def directory() -> Path:
    if os.environ.get("VEOMOCK_CACHE_DIR"):
        return Path(os.environ["VEOMOCK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "veomock"


@cache
def _code_digest() -> bytes:
    digest = hashlib.sha256(sys.version.encode())
    for name in _CODE:
        digest.update((_HERE / name).read_bytes())
    return digest.digest()


def key(content: str, variants: Mapping[str, str]) -> str:
    digest = hashlib.sha256(_code_digest())
    digest.update(repr(sorted(variants.items())).encode())
    digest.update(content.encode())
    return digest.hexdigest()


def read(entry: str) -> Any | None:
    """The value kept under ``entry``, or None when there is none (or it cannot be read)."""
    try:
        return marshal.loads((directory() / entry).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None


def write(entry: str, value: Any) -> None:
    """Keep ``value`` under ``entry``, atomically; a cache that cannot be written is skipped."""
    try:
        data = marshal.dumps(value)
        where = directory()
        where.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=where, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, where / entry)
        except BaseException:
            os.unlink(temp)
            raise
    except (OSError, ValueError):
        return

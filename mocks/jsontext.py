"""Parsing request bodies: ``json.loads``, with input nested too deeply for the parser refused.

The standard parser recurses once per level of nesting, so a body such as ``[[[[...`` a few
thousand levels deep raises :class:`RecursionError`, which is no :class:`ValueError`: callers that
refuse bad JSON would let it through as a crash. Here it becomes a :class:`TooDeep` (a
``ValueError``) saying what to fix.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TooDeep", "loads"]


class TooDeep(ValueError):
    """JSON nested more deeply than the parser can follow."""


def loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise TooDeep("the JSON is nested too deeply to parse; send at most a few hundred levels") from None

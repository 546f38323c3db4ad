"""Job ids from a contract's ``job_id.format``: deterministic for a seeded random source."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from functools import lru_cache

__all__ = ["TOKENS", "IdMaker", "id_maker", "make_id"]

_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


def _uuid7(rng: random.Random, now: float) -> str:
    ms = int(now * 1000) & ((1 << 48) - 1)
    rand = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


TOKENS = {
    "uuid4": lambda rng, now, n: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "uuid7": lambda rng, now, n: _uuid7(rng, now),
    "hex": lambda rng, now, n: f"{rng.getrandbits(4 * n):0{n}x}",
    "digits": lambda rng, now, n: f"{rng.randrange(10**n):0{n}d}",
    "xid": lambda rng, now, n: "".join(rng.choice(_XID_ALPHABET) for _ in range(n or 20)),
}
_TOKEN = re.compile(r"\{([a-z0-9]+)(?::(\d+))?\}")


IdMaker = Callable[[random.Random, float, str], str]


@lru_cache(maxsize=64)
def id_maker(fmt: str) -> IdMaker:
    """Compile an id format once: literal text and tokens, in order."""
    parts: list[str | tuple[str, int]] = []
    last = 0
    for match in _TOKEN.finditer(fmt):
        name, size = match.group(1), int(match.group(2) or 0)
        if name != "model" and name not in TOKENS:
            raise ValueError(f"unknown id token {{{name}}}; known: model, {', '.join(TOKENS)}")
        parts += [fmt[last : match.start()], (name, size)]
        last = match.end()
    parts.append(fmt[last:])

    def make(rng: random.Random, now: float, model: str) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == "model":
                out.append(model)
            else:
                out.append(TOKENS[part[0]](rng, now, part[1]))
        return "".join(out)

    return make


def make_id(fmt: str, rng: random.Random, now: float, model: str) -> str:
    return id_maker(fmt)(rng, now, model)

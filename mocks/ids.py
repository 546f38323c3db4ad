"""Job ids from a contract's ``job_id.format``: deterministic for a seeded random source."""

from __future__ import annotations

import random
import re
import uuid

__all__ = ["TOKENS", "make_id"]

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


def make_id(fmt: str, rng: random.Random, now: float, model: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, size = match.group(1), int(match.group(2) or 0)
        if name == "model":
            return model
        if name not in TOKENS:
            raise ValueError(f"unknown id token {{{name}}}; known: model, {', '.join(TOKENS)}")
        return TOKENS[name](rng, now, size)

    return _TOKEN.sub(replace, fmt)

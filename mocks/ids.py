"""Job ids from a contract's ``job_id.format``: deterministic for a seeded random source."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["TOKENS", "IdMaker", "id_maker"]

_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
# Each random byte read as one xid character: 256 is a multiple of 32, so every character is as likely.
_XID_BYTES = bytes(ord(_XID_ALPHABET[b % 32]) for b in range(256))


def _uuid_text(value: int) -> str:
    """``str(uuid.UUID(int=value))``, without building the UUID."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)  # the RFC 4122 variant and version 4, as uuid.UUID(version=4) sets them


def _uuid4(rng: random.Random) -> str:
    return _uuid_text((rng.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)


def _uuid7(rng: random.Random, now: float) -> str:
    ms = int(now * 1000) & ((1 << 48) - 1)
    rand = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return _uuid_text(value)


TOKENS: dict[str, Callable[[random.Random, float, int], str]] = {
    "uuid4": lambda rng, now, n: _uuid4(rng),
    "uuid7": lambda rng, now, n: _uuid7(rng, now),
    "hex": lambda rng, now, n: f"{rng.getrandbits(4 * n):0{n}x}",
    "digits": lambda rng, now, n: f"{rng.randrange(10**n):0{n}d}",
    "xid": lambda rng, now, n: rng.randbytes(n or 20).translate(_XID_BYTES).decode("ascii"),
}
_TOKEN = re.compile(r"\{([a-z0-9]+)(?::(\d+))?\}")


IdMaker = Callable[[random.Random, float, str], str]


Part = Callable[[random.Random, float, str], str]  # (rng, now, model) -> text


def _token(name: str, size: int) -> Part:
    """One token with its size bound (``{digits:8}``: the bound and the format spec made once)."""
    if name == "model":
        return lambda rng, now, model: model
    if name == "digits":
        bound, spec = 10**size, f"0{size}d"
        return lambda rng, now, model: format(rng.randrange(bound), spec)
    make = TOKENS[name]
    return lambda rng, now, model: make(rng, now, size)


def _literal(text: str) -> Part:
    return lambda rng, now, model: text


@lru_cache(maxsize=64)
def id_maker(fmt: str) -> IdMaker:
    """Compile an id format once: literal text and tokens, in order."""
    parts: list[Part] = []
    last = 0
    for match in _TOKEN.finditer(fmt):
        name, size = match.group(1), int(match.group(2) or 0)
        if name != "model" and name not in TOKENS:
            raise ValueError(f"unknown id token {{{name}}}; known: model, {', '.join(TOKENS)}")
        if match.start() > last:
            parts.append(_literal(fmt[last : match.start()]))
        parts.append(_token(name, size))
        last = match.end()
    if last < len(fmt):
        parts.append(_literal(fmt[last:]))

    def make(rng: random.Random, now: float, model: str) -> str:
        return "".join([part(rng, now, model) for part in parts])

    return make

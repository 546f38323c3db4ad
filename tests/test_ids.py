"""Job id tokens: the shapes the contracts name, the same text as the standard library would give."""

from __future__ import annotations

import random
import re
import uuid

import pytest
from veomock.mocks.ids import TOKENS, id_maker


def test_uuid_tokens_are_the_standard_librarys_uuids() -> None:
    ours, theirs = random.Random(7), random.Random(7)
    for i in range(2000):
        assert TOKENS["uuid4"](ours, 0.0, 0) == str(uuid.UUID(int=theirs.getrandbits(128), version=4))
        made = uuid.UUID(TOKENS["uuid7"](ours, 1.7e9 + i, 0))
        theirs.getrandbits(74)
        assert made.version == 7 and made.variant == uuid.RFC_4122
        assert made.int >> 80 == int((1.7e9 + i) * 1000)


@pytest.mark.parametrize("size", [0, 1, 20, 33])
def test_xid_tokens_use_every_character_of_their_alphabet(size: int) -> None:
    rng = random.Random(3)
    made = [TOKENS["xid"](rng, 0.0, size) for _ in range(400)]
    assert all(re.fullmatch(f"[0-9a-v]{{{size or 20}}}", m) for m in made)
    assert set("".join(made)) == set("0123456789abcdefghijklmnopqrstuv")


def test_a_seeded_source_makes_the_same_ids() -> None:
    make = id_maker("{model}_{uuid7}-{xid:8}-{hex:6}-{digits:4}")
    first = [make(random.Random(11), 1.7e9, "m") for _ in range(3)]
    assert len(set(first)) == 1 and first[0].startswith("m_")

"""The engine and the suite know no provider: every provider fact lives in a contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from veomock.contracts import available, load

ROOT = Path(__file__).resolve().parent.parent
ENGINE = [p for d in ("mocks", "conformance") for p in (ROOT / d).rglob("*.py")]


def _provider_words() -> set[str]:
    words = set()
    for name in available():
        contract = load(name)
        words |= {name, contract.title.lower()}
        words |= {m.lower() for m in contract.models}
    return {w for w in words if len(w) > 3}


@pytest.mark.parametrize("path", ENGINE, ids=[str(p.relative_to(ROOT)) for p in ENGINE])
def test_no_provider_or_model_name_in_engine_code(path: Path) -> None:
    text = path.read_text().lower()
    found = sorted(w for w in _provider_words() if re.search(rf"(?<![a-z0-9_-]){re.escape(w)}(?![a-z0-9_])", text))
    assert found == [], f"{path.name} names {found}; move that fact into the contract"


def test_the_check_itself_sees_provider_names(tmp_path: Path) -> None:
    words = _provider_words()
    assert {"pixazo", "apixo", "aivideoapi", "vtrix", "gemini"} <= words
    assert {"veo-3.1-generate-preview", "veo-3.1-fast-generate-preview", "veo_31_fast"} <= words

"""Start-up: contracts parse with libyaml and come from a cache of checked contracts; serving
imports nothing of the conformance suite. (How fast it starts is a benchmark: make bench.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from veomock.contracts import ContractError, available, cache, load_file, loader

from tests.conftest import PROVIDERS
from tests.helpers import ROOT


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    where = tmp_path / "cache"
    monkeypatch.setenv("VEOMOCK_CACHE_DIR", str(where))
    loader._load_cached.cache_clear()  # the in-process cache would hide the one on disk
    yield where
    loader._load_cached.cache_clear()


def _copy(provider: str, into: Path, change: tuple[str, str] | None = None) -> Path:
    text = available()[provider].read_text()
    if change:
        assert change[0] in text
        text = text.replace(change[0], change[1], 1)
    into.mkdir(parents=True, exist_ok=True)
    (into / f"{provider}.yaml").write_text(text)
    return into / f"{provider}.yaml"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_libyaml_reads_every_contract_as_pyyaml_does(provider: str) -> None:
    text = available()[provider].read_text()
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)


def test_a_second_load_comes_from_the_cache_without_parsing(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_file(available()["apixo"], {"fail_codes": "s-apx4"})
    assert len(list(cache_dir.iterdir())) == 1
    loader._load_cached.cache_clear()

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(loader, "_checked", no_parsing)
    again = load_file(available()["apixo"], {"fail_codes": "s-apx4"})
    assert again.raw == first.raw and again.variants == first.variants
    assert again.failures == first.failures and again.status.keys() == first.status.keys()


def test_changed_content_or_variants_miss_the_cache(cache_dir: Path, tmp_path: Path) -> None:
    load_file(available()["apixo"])
    changed = _copy("apixo", tmp_path / "edited", ("title: ", "title: Edited "))
    assert load_file(changed).title.startswith("Edited ")
    assert load_file(available()["apixo"], {"fail_codes": "s-apx4"}).variants["fail_codes"] == "s-apx4"
    assert len(list(cache_dir.iterdir())) == 3


def test_a_broken_contract_is_never_cached(cache_dir: Path, tmp_path: Path) -> None:
    broken = _copy("apixo", tmp_path / "broken", ("provider: apixo", "provider: 7"))
    for _ in range(2):
        loader._load_cached.cache_clear()
        with pytest.raises(ContractError):
            load_file(broken)
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_an_unwritable_or_corrupt_cache_only_costs_a_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("VEOMOCK_CACHE_DIR", str(blocker))
    loader._load_cached.cache_clear()
    assert load_file(available()["vtrix"]).provider == "vtrix"

    monkeypatch.setenv("VEOMOCK_CACHE_DIR", str(tmp_path / "cache"))
    text = available()["vtrix"].read_text()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / cache.key(text, {})).write_bytes(b"\x00 not marshal data")
    loader._load_cached.cache_clear()
    assert load_file(available()["vtrix"]).provider == "vtrix"
    assert cache.read(cache.key(text, {})) is not None  # rewritten with the good entry
    loader._load_cached.cache_clear()


def test_the_cache_lives_under_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEOMOCK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.directory() == tmp_path / "veomock"


def test_serving_imports_nothing_of_the_conformance_suite() -> None:
    script = (
        "import json, sys, uvicorn\n"
        "uvicorn.run = lambda *args, **kwargs: None  # the server itself is not under test here\n"
        "from veomock.conformance.command import main\n"
        "main(['serve', '--port', '0'])  # a free port: the command goes all the way to uvicorn.run\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert "veomock.mocks.app" in modules
    suite = sorted(m for m in modules if m.startswith(("hypothesis", "veomock.conformance.")))
    assert suite == ["veomock.conformance.command"]


def test_the_cache_keeps_only_its_newest_entries(cache_dir: Path) -> None:
    for i in range(cache.KEEP + 1):
        cache.write(f"entry-{i:04d}", [i])
    kept = sorted(p.name for p in cache_dir.iterdir())
    assert cache.KEEP // 2 <= len(kept) <= cache.KEEP and f"entry-{cache.KEEP:04d}" in kept

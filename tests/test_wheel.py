"""The wheel, as a user gets it: built from a copy of the source, installed into a clean venv
outside the checkout, serving every provider from there, clip downloads included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from veomock.conformance.facts import extract, result_paths
from veomock.contracts import available

from tests.faulty import load, status_parts, submit_parts
from tests.helpers import ROOT, media_headers
from tests.processes import serving

# What a fresh clone holds, without the local state of this checkout.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "replays", "*.whl"
)
# The user's environment, without anything that would point back into the checkout.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("VEOMOCK_")}


def _run(*argv: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=_ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, argv))}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("clone") / "veomock"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source, cwd=out)
    (built,) = out.glob("veomock-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv (no system site-packages) with the wheel and its dependencies from the index."""
    home = tmp_path_factory.mktemp("user")
    _run(sys.executable, "-m", "venv", "--without-pip", home / "venv", cwd=home)
    python = home / "venv" / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, cwd=home)
    return home / "venv"


def test_the_wheel_holds_the_data_the_package_reads(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        top_level = archive.read(f"{info}/top_level.txt").decode().split()
    assert top_level == ["veomock"]
    wanted = {f"veomock/{package}/py.typed" for package in ("contracts", "mocks", "conformance")}
    wanted |= {f"{info}/licenses/LICENSE", "veomock/contracts/FORMAT.md", "veomock/conformance/PROTOCOL.md"}
    wanted |= {f"veomock/contracts/{p.name}" for p in (ROOT / "contracts").glob("*.yaml")}
    wanted |= {f"veomock/fixtures/media/{p.name}" for p in (ROOT / "fixtures" / "media").glob("*.mp4")}
    assert wanted <= names, sorted(wanted - names)
    assert "[pytest11]\nveomock = veomock.conformance.pytest_plugin" in entry_points
    assert "veomock = veomock.conformance.command:main" in entry_points


@pytest.fixture(scope="module")
def served(venv: Path) -> Iterator[str]:
    """``veomock serve`` from the venv, in a directory outside the checkout, on a free port."""
    argv = [venv / "bin" / "veomock", "serve", "--port", "0", "--speed", "0", "--seed", "1", "--log-level", "info"]
    with serving(argv, cwd=venv.parent, env=_ENV) as banner:
        yield banner[0].split()[2]


def test_the_installed_package_reads_nothing_from_the_checkout(venv: Path) -> None:
    code = "import veomock.mocks.media as m, veomock.contracts as c; print(m.MEDIA_DIR); print(c.__file__)"
    for place in _run(venv / "bin" / "python", "-c", code, cwd=venv.parent).split():
        assert Path(place).is_relative_to(venv) and Path(place).exists(), place
    version = _run(venv / "bin" / "veomock", "--version", cwd=venv.parent)
    assert version.startswith("veomock ")


def test_the_installed_server_completes_a_job_of_every_provider(venv: Path, served: str) -> None:
    listed = _run(venv / "bin" / "veomock", "contracts", cwd=venv.parent)
    providers = sorted(line.split()[1].rstrip(":") for line in listed.splitlines() if line.startswith("ok "))
    assert providers == sorted(available())
    with httpx.Client(base_url=served, timeout=10) as client:
        for provider in providers:
            contract, paths = load(provider), result_paths(load(provider))
            submitted = client.request(**submit_parts(contract, "a kite over the sea"))
            assert submitted.status_code == contract.submit.status, (provider, submitted.text)
            (job,) = extract(submitted.json(), paths.job_id)
            assert client.post("/_veomock/clock", json={"advance": 3600}).is_success
            status = client.request(**status_parts(contract, str(job)))
            assert status.is_success, (provider, status.text)
            (url,) = extract(status.json(), paths.urls)
            assert str(url).startswith(served), url
            clip = client.get(str(url), headers=media_headers(contract), follow_redirects=True)
            assert clip.status_code == 200, (provider, url, clip.text[:200])
            assert clip.headers["content-type"].startswith("video/mp4")
            assert clip.content[4:8] == b"ftyp" and len(clip.content) > 1000, provider



_GRADED = """
from pathlib import Path

from shop.clients.apixo import generate as reference


def generate(job, env, clock=None):
    with Path("clocks.txt").open("a") as seen:
        print(type(clock).__name__, file=seen)
    return reference(job, env, clock)
"""


def test_the_installed_check_grades_an_in_process_client_on_its_clock(venv: Path) -> None:
    # The reference client, copied next to the user's code (`--python` finds it from there). It
    # takes exact mode's clock (a `clock` keyword), so it waits without the clock URL.
    home = venv.parent
    shutil.copytree(ROOT / "examples" / "clients", home / "shop" / "clients", ignore=_NOT_SOURCE)
    (home / "shop" / "__init__.py").write_text("")
    (home / "shop" / "graded.py").write_text(_GRADED)
    for module in (home / "shop" / "clients").glob("*.py"):
        module.write_text(module.read_text().replace("examples.clients", "shop.clients"))
    argv = [venv / "bin" / "veomock", "check", "--provider", "apixo", "--kind", "success", "--kind", "job-failure"]
    _run(*argv, "--python", "shop.graded:generate", "--json", home / "report.json", "-q", cwd=home)
    report = json.loads((home / "report.json").read_text())
    assert report["failed"] == 0 and report["passed"] >= 2, report
    assert (home / "clocks.txt").read_text().split() == ["SuiteClock"] * report["passed"]

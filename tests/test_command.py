"""The ``veomock`` command keeps the conventions a user expects: --version, quiet in a pipe that
closes early, one clear error for a busy port, and every ``serve`` option from the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from veomock.conformance.command import _SERVE_SETTINGS
from veomock.conformance.command import main as veomock

from tests.helpers import ROOT
from tests.processes import free_port, serving

COMMAND = [sys.executable, "-m", "veomock.conformance.command"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("VEOMOCK_")}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        veomock(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"veomock {metadata.version('veomock')}"


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """``veomock failures --json | head``: the pipe closes before the output is written."""
    proc = subprocess.Popen(
        [*COMMAND, "failures", "--json"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(60) == 128 + 13, stderr  # as a tool that SIGPIPE stopped
    assert stderr == ""


def test_a_port_in_use_is_one_error_before_any_banner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [*COMMAND, "serve", "--port", str(port)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"veomock: port {port} on 127.0.0.1 is already in use;") and "--port" in line


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("VEOMOCK_PORT", "eighty", "a port is a whole number from 0 to 65535"),
        ("VEOMOCK_SPEED", "nan", "a speed is a number of at least 0"),
        ("VEOMOCK_PROVIDER", "apixo,vtirx", "no provider 'vtirx'; did you mean 'vtrix'?"),
        ("VEOMOCK_ALLOW_HTTP_WEBHOOKS", "maybe", "a switch is 1 or 0"),
    ],
)
def test_a_wrong_environment_value_names_the_variable(name: str, value: str, complaint: str) -> None:
    env = {**ENV, "VEOMOCK_PORT": "0", name: value}  # should the value be taken, any free port
    done = subprocess.run([*COMMAND, "serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"veomock: {name}: ") and complaint in line


def test_serve_help_documents_every_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        veomock(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for dest in _SERVE_SETTINGS:
        assert f"--{dest.replace('_', '-')}" in text, dest
        assert f"env VEOMOCK_{dest.upper()}" in text, dest


def test_serve_takes_its_settings_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **ENV,
        "VEOMOCK_HOST": "127.0.0.1",
        "VEOMOCK_PORT": str(port),
        "VEOMOCK_SPEED": "0",
        "VEOMOCK_SEED": "7",
        "VEOMOCK_PROVIDER": "vtrix,pixazo",  # the command line's --provider wins
        "VEOMOCK_LOG_LEVEL": "info",
        "VEOMOCK_CONTROL_TOKEN": "t0k",
    }
    base = f"http://127.0.0.1:{port}"

    def started(banner: list[str]) -> None:
        assert banner[0] == f"veomock on {base} (provider time runs 0x real time, seed 7)\n"
        assert [line.split()[0] for line in banner[1:]] == ["apixo", "control"] and "token" in banner[2]

    with serving([*COMMAND, "serve", "--provider", "apixo"], cwd=ROOT, env=env, check=started):
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/_veomock/clock").status_code == 401
            clock = client.get("/_veomock/clock", headers={"X-Veomock-Token": "t0k"}).json()
        assert clock["speed"] == 0

"""`veomock serve` as a user runs it: a real process on a real socket, one full session."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import ROOT, mp4_facts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[str]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "veomock.conformance.command",
            "serve",
            "--port",
            str(port),
            "--speed",
            "0",
            "--seed",
            "3",
            "--log-level",
            "info",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    banner = [proc.stdout.readline() for _ in range(6)]
    for line in proc.stderr:  # uvicorn says when it listens: no polling, no sleeping
        if "Uvicorn running on" in line:
            break
    try:
        yield f"http://127.0.0.1:{port}", banner
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_startup_prints_every_providers_base_url(served: tuple[str, list[str]]) -> None:
    base, banner = served
    text = "".join(banner)
    for provider in ("aivideoapi", "apixo", "pixazo", "vtrix"):
        assert f"{provider}" in text
    assert text.count(base) >= 5  # the four providers and the control API


def test_a_whole_session_over_the_socket(served: tuple[str, list[str]]) -> None:
    base, _ = served
    auth = {"Authorization": "Bearer sk-serve-test"}
    body = {"model": "veo-3", "input": {"prompt": "a lighthouse at dusk", "aspect_ratio": "9:16"}}
    with httpx.Client(base_url=base, timeout=10) as client:
        task = client.post("/v1/videos/generations", json=body, headers=auth).json()["data"]["taskId"]
        assert client.get(f"/v1/tasks/{task}", headers=auth).json()["status"] == "pending"
        client.post("/_veomock/clock", content=json.dumps({"advance": 3600}))
        done = client.get(f"/v1/tasks/{task}", headers=auth).json()
        assert done["status"] == "completed"
        (url,) = done["output"]["urls"]
        assert url.startswith(base)
        video = client.get(url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    facts = mp4_facts(video.content)
    assert facts["fps"] == 24 and facts["height"] > facts["width"]

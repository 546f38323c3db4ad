"""`veomock serve` as a user runs it: a real process on a real socket, one full session."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator

import httpx
import pytest
from veomock.contracts import available

from tests.helpers import ROOT, mp4_facts
from tests.processes import free_port, serving


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    argv = [sys.executable, "-m", "veomock.conformance.command", "serve", "--port", str(port)]
    argv += ["--speed", "0", "--seed", "3", "--log-level", "info"]
    with serving(argv, cwd=ROOT, env=os.environ) as banner:
        yield f"http://127.0.0.1:{port}", banner


def test_startup_prints_every_providers_base_url(served: tuple[str, list[str]]) -> None:
    base, banner = served
    text = "".join(banner)
    for provider in available():
        assert provider in text
    assert text.count(base) >= len(available()) + 1  # every provider and the control API


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

"""Result clips: a plain GET from memory is the same answer Starlette's FileResponse gives; HEAD and
byte ranges are FileResponse's own."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from veomock.mocks.media import MEDIA_DIR, Clip

CLIPS = sorted(MEDIA_DIR.glob("*.mp4"))


def _client() -> TestClient:
    async def clip(request: Request) -> Response:
        return Clip(MEDIA_DIR / request.path_params["name"], media_type="video/mp4")

    async def file(request: Request) -> Response:
        return FileResponse(MEDIA_DIR / request.path_params["name"], media_type="video/mp4")

    methods = ["GET", "HEAD"]
    routes = [Route("/clip/{name}", clip, methods=methods), Route("/file/{name}", file, methods=methods)]
    return TestClient(Starlette(routes=routes))


def _body(response: httpx.Response) -> bytes:
    """The body, with a multipart answer's random boundary named the same for any response."""
    boundary = response.headers.get("content-type", "").partition("boundary=")[2]
    return response.content.replace(boundary.encode(), b"BOUNDARY") if boundary else response.content


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_clip_is_answered_as_a_file_response_would_answer_it(method: str) -> None:
    assert len(CLIPS) == 26
    client = _client()
    for path in CLIPS:
        ours, theirs = (client.request(method, f"/{kind}/{path.name}") for kind in ("clip", "file"))
        assert ours.status_code == theirs.status_code == 200
        assert ours.headers == theirs.headers
        assert ours.headers["content-length"] == str(path.stat().st_size)
        assert ours.content == theirs.content == (path.read_bytes() if method == "GET" else b"")


@pytest.mark.parametrize("ranges", ["bytes=0-99", "bytes=100-", "bytes=-50", "bytes=0-9,20-29", "bytes=999999-"])
def test_a_range_of_a_clip_is_answered_as_a_file_response_would_answer_it(ranges: str) -> None:
    client = _client()
    name = CLIPS[0].name
    ours, theirs = (client.get(f"/{kind}/{name}", headers={"Range": ranges}) for kind in ("clip", "file"))
    assert ours.status_code == theirs.status_code and ours.status_code in (206, 416)
    assert _body(ours) == _body(theirs)
    assert ours.headers.get("content-range") == theirs.headers.get("content-range")
    if ours.status_code == 206 and "," not in ranges:
        start = int(ours.headers["content-range"].split()[1].split("-")[0])
        assert ours.content == CLIPS[0].read_bytes()[start : start + len(ours.content)]

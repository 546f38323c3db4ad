"""Result media: small real MP4 clips (H.264, 24 fps) chosen by aspect ratio and duration.

:class:`Clip` serves one. The clips are a fixed set of small files (2 aspect ratios x 13
durations, under 40 KB each), so each is read once per process and a plain GET is answered from
memory; a HEAD or a range request (a browser's player seeking) is answered by Starlette's
``FileResponse`` itself, with the same headers.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

__all__ = ["MEDIA_DIR", "Clip", "clip_for"]

MEDIA_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "media"
_RATIOS = {"16:9": "16x9", "9:16": "9x16"}
_SHORTEST, _LONGEST = 4, 16


def clip_for(aspect_ratio: str | None, duration: int | float | None, default_aspect: str = "16:9") -> Path:
    """The clip for a job: its aspect ratio (else the contract's default), duration clamped to 4-16 s."""
    ratio = _RATIOS.get(str(aspect_ratio), _RATIOS[default_aspect])
    try:
        seconds = int(duration) if duration is not None else 8
    except (TypeError, ValueError):
        seconds = 8
    seconds = min(_LONGEST, max(_SHORTEST, seconds))
    return MEDIA_DIR / f"{ratio}_{seconds}s.mp4"


@functools.cache
def _read(path: Path) -> tuple[bytes, os.stat_result]:
    """A clip's bytes and the stat they were read with (one of the fixed set, so the cache is bounded)."""
    with path.open("rb") as file:
        return file.read(), os.fstat(file.fileno())


class Clip(FileResponse):
    """A clip as ``FileResponse`` serves it (length, ETag, Last-Modified, byte ranges), with the
    file read once: a plain GET is sent from memory, without a worker thread per read."""

    def __init__(self, path: Path, media_type: str | None = None) -> None:
        self.data, stat = _read(path)
        super().__init__(path, media_type=media_type, stat_result=stat)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or any(k == b"range" for k, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.data})

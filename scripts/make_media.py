"""Regenerate the small, playable MP4 clips the mocks serve as results.

Run once by hand (``.venv/bin/python scripts/make_media.py``) after ``pip install av``; the
outputs are committed under ``fixtures/media/`` so the mocks need no encoder at run time.
Each clip is H.264, 24 fps, yuv420p, a slow colour sweep, at a small size with the aspect ratio
in its name.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import av
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "media"
SIZES = {"16x9": (256, 144), "9x16": (144, 256)}
DURATIONS = range(4, 17)
FPS = 24


def render(path: Path, width: int, height: int, seconds: int) -> None:
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "35", "preset": "veryslow"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * FPS):
            r, g, b = colorsys.hsv_to_rgb((i / (seconds * FPS)) % 1.0, 0.6, 0.9)
            frame = np.zeros((height, width, 3), dtype=np.uint8)
            frame[:, :] = (int(r * 255), int(g * 255), int(b * 255))
            bar = (i * 4) % width
            frame[:, bar : bar + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for ratio, (w, h) in SIZES.items():
        for seconds in DURATIONS:
            render(OUT / f"{ratio}_{seconds}s.mp4", w, h, seconds)


if __name__ == "__main__":
    main()

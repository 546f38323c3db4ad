"""Result media: small real MP4 clips (H.264, 24 fps) chosen by aspect ratio and duration."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MEDIA_DIR", "clip_for"]

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

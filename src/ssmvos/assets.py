"""Files that ship inside the package: the demo clip."""
from __future__ import annotations

from pathlib import Path

from .errors import SSMVOSError


def demo_clip() -> tuple[Path, Path]:
    """(frame folder, first-frame mask) of the DAVIS 2016 clip bundled with the package."""
    root = Path(__file__).resolve().parent / "assets" / "demo"
    frames, mask = root / "frames", root / "mask.png"
    if not frames.is_dir() or not mask.is_file():
        raise SSMVOSError(f"the bundled demo clip is missing from {root} (reinstall ssmvos)")
    return frames, mask

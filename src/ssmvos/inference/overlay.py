"""Overlay video: label maps blended onto the frames, written as mp4 (atomically)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..data.io import DAVIS_PALETTE
from ..errors import SSMVOSError

_COLORS = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)


def blend(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """H×W×3 uint8 RGB frame with H×W labels blended in their palette colours (+ outlines)."""
    out = frame.copy()
    fg = labels > 0
    colors = _COLORS[labels]
    out[fg] = (frame[fg] * (1 - alpha) + colors[fg] * alpha).astype(np.uint8)
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges & fg] = colors[edges & fg]
    return out


class OverlayWriter:
    """Writes RGB frames to an mp4 file; the file appears only when ``close()`` succeeds."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix or ".mp4",
                                        dir=self.path.parent)
        os.close(fd)
        self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self.writer.isOpened():
            Path(self.tmp).unlink(missing_ok=True)
            raise SSMVOSError(f"cannot write the overlay video {self.path} (OpenCV has no mp4v encoder here)")

    def write(self, frame_rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.writer.release()
        Path(self.tmp).unlink(missing_ok=True)

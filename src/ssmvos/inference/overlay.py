"""Overlay video: label maps blended onto the frames, written as mp4 (atomically)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..atomic import PendingFile
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
        # the container is chosen from the file name's suffix: keep the target's
        self.file = PendingFile(self.path, suffix=self.path.suffix or ".mp4")
        self.writer = cv2.VideoWriter(str(self.file.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self.writer.isOpened():
            self.file.discard()
            raise SSMVOSError(f"cannot write the overlay video {self.path} (OpenCV has no mp4v encoder here)")

    def write(self, frame_rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        self.writer.release()
        return self.file.commit()

    def abort(self) -> None:
        self.writer.release()
        self.file.discard()

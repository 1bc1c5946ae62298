"""Frames and masks in and out: JPEG/PNG frames, video files; label maps are read and
written by :mod:`ssmvos.io.labels` (re-exported here under their old names).

Reading never guesses silently: unreadable, missing, truncated or mistaken files raise
SSMVOSError naming them (a truncated JPEG, a colour image given as a mask, a mask that went
through lossy compression). Writing goes through :mod:`ssmvos.atomic` (temporary file +
rename), so an interrupted run leaves no half PNG and a failed write is one clear line.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import is_temporary
from ..errors import SSMVOSError
from ..io import labels as _labels
# label maps are io.labels' (one reader, one writer); these names stay for their callers
from ..io.labels import (DAVIS_PALETTE, LOSSY_LABELS, RARE_FRACTION, artefact_labels,  # noqa: F401
                         read_label_map, write_gray_png, write_label_png as write_palette_png)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise SSMVOSError(f"{what} not found: {path}")
    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SSMVOSError(f"cannot read {what} {path}: {exc}") from None


def _jpeg_problem(data: bytes) -> str | None:
    """Why JPEG bytes would not decode completely, or None. The image data must end with an
    end-of-image marker after the last start-of-scan marker (inside the scan data both are
    impossible: 0xFF is followed by 0x00 or a restart marker there)."""
    if data[:2] != b"\xff\xd8":
        return None  # not JPEG data, whatever its name: the decoders decide
    last_scan = data.rfind(b"\xff\xda")
    if last_scan < 0:
        return "it holds no image data (no start-of-scan marker)"
    if data.rfind(b"\xff\xd9") < last_scan:
        return "its JPEG data ends before the image is complete (a truncated file?)"
    return None


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (grayscale, palette and RGBA are converted).

    A JPEG must decode completely: a truncated one is an error naming the file, not a frame
    that is partly grey.
    """
    if str(path).lower().endswith((".jpg", ".jpeg")):
        # OpenCV decodes JPEG about twice as fast as Pillow, to the same pixels (both use
        # libjpeg-turbo; EXIF orientation ignored as Pillow does); anything it cannot read
        # goes the Pillow way, which names the file in its error
        import cv2

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SSMVOSError(f"cannot read frame {path}: {exc.strerror or exc}") from None
        problem = _jpeg_problem(data)
        if problem:
            raise SSMVOSError(f"frame {path} cannot be decoded completely: {problem}")
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image = _open(Path(path), "frame")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def read_mask(path: str | os.PathLike, what: str = "mask") -> np.ndarray:
    """A mask PNG as its H×W uint8 values (palette indices or gray levels, a soft mask's
    0..255), by :mod:`ssmvos.io.labels`' rules but without its lossy check (``what`` names
    the file in errors)."""
    return _labels.read_label_map(path, what, lossy_check=False)


def object_mask(labels: np.ndarray, object_id: int) -> np.ndarray:
    """H×W labels -> H×W float32 mask, 1 where ``labels == object_id``."""
    return (labels == object_id).astype(np.float32)


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder, sorted by name. Raises if there are none."""
    folder = Path(folder)
    if folder.is_file():
        raise SSMVOSError(f"frame folder {folder} is a file, not a folder of frames")
    if not folder.is_dir():
        raise SSMVOSError(f"frame folder not found: {folder}")
    frames = sorted(p for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not is_temporary(p.name) and p.is_file())
    if not frames:
        raise SSMVOSError(f"no image files (jpg/png) in {folder}")
    return frames


def open_video(path: str | os.PathLike):
    """Open a video file with OpenCV; returns (capture, fps)."""
    import cv2

    path = Path(path)
    if path.is_dir():
        raise SSMVOSError(f"video {path} is a folder, not a video file; pass it as a folder of frames instead")
    if not path.is_file():
        raise SSMVOSError(f"video not found: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SSMVOSError(f"{path} is an image, not a video file; pass the folder of frames instead")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SSMVOSError(f"cannot open video {path} (not a video file OpenCV can decode)")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    return cap, fps

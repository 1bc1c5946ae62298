"""Frames stored as image files (a folder, or a list of paths): the one frame order, listing
a folder, reading a frame, and :class:`FrameFiles`, their frame source.

**Frame order**: frame files are ordered by :func:`frame_key`, everywhere frames are listed
(segment, evaluate, index, score, the app): runs of digits compare as numbers, so ``2.jpg``
comes before ``10.jpg``; zero-padded names (DAVIS, YouTube-VOS) keep their plain order.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...atomic import is_temporary
from ...errors import SSMVOSError
from .base import FrameSource

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_DIGITS = re.compile(r"([0-9]+)")


def frame_key(name: str) -> tuple[tuple, str]:
    """Sort key of a frame file name (or stem) in natural order: runs of ASCII digits compare
    as numbers (``frame2.jpg`` < ``frame10.jpg``), the text between them as text whatever its
    case (``frame_1.jpg`` < ``Frame_3.jpg``); names that tie that way (``01.jpg``, ``1.jpg``)
    by the name itself."""
    parts = _DIGITS.split(name)  # text, digits, text, ...: the same kind at the same position
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


def sort_frames(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """``paths`` as Paths in frame order (:func:`frame_key` of the file names)."""
    return sorted((Path(p) for p in paths), key=lambda p: frame_key(p.name))


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder in frame order (:func:`frame_key`); hidden files (a
    leading dot: macOS's ``._00000.jpg`` beside every copied frame) are not frames. Raises if
    there are none, or if two share a name but for the extension (``1.jpg``, ``1.png``): a
    frame's results are named after it, so one would overwrite the other."""
    folder = Path(folder)
    if folder.is_file():
        raise SSMVOSError(f"frame folder {folder} is a file, not a folder of frames")
    if not folder.is_dir():
        raise SSMVOSError(f"frame folder not found: {folder}")
    frames = sort_frames(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                         and not p.name.startswith(".") and not is_temporary(p.name) and p.is_file())
    if not frames:
        raise SSMVOSError(f"no image files (jpg/png) in {folder}")
    seen: dict[str, Path] = {}
    for frame in frames:
        if frame.stem in seen:
            raise SSMVOSError(f"frames {seen[frame.stem].name} and {frame.name} in {folder} share the name "
                              f"{frame.stem!r}: their results would be one file; keep one of them")
        seen[frame.stem] = frame
    return frames


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


def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise SSMVOSError(f"frame not found: {path}")
    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SSMVOSError(f"cannot read frame {path}: {exc}") from None


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (grayscale, palette and RGBA are converted).

    A JPEG must decode completely: a truncated one is an error naming the file, not a frame
    that is partly grey; so is an empty or undecodable file.
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
        if not data:
            raise SSMVOSError(f"frame {path} is an empty file (0 bytes)")
        problem = _jpeg_problem(data)
        if problem:
            raise SSMVOSError(f"frame {path} cannot be decoded completely: {problem}")
        try:
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        except cv2.error:
            bgr = None  # Pillow says why below
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image = _open_image(Path(path))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


class FrameFiles(FrameSource):
    """Frames stored as image files (JPEG/PNG), in the given order."""

    def __init__(self, paths: list[Path], fps: float | None = None):
        if not paths:
            raise SSMVOSError("a video needs at least one frame")
        self.paths = [Path(p) for p in paths]
        self.fps = fps
        self.description = f"the frames in {self.paths[0].parent}"

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        return read_frame(self.paths[index])

    def name(self, index: int) -> str:
        return self.paths[index].stem


__all__ = ["IMAGE_SUFFIXES", "frame_key", "sort_frames", "list_frames", "read_frame", "FrameFiles"]

"""Frames and masks in and out: JPEG/PNG frames, palette/grayscale masks, video files.

Reading never guesses silently: unreadable or missing files raise SSMVOSError naming them.
Writing is atomic (temporary file + rename), so an interrupted run leaves no half PNG.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path
from ..errors import SSMVOSError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def _davis_palette() -> bytes:
    """The DAVIS/PASCAL VOC colour map: label bits interleaved into the high bits of R, G, B."""
    out = bytearray()
    for label in range(256):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        out += bytes((r, g, b))
    return bytes(out)


DAVIS_PALETTE: bytes = _davis_palette()


def _open(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise SSMVOSError(f"{what} not found: {path}")
    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SSMVOSError(f"cannot read {what} {path}: {exc}") from None


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB (grayscale, palette and RGBA are converted)."""
    if str(path).lower().endswith((".jpg", ".jpeg")):
        # OpenCV decodes JPEG about twice as fast as Pillow, to the same pixels (both use
        # libjpeg-turbo; EXIF orientation ignored as Pillow does); anything it cannot read
        # goes the Pillow way, which names the file in its error
        import cv2

        bgr = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    image = _open(Path(path), "frame")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask PNG as H×W uint8 labels: palette indices or gray levels (RGB: first channel,
    as the original does)."""
    image = _open(Path(path), "mask")
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8) * 255
    if image.mode in ("I", "I;16", "I;16B", "F"):
        labels = np.asarray(image)
        if labels.min() < 0 or labels.max() > 255:
            raise SSMVOSError(f"mask {path} has labels outside 0..255")
        return labels.astype(np.uint8)
    labels = np.asarray(image)
    if labels.ndim == 3:
        labels = labels[:, :, 0]
    return np.ascontiguousarray(labels, dtype=np.uint8)


def object_mask(labels: np.ndarray, object_id: int) -> np.ndarray:
    """H×W labels -> H×W float32 mask, 1 where ``labels == object_id``."""
    return (labels == object_id).astype(np.float32)


def _atomic_save(image: Image.Image, path: Path, **params) -> None:
    with atomic_path(path, suffix=path.suffix or ".png") as tmp:
        image.save(tmp, format="PNG", **params)


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write H×W uint8 labels as an indexed PNG with the DAVIS palette (atomically)."""
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P")
    image.putpalette(DAVIS_PALETTE)
    _atomic_save(image, Path(path))


def write_gray_png(path: str | os.PathLike, values: np.ndarray) -> None:
    """Write an H×W uint8 array as a grayscale PNG (atomically)."""
    _atomic_save(Image.fromarray(np.ascontiguousarray(values, dtype=np.uint8), mode="L"), Path(path), compress_level=1)


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder, sorted by name. Raises if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SSMVOSError(f"frame folder not found: {folder}")
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not frames:
        raise SSMVOSError(f"no image files (jpg/png) in {folder}")
    return frames


def open_video(path: str | os.PathLike):
    """Open a video file with OpenCV; returns (capture, fps)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise SSMVOSError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SSMVOSError(f"cannot open video {path} (not a video file OpenCV can decode)")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    return cap, fps

"""Masks in and out: palette/grayscale masks. Frames are :mod:`ssmvos.io.frames`' (``list_frames``,
``read_frame``, ``IMAGE_SUFFIXES``, ``open_video`` and ``VIDEO_SUFFIXES`` stay importable from here).

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

from ..atomic import atomic_path
from ..errors import SSMVOSError
from ..io.frames.files import IMAGE_SUFFIXES, list_frames, read_frame  # noqa: F401  (their old place)


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


#: More labels than this that look like compression artefacts make a mask "lossy".
LOSSY_LABELS = 4
#: A label covering less than this fraction of the pixels counts as rare.
RARE_FRACTION = 0.01


def read_mask(path: str | os.PathLike, what: str = "mask") -> np.ndarray:
    """A mask PNG as H×W uint8 values: palette indices or gray levels (``what`` names the file
    in errors).

    An RGB(A) image is accepted only when it is gray (R = G = B): a colour image is not a
    label map, and the error says how to make one.
    """
    image = _open(Path(path), what)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8) * 255
    if image.mode in ("I", "I;16", "I;16B", "F"):
        labels = np.asarray(image)
        if labels.min() < 0 or labels.max() > 255:
            raise SSMVOSError(f"mask {path} has labels outside 0..255")
        return labels.astype(np.uint8)
    labels = np.asarray(image)
    if labels.ndim == 3:
        colour = labels[:, :, :3]
        if colour.shape[2] == 3 and not ((colour[:, :, 0] == colour[:, :, 1]).all()
                                         and (colour[:, :, 0] == colour[:, :, 2]).all()):
            raise SSMVOSError(f"{what} {path} is a colour ({image.mode}) image, not a label map: save it as a palette "
                              "or grayscale PNG whose values are object ids (0 = background, 1, 2, ... one per "
                              "colour; for one object: labels = (rgb.max(axis=2) > 0).astype('uint8'))")
        labels = labels[:, :, 0]
    return np.ascontiguousarray(labels, dtype=np.uint8)


def artefact_labels(labels: np.ndarray) -> list[int]:
    """Nonzero labels that look like lossy-compression artefacts: rare (under RARE_FRACTION of
    the pixels) and scattered (some of their pixels touch no pixel of the same label). The
    regions of a real label map, however small, are solid."""
    counts = np.bincount(labels.ravel(), minlength=256)
    present = np.flatnonzero(counts[1:]) + 1
    if len(present) <= LOSSY_LABELS:
        return []
    touching = np.zeros(labels.shape, bool)
    same_v = labels[1:] == labels[:-1]
    same_h = labels[:, 1:] == labels[:, :-1]
    touching[1:] |= same_v
    touching[:-1] |= same_v
    touching[:, 1:] |= same_h
    touching[:, :-1] |= same_h
    connected = np.bincount(labels[touching].ravel(), minlength=256)
    rare = counts < RARE_FRACTION * labels.size
    return [int(v) for v in present if rare[v] and connected[v] < counts[v]]


def _starts_with(path: str | os.PathLike, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False  # the reader that follows names the problem


def read_label_map(path: str | os.PathLike, what: str = "mask") -> np.ndarray:
    """A label map (first-frame mask, annotation) as H×W uint8 labels.

    Beyond :func:`read_mask`'s checks: a JPEG file, or labels with more than
    ``LOSSY_LABELS`` rare scattered values (what JPEG does to a 0/255 mask), are refused as
    lossy images instead of becoming dozens of objects.
    """
    if _starts_with(path, b"\xff\xd8\xff"):
        raise SSMVOSError(f"{what} {path} is a JPEG: lossy compression changes label values at every edge; "
                          "save it as a PNG (palette or grayscale)")
    labels = read_mask(path, what)
    artefacts = artefact_labels(labels)
    if len(artefacts) > LOSSY_LABELS:
        shown = ", ".join(map(str, artefacts[:6])) + (", ..." if len(artefacts) > 6 else "")
        raise SSMVOSError(f"{what} {path} looks like a lossy image: {len(artefacts)} rare scattered labels "
                          f"({shown}) as compression leaves at edges; save the label map losslessly (PNG) "
                          "from its source")
    return labels


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


def __getattr__(name: str) -> object:
    """``open_video`` and ``VIDEO_SUFFIXES``, now :mod:`ssmvos.io.frames.video`'s (imported when
    first asked for: that module needs OpenCV, which reading masks does not)."""
    if name in ("open_video", "VIDEO_SUFFIXES"):
        from ..io.frames import video

        return getattr(video, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

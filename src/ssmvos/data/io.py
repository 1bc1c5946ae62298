"""The old home of frames and masks, kept so that its names stay importable: label maps are
read and written by :mod:`ssmvos.io.labels` (one reader, one writer), frames by
:mod:`ssmvos.io.frames` (``list_frames``, ``read_frame``, ``IMAGE_SUFFIXES``; ``open_video``
and ``VIDEO_SUFFIXES`` when first asked for).

Reading never guesses silently: unreadable, missing, truncated or mistaken files raise
SSMVOSError naming them. Writing goes through :mod:`ssmvos.atomic` (temporary file +
rename), so an interrupted run leaves no half PNG and a failed write is one clear line.
"""
from __future__ import annotations

import os

import numpy as np

from ..io import labels as _labels
from ..io.frames.files import IMAGE_SUFFIXES, list_frames, read_frame  # noqa: F401  (their old place)
# label maps are io.labels' (one reader, one writer); these names stay for their callers
from ..io.labels import (DAVIS_PALETTE, LOSSY_LABELS, RARE_FRACTION, artefact_labels,  # noqa: F401
                         read_label_map, write_gray_png, write_label_png as write_palette_png)


def read_mask(path: str | os.PathLike, what: str = "mask") -> np.ndarray:
    """A mask PNG as its H×W uint8 values (palette indices or gray levels, a soft mask's
    0..255), by :mod:`ssmvos.io.labels`' rules but without its lossy check (``what`` names
    the file in errors)."""
    return _labels.read_label_map(path, what, lossy_check=False)


def object_mask(labels: np.ndarray, object_id: int) -> np.ndarray:
    """H×W labels -> H×W float32 mask, 1 where ``labels == object_id``."""
    return (labels == object_id).astype(np.float32)


def __getattr__(name: str) -> object:
    """``open_video`` and ``VIDEO_SUFFIXES``, now :mod:`ssmvos.io.frames.video`'s (imported when
    first asked for: that module needs OpenCV, which reading masks does not)."""
    if name in ("open_video", "VIDEO_SUFFIXES"):
        from ..io.frames import video

        return getattr(video, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

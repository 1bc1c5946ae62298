"""Frame sources: where the frames of a video come from, one module per kind.

* :mod:`.base`: the ``FrameSource`` interface; ``ArrayFrames`` (frames in memory).
* :mod:`.files`: image files (a folder or a list of paths), the frame order (``frame_key``:
  ``2.jpg`` before ``10.jpg``), ``list_frames``, ``read_frame``.
* :mod:`.video`: video files (mp4, ...) through OpenCV.
* :mod:`.live`: live sources (cameras, network streams, iterables), their queue and drop policy.
* :mod:`.pipe`: byte streams such as stdin (JPEG/PNG images, YUV4MPEG2).
* :mod:`.open`: ``open_frames`` picks the source; ``is_live`` asks the same rules.

The names below are importable from this package; each module is imported when one of its
names is first used (listing frames needs no OpenCV).
"""
from __future__ import annotations

import importlib

_HOMES = {
    "FrameSource": "base", "ArrayFrames": "base",
    "IMAGE_SUFFIXES": "files", "frame_key": "files", "sort_frames": "files", "list_frames": "files",
    "read_frame": "files", "FrameFiles": "files",
    "VIDEO_SUFFIXES": "video", "open_video": "video", "VideoFile": "video",
    "LiveSource": "live", "CaptureStream": "live", "IterableStream": "live",
    "PipeStream": "pipe",
    "open_frames": "open", "is_live": "open",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)

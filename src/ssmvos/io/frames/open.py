"""``open_frames``: the frame source for whatever names a video, decided in one place
(:func:`_route`); :func:`is_live` asks the same rules without opening anything."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...errors import SSMVOSError
from ...numbers import is_number
from .base import ArrayFrames, FrameSource
from .files import FrameFiles, list_frames
from .live import CaptureStream, IterableStream
from .pipe import PipeStream
from .video import VIDEO_SUFFIXES, VideoFile

#: opens the source: (queue_size, drop) -> source (the two apply to live sources)
Opener = Callable[[int, bool], FrameSource]


def _stdin() -> object:
    # unbuffered, on the descriptor itself: a reader thread blocked in sys.stdin.buffer would
    # hold its lock and abort the interpreter's shutdown (e.g. after Ctrl-C)
    return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)


def _route(video: object) -> tuple[type[FrameSource], Opener]:
    """The kind of source ``video`` is (its class) and how to open it. Looks at the file
    system only (no file is opened); raises SSMVOSError for what is no video."""
    if isinstance(video, np.ndarray):
        return ArrayFrames, lambda q, d: ArrayFrames(video)
    if isinstance(video, (list, tuple)):
        return FrameFiles, lambda q, d: FrameFiles([Path(p) for p in video])
    if isinstance(video, bool):
        raise SSMVOSError(f"not a video: {video!r}")
    if isinstance(video, int):
        return CaptureStream, lambda q, d: CaptureStream(video, q, d)
    if hasattr(video, "read"):
        return PipeStream, lambda q, d: PipeStream(video, getattr(video, "name", "the byte stream"), q, d)
    if isinstance(video, (str, os.PathLike)):
        text = os.fspath(video)
        if text == "-":
            return PipeStream, lambda q, d: PipeStream(_stdin(), "stdin", q, d)
        if "://" in text:
            return CaptureStream, lambda q, d: CaptureStream(text, q, d)
        path = Path(text)
        if path.is_dir():
            return FrameFiles, lambda q, d: FrameFiles(list_frames(path))
        if path.is_file():
            return VideoFile, lambda q, d: VideoFile(path)
        if is_number(text):
            return CaptureStream, lambda q, d: CaptureStream(int(text), q, d)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return VideoFile, lambda q, d: VideoFile(path)  # raises naming the missing file
        raise SSMVOSError(f"video not found: {path}")
    if hasattr(video, "__iter__"):
        return IterableStream, lambda q, d: IterableStream(video, queue_size=q, drop=d)
    raise SSMVOSError(f"cannot read frames from a {type(video).__name__}")


def is_live(video: object) -> bool:
    """Whether :func:`open_frames` opens ``video`` as a live source (without opening it;
    False for what it refuses)."""
    try:
        kind, _ = _route(video)
    except SSMVOSError:
        return False
    return kind.live


def open_frames(video: object, queue_size: int = 4, drop: bool = True) -> FrameSource:
    """A frame source for ``video``: a video file, a folder of frames (in natural order,
    :func:`~.files.frame_key`), a list of image paths, a T×H×W×3 uint8 array; or, live, a
    camera index (an int or a string of digits that is not a file), a URL (``rtsp://``,
    ``http://``, ...), ``"-"`` for stdin, a binary file object, or an iterable of H×W×3
    frames. ``queue_size`` and ``drop`` apply to live sources."""
    _, opener = _route(video)
    return opener(queue_size, drop)


__all__ = ["open_frames", "is_live"]

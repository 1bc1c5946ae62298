"""Frame sources moved to :mod:`ssmvos.io.frames` (one module per kind); the old names stay
importable from here."""
from __future__ import annotations

from ..io.frames.base import ArrayFrames, FrameSource
from ..io.frames.files import FrameFiles, list_frames, read_frame
from ..io.frames.live import CaptureStream, IterableStream, LiveSource
from ..io.frames.open import is_live, open_frames
from ..io.frames.pipe import PipeStream
from ..io.frames.video import VIDEO_SUFFIXES, VideoFile, open_video

__all__ = ["FrameSource", "FrameFiles", "ArrayFrames", "VideoFile", "LiveSource", "CaptureStream", "PipeStream",
           "IterableStream", "is_live", "open_frames", "list_frames", "read_frame", "open_video", "VIDEO_SUFFIXES"]

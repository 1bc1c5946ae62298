"""Overlay video: label maps blended onto the frames, written as H.264 where an encoder is
available (atomically).

Browsers play H.264 in mp4, not the MPEG-4 part 2 ('mp4v') that OpenCV's pip wheels write.
The writer takes the first that works: PyAV's H.264 encoder (``pip install av``), OpenCV's
(builds with one), else mp4v with a one-line notice on stderr.
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..atomic import PendingFile, writing
from ..io.labels import DAVIS_PALETTE
from ..errors import SSMVOSError

_COLORS = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)

#: Printed when no H.264 encoder is found and the overlay falls back to mp4v.
MP4V_NOTICE = ("note: no H.264 encoder found (install PyAV for one: pip install av); the overlay is MPEG-4 part 2 "
               "(mp4v), which most browsers do not play")


def blend(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """H×W×3 uint8 RGB frame with H×W labels blended in their palette colours (+ outlines)."""
    out = frame.copy()
    fg = labels > 0
    colors = _COLORS[labels]
    out[fg] = (frame[fg] * (1 - alpha) + colors[fg] * alpha).astype(np.uint8)
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges & fg] = colors[edges & fg]
    return out


class _PyAVWriter:
    """H.264 (yuv420p) through PyAV; odd frame sizes are padded by one row/column."""

    codec = "h264"

    def __init__(self, av, path: Path, width: int, height: int, fps: float):
        self.container = av.open(str(path), mode="w")
        try:
            self.stream = self.container.add_stream("h264", rate=Fraction(fps).limit_denominator(1001))
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = "yuv420p"
        except BaseException:
            self.container.close()
            raise
        self.pad = ((0, height % 2), (0, width % 2), (0, 0))
        self.frame_type = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        if any(self.pad[i][1] for i in range(2)):
            rgb = np.pad(rgb, self.pad, mode="edge")
        for packet in self.stream.encode(self.frame_type.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
            self.container.mux(packet)

    def release(self) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()


class _OpenCVWriter:
    def __init__(self, writer: cv2.VideoWriter, codec: str):
        self.writer, self.codec = writer, codec

    def write(self, rgb: np.ndarray) -> None:
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def release(self) -> None:
        self.writer.release()


def _pyav_h264(path: Path, width: int, height: int, fps: float) -> _PyAVWriter | None:
    try:
        import av

        av.codec.Codec("h264", "w")
    except Exception:  # not installed, or built without an H.264 encoder
        return None
    try:
        return _PyAVWriter(av, path, width, height, fps)
    except Exception:
        return None


def _opencv(path: Path, width: int, height: int, fps: float, fourcc: str, quiet: bool) -> _OpenCVWriter | None:
    """OpenCV's writer for ``fourcc``, or None. ``quiet``: a failed probe prints nothing (OpenCV
    and FFmpeg otherwise log every encoder they try)."""
    saved = cv2.utils.logging.getLogLevel(), os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    if quiet:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"
    try:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    finally:
        if quiet:
            cv2.utils.logging.setLogLevel(saved[0])
            if saved[1] is None:
                os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
            else:
                os.environ["OPENCV_FFMPEG_LOGLEVEL"] = saved[1]
    if not writer.isOpened():
        writer.release()
        return None
    return _OpenCVWriter(writer, "h264" if fourcc == "avc1" else fourcc)


#: The containers an overlay may be written to (by its file name's suffix).
OVERLAY_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


def check_overlay_path(path: str | os.PathLike, what: str = "the overlay") -> Path:
    """Refuse, before any work, an overlay path whose suffix is not a video container's
    (``--overlay masks/00000.png`` would replace a PNG with a video)."""
    path = Path(path)
    if path.suffix.lower() not in OVERLAY_SUFFIXES:
        raise SSMVOSError(f"{what} {path} must be a video file ({', '.join(OVERLAY_SUFFIXES)}), not "
                          f"{path.suffix or 'a name without a suffix'}")
    return path


class OverlayWriter:
    """Writes RGB frames to a video file; the file appears only when ``close()`` succeeds.

    ``codec`` says what it writes: 'h264', or 'mp4v' (after printing :data:`MP4V_NOTICE`).
    ``h264=False`` skips the H.264 encoders.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float, h264: bool = True):
        self.path = Path(path)
        # the container is chosen from the file name's suffix: keep the target's
        self.file = PendingFile(self.path, suffix=self.path.suffix or ".mp4")
        tmp = self.file.tmp
        writer = (_pyav_h264(tmp, width, height, fps) or _opencv(tmp, width, height, fps, "avc1", quiet=True)
                  if h264 else None)
        if writer is None:
            writer = _opencv(tmp, width, height, fps, "mp4v", quiet=False)
            if writer is None:
                self.file.discard()
                raise SSMVOSError(f"cannot write the overlay video {self.path} (no H.264 or mp4v encoder here)")
            print(MP4V_NOTICE, file=sys.stderr)
        self.writer = writer
        self.codec = writer.codec

    def write(self, frame_rgb: np.ndarray) -> None:
        with writing(self.path):
            self.writer.write(frame_rgb)

    def close(self) -> Path:
        try:
            with writing(self.path):
                self.writer.release()
        except BaseException:
            self.file.discard()
            raise
        return self.file.commit()

    def abort(self) -> None:
        try:
            self.writer.release()
        except Exception:  # the file is discarded anyway
            pass
        self.file.discard()

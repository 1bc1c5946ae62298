"""Frames of a video file (mp4, avi, mov, ...), decoded by OpenCV (FFmpeg): random access
by keeping a decoder open and seeking only when that is cheaper than decoding through."""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ...errors import SSMVOSError
from .base import FrameSource
from .files import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
#: Containers whose header holds the frame count (Matroska/WebM only estimate it from the duration).
HEADER_COUNTS = (".mp4", ".avi", ".mov", ".m4v")
#: A video that decodes to fewer than this fraction of its declared frames is refused as damaged.
TRUNCATED = 0.9


def open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, float]:
    """Open a video file with OpenCV; returns (capture, fps)."""
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


class _Decoder:
    """One OpenCV decoder over a :class:`VideoFile` that reads any frame: the next one
    directly, a short jump forward by decoding through, anything else by seeking."""

    def __init__(self, video: "VideoFile"):
        self.video = video
        self.cap: cv2.VideoCapture | None = None
        self.next = 0  # index of the frame the decoder reads next

    def read(self, index: int) -> np.ndarray:
        video = self.video
        if not 0 <= index < video.count:
            raise SSMVOSError(f"frame {index} is outside {video.path}'s {video.count} frames")
        seeked = self._position(index)
        ok, bgr = self.cap.read()
        if ok and seeked and abs(self.cap.get(cv2.CAP_PROP_POS_MSEC) - video.times[index]) > 0.5:
            video.exact_seek = False  # this container seeks inexactly: read sequentially from now on
            self.close()
            self._position(index)
            ok, bgr = self.cap.read()
        self.next = index + 1
        if not ok:
            raise SSMVOSError(f"cannot decode frame {index} of {video.path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _position(self, index: int) -> bool:
        """Make ``index`` the next frame read; True if that took a seek."""
        video = self.video
        near = self.cap is not None and self.next <= index and (
            index - self.next <= VideoFile.SKIP_LIMIT or not video.exact_seek)
        if not near:
            if self.cap is None or not video.exact_seek:
                self.close()
                self.cap, _ = open_video(video.path)
                self.next = 0
            if video.exact_seek and index != self.next:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self.next = index
                return True
        while self.next < index:
            self.cap.grab()
            self.next += 1
        return False

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class VideoFile(FrameSource):
    """A video file (mp4, avi, ...).

    Opening decodes it once, to count its frames and note each one's timestamp. ``get`` keeps
    a decoder open: the next frame is read directly, a jump forward of at most
    ``SKIP_LIMIT`` frames is decoded through, and any other access seeks (OpenCV/FFmpeg go
    to the key frame before it and decode forward), so its cost depends on the distance
    between key frames, not on the frame index. A seek that lands on the wrong frame (its
    timestamp differs; some containers seek inexactly) is caught, and such a file is read
    sequentially instead from then on. ``iterate`` decodes in a thread of its own, in the
    order asked: forward from its first index, or backward in blocks of ``BLOCK`` frames,
    each read forward.
    """

    SKIP_LIMIT = 16
    BLOCK = 16

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.description = str(self.path)
        cap, self.fps = open_video(self.path)
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # from the container's header (-1/0: unknown)
        times: list[float] = []
        try:
            while cap.grab():
                times.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        finally:
            cap.release()
        if not times:
            raise SSMVOSError(f"video {self.path} has no decodable frames")
        if self.path.suffix.lower() in HEADER_COUNTS and len(times) < TRUNCATED * declared:
            raise SSMVOSError(f"video {self.path} ends after {len(times)} of the {declared} frames its header "
                              "declares (a truncated or damaged file?)")
        self.count = len(times)
        self.times = np.asarray(times)
        #: seeking is trusted while timestamps are distinct and every seek lands where asked
        self.exact_seek = bool(np.all(np.diff(self.times) > 0))
        self._lock = threading.Lock()
        self._decoder = _Decoder(self)

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> np.ndarray:
        with self._lock:
            return self._decoder.read(index)

    def close(self) -> None:
        """Release the decoder that ``get`` keeps open (reopened when needed)."""
        with self._lock:
            self._decoder.close()

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        steps = {b > a for a, b in zip(indices, indices[1:])}
        if len(steps) > 1:  # neither increasing nor decreasing: frame by frame
            yield from super().iterate(indices, prefetch)
            return
        backward = steps == {False}
        q: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        stop = threading.Event()

        def decode() -> None:
            decoder = _Decoder(self)
            try:
                if backward:
                    for k in range(0, len(indices), self.BLOCK):
                        block = indices[k : k + self.BLOCK]
                        frames = {}
                        for i in reversed(block):
                            if stop.is_set():
                                return
                            frames[i] = decoder.read(i)
                        for i in block:
                            q.put((i, frames.pop(i)))
                else:
                    for i in indices:
                        if stop.is_set():
                            return
                        q.put((i, decoder.read(i)))
                q.put(None)
            except BaseException as exc:  # handed to the consumer
                q.put(exc)
            finally:
                decoder.close()

        thread = threading.Thread(target=decode, name="ssmvos-video", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


__all__ = ["VIDEO_SUFFIXES", "open_video", "VideoFile"]

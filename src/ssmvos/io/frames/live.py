"""Live frame sources: read once, in order, as frames arrive.

A camera (an OpenCV device index), a network stream (an RTSP/HTTP/... URL) or any Python
iterable of frames; byte pipes such as stdin are :mod:`.pipe`'s. A live source is read
through ``stream()``: a thread reads frames as they come, numbered by arrival, into a queue of
at most ``queue_size`` frames. **Drop policy**: when frames come faster than they are
processed and the queue is full, the oldest waiting frame is dropped, so that results stay
close to live (frames with a given mask are never dropped; ``dropped`` counts the others).
With ``drop=False`` the reader waits instead and every frame is processed: a pipe's writer
is then held back, and a camera drops frames on its side.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import cv2
import numpy as np

from ...errors import SSMVOSError
from .base import FrameSource


class LiveSource(FrameSource):
    """Frames read once, as they arrive (see the module docstring for the queue and the drop
    policy). Subclasses implement ``_read`` (the next RGB frame, or None at the end) and may
    implement ``_release``. The first frame is read when the source is opened."""

    live = True

    def __init__(self, description: str, queue_size: int = 4, drop: bool = True):
        self.description = description
        self.queue_size = max(1, int(queue_size))
        self.drop = drop
        self.dropped = 0  # frames dropped by the drop policy
        self.received = 0  # frames read from the source
        self._cond = threading.Condition()
        self._buffer: deque[tuple[int, np.ndarray, float]] = deque()
        self._end: bool | BaseException | None = None  # True: the source ended; an exception: it failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keep: Callable[[int], bool] = lambda index: False
        try:
            first = self._read()
        except BaseException:
            self._release()
            raise
        if first is None:
            self._release()
            raise SSMVOSError(f"{description} gave no frame")
        self.received = 1
        self._first: np.ndarray | None = first
        self._size = first.shape[:2]

    def _read(self) -> np.ndarray | None:  # pragma: no cover - interface
        raise NotImplementedError

    def _release(self) -> None:
        """Close what the source reads from (called from the reader thread once it ends)."""

    def __len__(self) -> int:
        raise TypeError(f"{self.description} is live: its length is unknown")

    def frame_size(self) -> tuple[int, int]:
        return self._size

    def get(self, index: int) -> np.ndarray:
        if index == 0 and self._first is not None:
            return self._first
        raise SSMVOSError(f"{self.description} is live: frame {index} cannot be read back")

    def stream(self, start: int = 0, count: int | None = None,
               keep: Callable[[int], bool] | None = None) -> Iterator[tuple[int, np.ndarray, float]]:
        """Yield ``(index, frame, arrival)`` as frames arrive, from frame ``start`` on
        (earlier ones are skipped), at most ``count`` of them; ``arrival`` is
        ``time.monotonic()`` when the frame was read (for frame 0: when streaming began).
        ``keep(index)`` True protects a frame from the drop policy."""
        if keep is not None:
            self._keep = keep
        if self._thread is None:
            self._buffer.append((0, self._first, time.monotonic()))
            self._first = None
            self._thread = threading.Thread(target=self._reader, name="ssmvos-live", daemon=True)
            self._thread.start()
        yielded = 0
        while count is None or yielded < count:
            with self._cond:
                while not self._buffer and self._end is None:
                    self._cond.wait(0.25)
                if not self._buffer:
                    if isinstance(self._end, BaseException):
                        raise self._end
                    return
                item = self._buffer.popleft()
                self._cond.notify_all()
            if item[0] >= start:
                yielded += 1
                yield item

    def _reader(self) -> None:
        index = 1
        end: bool | BaseException = True
        try:
            while not self._stop.is_set():
                frame = self._read()
                if frame is None:
                    break
                self.received += 1
                self._push((index, frame, time.monotonic()))
                index += 1
        except BaseException as exc:  # handed to the consumer after the frames before it
            end = exc
        finally:
            self._release()
            with self._cond:
                self._end = end
                self._cond.notify_all()

    def _push(self, item: tuple[int, np.ndarray, float]) -> None:
        with self._cond:
            while len(self._buffer) >= self.queue_size and not self._stop.is_set():
                if self.drop:
                    victim = next((k for k, queued in enumerate(self._buffer) if not self._keep(queued[0])), None)
                    if victim is not None:
                        del self._buffer[victim]
                        self.dropped += 1
                        break
                self._cond.wait(0.1)
            self._buffer.append(item)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop reading (the reader thread ends after its current read)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is None:
            self._release()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's and FFmpeg's own log lines off while opening a capture (their failures
    become one SSMVOSError instead). FFmpeg reads its level once, on its first use."""
    level = cv2.utils.logging.getLogLevel()
    saved = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # AV_LOG_QUIET
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
        if saved is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)
        else:
            os.environ["OPENCV_FFMPEG_LOGLEVEL"] = saved


class CaptureStream(LiveSource):
    """A camera (OpenCV device index) or a network stream (RTSP, HTTP, ... URL) read by OpenCV."""

    #: seconds OpenCV waits to open a network stream, and for each of its frames
    TIMEOUT = 15.0

    def __init__(self, source: int | str, queue_size: int = 4, drop: bool = True):
        what = f"camera {source}" if isinstance(source, int) else f"stream {source}"
        with _quiet_opencv():
            if isinstance(source, int):
                cap = cv2.VideoCapture(source)
            else:
                ms = int(self.TIMEOUT * 1000)
                cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not cap.isOpened():
            raise SSMVOSError(f"cannot open {what}" + (" (no such camera?)" if isinstance(source, int) else ""))
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None
        super().__init__(what, queue_size, drop)

    def _read(self) -> np.ndarray | None:
        ok, bgr = self._cap.read()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None

    def _release(self) -> None:
        self._cap.release()


class IterableStream(LiveSource):
    """Frames from a Python iterable (a generator, a camera wrapper, ...): H×W×3 uint8 RGB."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float | None = None, queue_size: int = 4,
                 drop: bool = True):
        self._it = iter(frames)
        self._count = 0
        self.fps = fps
        super().__init__("the frame iterable", queue_size, drop)

    def _read(self) -> np.ndarray | None:
        frame = next(self._it, None)
        if frame is None:
            return None
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise SSMVOSError(f"frame {self._count} of the iterable is {'×'.join(map(str, frame.shape))} "
                              f"{frame.dtype}, not H×W×3 uint8 RGB")
        self._count += 1
        return frame


__all__ = ["LiveSource", "CaptureStream", "IterableStream"]

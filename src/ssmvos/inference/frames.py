"""Frame sources: where the frames of a video come from (image files or a video container).

A source has a length, ``get(i)`` -> H×W×3 uint8 RGB, ``name(i)`` (the file stem used for
output names), ``fps`` (None when the source does not know it) and ``iterate(indices)``,
which decodes ahead of the caller in threads.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..data.io import VIDEO_SUFFIXES, list_frames, open_video, read_frame
from ..errors import SSMVOSError


class FrameSource:
    """Random access to the frames of a video. Subclasses implement ``__len__`` and ``get``."""

    #: frames per second, when the source knows it
    fps: float | None = None

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A file stem for frame ``index`` (used for output names)."""
        return f"{index:05d}"

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``indices`` in order, ``prefetch`` frames ahead in threads."""
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ssmvos-decode") as pool:
            pending: list[tuple[int, Future]] = []
            it = iter(indices)
            for i in it:
                pending.append((i, pool.submit(self.get, i)))
                if len(pending) > prefetch:
                    break
            while pending:
                i, fut = pending.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self.get, nxt)))
                yield i, fut.result()


class FrameFiles(FrameSource):
    """Frames stored as image files (JPEG/PNG), in the given order."""

    def __init__(self, paths: list[Path], fps: float | None = None):
        if not paths:
            raise SSMVOSError("a video needs at least one frame")
        self.paths = [Path(p) for p in paths]
        self.fps = fps

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        return read_frame(self.paths[index])

    def name(self, index: int) -> str:
        return self.paths[index].stem


class VideoFile(FrameSource):
    """A video file (mp4, avi, ...), decoded sequentially.

    ``get`` keeps its decoder open where the last call left it, so reading frames in order
    decodes each frame once; going back reopens the file. ``iterate`` decodes in a thread
    of its own.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        cap, self.fps = open_video(self.path)
        try:
            count = 0
            while cap.grab():
                count += 1
        finally:
            cap.release()
        if count == 0:
            raise SSMVOSError(f"video {self.path} has no decodable frames")
        self.count = count
        self._lock = threading.Lock()
        self._cap: cv2.VideoCapture | None = None
        self._next = 0  # index of the frame the open decoder reads next

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise SSMVOSError(f"frame {index} is outside {self.path}'s {self.count} frames")
        with self._lock:
            if self._cap is None or index < self._next:
                self.close()
                self._cap, _ = open_video(self.path)
                self._next = 0
            while self._next < index:
                self._cap.grab()
                self._next += 1
            ok, bgr = self._cap.read()
            self._next += 1
        if not ok:
            raise SSMVOSError(f"cannot decode frame {index} of {self.path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the decoder that ``get`` keeps open (reopened when needed)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        wanted = set(indices)
        q: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        stop = threading.Event()

        def decode() -> None:
            try:
                cap, _ = open_video(self.path)
                try:
                    for i in range(max(indices) + 1 if indices else 0):
                        if stop.is_set():
                            return
                        if i not in wanted:
                            cap.grab()
                            continue
                        ok, bgr = cap.read()
                        if not ok:
                            raise SSMVOSError(f"cannot decode frame {i} of {self.path}")
                        q.put((i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                finally:
                    cap.release()
                q.put(None)
            except BaseException as exc:  # handed to the consumer
                q.put(exc)

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


def open_frames(video: str | os.PathLike | list) -> FrameSource:
    """A frame source from a video file, a folder of frames, or a list of image paths."""
    if isinstance(video, (list, tuple)):
        return FrameFiles([Path(p) for p in video])
    path = Path(video)
    if path.is_dir():
        return FrameFiles(list_frames(path))
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        return VideoFile(path)
    raise SSMVOSError(f"video not found: {path}")

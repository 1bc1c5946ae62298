"""Frame sources: a list of image files, or a video file decoded with OpenCV."""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..data.io import VIDEO_SUFFIXES, list_frames, open_video, read_frame
from ..errors import SSMVOSError
from .engine import FrameSource


class FrameFiles(FrameSource):
    """Frames stored as image files (JPEG/PNG), in the given order."""

    def __init__(self, paths: list[Path]):
        if not paths:
            raise SSMVOSError("a video needs at least one frame")
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        return read_frame(self.paths[index])

    def name(self, index: int) -> str:
        return self.paths[index].stem


class VideoFile(FrameSource):
    """A video file (mp4, avi, ...): decoded sequentially in a background thread."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        cap, _, self.fps = open_video(self.path)
        try:
            count = 0
            while cap.grab():
                count += 1
        finally:
            cap.release()
        if count == 0:
            raise SSMVOSError(f"video {self.path} has no decodable frames")
        self.count = count

    def __len__(self) -> int:
        return self.count

    def get(self, index: int) -> np.ndarray:
        cap, _, _ = open_video(self.path)
        try:
            for _ in range(index):
                cap.grab()
            ok, bgr = cap.read()
        finally:
            cap.release()
        if not ok:
            raise SSMVOSError(f"cannot decode frame {index} of {self.path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        wanted = set(indices)
        q: queue.Queue = queue.Queue(maxsize=max(prefetch, 1))
        stop = threading.Event()

        def decode() -> None:
            try:
                cap, _, _ = open_video(self.path)
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

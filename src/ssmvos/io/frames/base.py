"""The frame source interface, and frames held in memory.

A random-access source (``live`` False) has a length, ``get(i)`` -> H×W×3 uint8 RGB,
``name(i)`` (the file stem used for output names), ``fps`` (None when unknown) and
``iterate(indices)``, which decodes ahead of the caller in threads. Live sources
(:mod:`.live`) are read once, in order, through ``stream()``.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ...errors import SSMVOSError


class FrameSource:
    """The frames of a video. Random-access subclasses implement ``__len__`` and ``get``."""

    #: frames per second, when the source knows it
    fps: float | None = None
    #: True for sources read once as frames arrive (see :class:`LiveSource`)
    live: bool = False
    #: what the source is, for messages
    description: str = "the video"

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, index: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return self.get(0).shape[:2]

    def name(self, index: int) -> str:
        """A file stem for frame ``index`` (used for output names)."""
        return f"{index:05d}"

    def close(self) -> None:
        """Release what the source holds open (decoders, reader threads)."""

    def iterate(self, indices: list[int], prefetch: int = 4) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``indices`` in the given order, ``prefetch`` frames ahead in threads."""
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


class ArrayFrames(FrameSource):
    """Frames held in a numpy array T×H×W×3 uint8 (RGB)."""

    def __init__(self, frames: np.ndarray, fps: float | None = None):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise SSMVOSError(f"a frame array must be T×H×W×3 uint8 RGB with T >= 1, not "
                              f"{'×'.join(map(str, frames.shape))} {frames.dtype}")
        self.frames = frames
        self.fps = fps
        self.description = "the frame array"

    def __len__(self) -> int:
        return len(self.frames)

    def get(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self.frames):
            raise SSMVOSError(f"frame {index} is outside the array's {len(self.frames)} frames")
        return self.frames[index]


__all__ = ["FrameSource", "ArrayFrames"]

"""Segmenting a user's own clip from masks of one or more objects on one or more frames.

Masks on later frames add objects (a new id) or correct them (a known id: its chain
restarts there). Frames before the first mask are segmented backward from it, the rest
forward (``direction="both"``, the default for videos), or only one way. A live source
(camera, URL, stdin) is segmented forward as its frames arrive, and PNGs and the overlay
are written as they come: an interrupt (Ctrl-C) leaves everything up to then complete.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import check_output_file, check_output_folder, make_dirs, remove_temporaries
from ..data.io import read_label_map, write_palette_png
from ..errors import SSMVOSError
from .engine import VideoState
from .frames import is_live
from .merge import merge_frame
from .overlay import OverlayWriter, blend
from .predictor import VideoPredictor
from .writer import AsyncWriter

DIRECTIONS = ("forward", "backward", "both")

MaskSpec = tuple[int, "str | os.PathLike"]


def objects_in_mask(labels: np.ndarray, source: str) -> dict[int, np.ndarray]:
    """Object id -> H×W bool mask from a first-frame label map.

    Labels 1..254 are objects. A binary mask (only 0 and 255) is one object with id 1;
    next to other labels, 255 is DAVIS's 'void' and ignored.
    """
    ids = [int(v) for v in np.unique(labels) if v != 0]
    if ids == [255]:
        return {1: labels == 255}
    ids = [i for i in ids if i != 255]
    if not ids:
        raise SSMVOSError(f"the mask {source} holds no object (all pixels are 0)")
    return {i: labels == i for i in ids}


def check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there, or raise SSMVOSError."""
    check_output_folder(folder, "output folder")
    make_dirs(folder)


@dataclass
class SegmentStats:
    """What :func:`segment_video` did. ``latencies``: seconds from each frame's arrival to its
    result (live sources); ``dropped``: frames the live drop policy skipped."""

    frames: int
    objects: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    interrupted: bool = False

    def latency_summary(self) -> str:
        """Median, 95th percentile and maximum latency in ms (empty without latencies)."""
        if not self.latencies:
            return ""
        ms = np.asarray(self.latencies) * 1000
        return (f"latency per frame: median {np.median(ms):.0f} ms, 95th percentile {np.percentile(ms, 95):.0f} ms, "
                f"max {ms.max():.0f} ms")


def _read_masks(masks: list[MaskSpec], height: int, width: int,
                num_frames: int | None) -> dict[int, dict[int, np.ndarray]]:
    """frame -> (object id -> H×W bool mask) from the mask files, all checked before any output."""
    out: dict[int, dict[int, np.ndarray]] = {}
    source: dict[int, str] = {}
    for frame, path in masks:
        if frame < 0:
            raise SSMVOSError(f"the mask {path} is for frame {frame}: frame numbers start at 0")
        if num_frames is not None and frame >= num_frames:
            raise SSMVOSError(f"the mask {path} is for frame {frame}, but the video has {num_frames} frames "
                              f"(0..{num_frames - 1})")
        if frame in out:
            raise SSMVOSError(f"two masks for frame {frame}: {source[frame]} and {path}")
        labels = read_label_map(path)
        if labels.shape != (height, width):
            raise SSMVOSError(f"the mask {path} is {labels.shape[1]}×{labels.shape[0]} but the frames are "
                              f"{width}×{height}")
        out[frame], source[frame] = objects_in_mask(labels, str(path)), str(path)
    return out


def segment_video(predictor: VideoPredictor, video: object, masks: str | os.PathLike | list[MaskSpec],
                  out_dir: str | os.PathLike, overlay: str | os.PathLike | None = None,
                  progress: bool = True, direction: str | None = None, drop: bool = True,
                  reference: str = "first") -> SegmentStats:
    """Segment the objects of ``masks`` through ``video``.

    ``masks``: one mask file (frame 0) or ``(frame, path)`` pairs; each is a label map whose
    objects start there (a new id) or are corrected there (an id given on an earlier frame).
    ``direction``: 'forward' from the first mask, 'backward' from the last, or 'both'
    (frames before the first mask backward, the rest forward); default 'both', and
    'forward' for a live source (the only direction it allows). ``drop``: the live drop
    policy (``inference.frames``); False processes every frame. ``reference``: see
    :meth:`VideoPredictor.init_state`.

    Writes ``<out_dir>/<frame name>.png`` palette label maps at the video's resolution and,
    if asked, an overlay video, as frames are done. Inputs are checked before any output is
    written. A failure midway flushes what was done to disk before it propagates; an
    interrupt (Ctrl-C) ends the run the same way and returns with ``interrupted`` set.
    """
    masks = [(0, masks)] if isinstance(masks, (str, os.PathLike)) else list(masks)
    if not masks:
        raise SSMVOSError("no mask given")
    live = is_live(video)
    if direction is None:
        direction = "forward" if live else "both"
    if direction not in DIRECTIONS:
        raise SSMVOSError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if live and direction != "forward":
        raise SSMVOSError(f"a live source can only be segmented forward, not {direction}")
    out_dir = Path(out_dir)
    state = predictor.init_state(video, reference, keep_results=False, drop=drop)
    try:
        given = _read_masks(masks, state.height, state.width, state.num_frames)
        check_writable(out_dir)
        remove_temporaries(out_dir)  # left by a killed run
        if overlay is not None:
            check_output_file(overlay, "overlay")
            check_writable(Path(overlay).parent)
        for frame in sorted(given):  # in frame order: an object's first mask is its earliest
            for obj_id, mask in given[frame].items():
                predictor.add_new_mask(state, frame, obj_id, mask)
        return _Run(predictor, state, out_dir, overlay, progress).run(direction, min(given), max(given))
    finally:
        predictor.close_state(state)


class _HeldInterrupts:
    """Inside :meth:`held`, Ctrl-C (SIGINT) waits until the block ends: an interrupt never
    leaves a frame's PNG without its overlay frame. Only in the main thread, and only where
    Python's own SIGINT handler is installed; elsewhere a no-op."""

    def __init__(self) -> None:
        self.holding = self.pending = False
        self._previous = None

    def __enter__(self) -> "_HeldInterrupts":
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handler(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class _Run:
    """One segment_video run: the passes, the PNG writers and the overlay."""

    def __init__(self, predictor: VideoPredictor, state: VideoState, out_dir: Path,
                 overlay: str | os.PathLike | None, progress: bool):
        self.predictor, self.state, self.out_dir, self.overlay_path = predictor, state, out_dir, overlay
        self.writer: OverlayWriter | None = None
        self.written: set[int] = set()
        self.stats = SegmentStats(0, len(state.objects), 0.0)
        self.progress = progress

    def run(self, direction: str, first: int, last: int) -> SegmentStats:
        n = self.state.num_frames
        total = None if n is None else {"forward": n - first, "backward": last + 1, "both": n}[direction]
        self.bar = tqdm(total=total, unit="frame", desc="segment", disable=not self.progress)
        start = time.perf_counter()
        try:
            with _HeldInterrupts() as self.interrupts, AsyncWriter() as self.pngs:
                try:
                    if direction == "backward":
                        self._pass(last, reverse=True)
                    elif direction == "both" and first > 0:
                        self._pass(first, reverse=True, skip=first)  # frame ``first`` comes with the forward pass
                    if direction != "backward":
                        self._pass(first, reverse=False)
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.pngs.wait()  # what was done reaches the disk
                    raise
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.bar.close()
            self.stats.seconds = time.perf_counter() - start
            self.stats.dropped = getattr(self.state.frames, "dropped", 0)
            if self.writer is not None:
                self.writer.close()  # the overlay of every frame done
        return self.stats

    def _pass(self, start: int, reverse: bool, skip: int | None = None) -> None:
        for result in self.predictor.propagate_in_video(self.state, start, reverse=reverse):
            if result.frame_index == skip:
                continue
            labels = (merge_frame(result.object_ids, list(result.soft)) if result.object_ids
                      else np.zeros((self.state.height, self.state.width), np.uint8))
            with self.interrupts.held():  # a frame's outputs all or none
                self.pngs.submit(write_palette_png, self._png(result.frame_index), labels)
                if not reverse:
                    self._overlay(result.image, labels, result.fps)
                if result.latency is not None:
                    self.stats.latencies.append(result.latency)
                self.written.add(result.frame_index)
                self.stats.frames = len(self.written)
                self.bar.update(1)
        if reverse and self.overlay_path is not None:  # the overlay runs forward in time: read the PNGs back
            self.pngs.wait()
            for index in sorted(self.written):
                self._overlay(self.state.frames.get(index), read_label_map(self._png(index)), self.state.frames.fps)

    def _png(self, index: int) -> Path:
        return self.out_dir / f"{self.state.frames.name(index)}.png"

    def _overlay(self, image: np.ndarray, labels: np.ndarray, fps: float | None) -> None:
        if self.overlay_path is None:
            return
        if self.writer is None:
            self.writer = OverlayWriter(self.overlay_path, self.state.width, self.state.height,
                                        fps or 24.0)  # frame folders and pipes carry no frame rate
        self.writer.write(blend(image, labels))


def demo_clip() -> tuple[Path, Path]:
    """(frame folder, first-frame mask) of the DAVIS 2016 clip bundled with the package."""
    root = Path(__file__).resolve().parents[1] / "assets" / "demo"
    frames, mask = root / "frames", root / "mask.png"
    if not frames.is_dir() or not mask.is_file():
        raise SSMVOSError(f"the bundled demo clip is missing from {root} (reinstall ssmvos)")
    return frames, mask

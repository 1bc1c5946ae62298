"""Segmenting a user's own clip from masks of one or more objects on one or more frames.

Masks on later frames add objects (a new id) or correct them (a known id: its chain
restarts there). By default (``direction="both"``) every object is tracked backward and
forward from its first mask (:mod:`.directions` says exactly what each direction means); a
live source (camera, URL, stdin) is segmented forward as its frames arrive, and PNGs and the
overlay are written as they come: an interrupt (Ctrl-C) leaves everything up to then
complete.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import check_not_input, check_output_file, check_output_folder, make_dirs, remove_temporaries
from ..errors import SSMVOSError
from ..io.frames.open import is_live
from ..io.labels import LabelMap, object_masks, read_label_map, write_label_png as write_palette_png
from ..io.session_file import SessionFile
from .directions import check_direction
from .state import VideoState
from .overlay import OverlayWriter, blend, check_overlay_path
from .predictor import VideoPredictor
from .writer import AsyncWriter

#: (frame, mask): a mask file, or a label map already read (a session file's)
MaskSpec = tuple[int, "str | os.PathLike | LabelMap"]


def objects_in_mask(labels: np.ndarray, source: str) -> dict[int, np.ndarray]:
    """Object id -> H×W bool mask from a user's label map (:func:`ssmvos.io.labels.object_masks`):
    labels 1..254 are objects; a binary mask (only 0 and 255) is one object with id 1; next
    to other labels, 255 is DAVIS's 'void' and ignored."""
    return object_masks(labels, source)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there, or raise SSMVOSError."""
    check_output_folder(folder, "output folder")
    make_dirs(folder)


@dataclass
class SegmentStats:
    """What :func:`segment_video` did. ``latencies``: seconds from each frame's arrival to its
    result (live sources); ``dropped``: frames the live drop policy skipped; ``unmasked``:
    frames no pass reached (before the first mask going forward, after the last going
    backward), which get no PNG."""

    frames: int
    objects: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    interrupted: bool = False
    unmasked: range = range(0)

    def latency_summary(self) -> str:
        """Median, 95th percentile and maximum latency in ms (empty without latencies)."""
        if not self.latencies:
            return ""
        ms = np.asarray(self.latencies) * 1000
        return (f"latency per frame: median {np.median(ms):.0f} ms, 95th percentile {np.percentile(ms, 95):.0f} ms, "
                f"max {ms.max():.0f} ms")


def _read_masks(masks: list[MaskSpec], height: int, width: int,
                num_frames: int | None) -> dict[int, dict[int, np.ndarray]]:
    """frame -> (object id -> H×W bool mask) from the mask files and label maps, all checked
    before any output."""
    out: dict[int, dict[int, np.ndarray]] = {}
    source: dict[int, str] = {}
    for frame, mask in masks:
        name = mask.source if isinstance(mask, LabelMap) else f"the mask {mask}"
        if frame < 0:
            raise SSMVOSError(f"{name} is for frame {frame}: frame numbers start at 0")
        if num_frames is not None and frame >= num_frames:
            raise SSMVOSError(f"{name} is for frame {frame}, but the video has {num_frames} frames "
                              f"(0..{num_frames - 1})")
        shown = mask.source if isinstance(mask, LabelMap) else str(mask)
        if frame in out:
            raise SSMVOSError(f"two masks for frame {frame}: {source[frame]} and {shown}")
        labels = mask.labels if isinstance(mask, LabelMap) else read_label_map(mask)
        if labels.shape != (height, width):
            raise SSMVOSError(f"{name} is {labels.shape[1]}×{labels.shape[0]} but the frames are "
                              f"{width}×{height}")
        out[frame], source[frame] = objects_in_mask(labels, shown), shown
    return out


def _inputs(video: object, masks: list[MaskSpec], session: SessionFile | None) -> dict[str, object]:
    """What a run reads, by description, for :func:`~ssmvos.atomic.check_not_input`."""
    inputs: dict[str, object] = {}
    if isinstance(video, (str, os.PathLike)) and not is_live(video):
        inputs["the video" if Path(video).is_file() else "the frame folder"] = video
    for frame, mask in masks:
        if isinstance(mask, (str, os.PathLike)):
            inputs[f"the mask of frame {frame}"] = mask
    if session is not None and session.path is not None:
        inputs["the session file"] = session.path
    return inputs


def segment_video(predictor: VideoPredictor, video: object, masks: str | os.PathLike | list[MaskSpec],
                  out_dir: str | os.PathLike, overlay: str | os.PathLike | None = None,
                  progress: bool = True, direction: str | None = None, drop: bool = True,
                  reference: str = "first", session: SessionFile | None = None,
                  on_frame: Callable[[], None] | None = None) -> SegmentStats:
    """Segment the objects of ``masks`` through ``video``.

    ``masks``: one mask file (frame 0) or ``(frame, path)`` pairs; each is a label map whose
    objects start there (a new id) or are corrected there (an id given on an earlier frame).
    ``direction`` (:mod:`.directions`): 'forward' from the first mask, 'backward' from the
    last, or 'both' (each object backward and forward from its first mask); default 'both',
    and 'forward' for a live source (the only direction it allows); frames that no pass
    reaches get no PNG (``SegmentStats.unmasked``). ``drop``: the live drop
    policy (:mod:`ssmvos.io.frames.live`); False processes every frame. ``reference``: see
    :meth:`VideoPredictor.init_state`. ``session``: a session file's masks
    (:mod:`ssmvos.io.session_file`), taken with ``masks`` after checking that the session
    was made for this video; a frame with a mask in both is an error naming both.
    ``on_frame``: called after each frame is done (``ssmvos batch``'s progress).

    Writes ``<out_dir>/<frame name>.png`` palette label maps at the video's resolution and,
    if asked, an overlay video, as frames are done. Inputs are checked before any output is
    written. A failure midway flushes what was done to disk before it propagates; an
    interrupt (Ctrl-C) ends the run the same way and returns with ``interrupted`` set.
    """
    masks = [(0, masks)] if isinstance(masks, (str, os.PathLike, LabelMap)) else list(masks)
    if not masks and session is None:
        raise SSMVOSError("no mask given")
    live = is_live(video)
    if direction is None:
        direction = "forward" if live else "both"
    check_direction(direction)
    if live and direction != "forward":
        raise SSMVOSError(f"a live source can only be segmented forward, not {direction}")
    out_dir = Path(out_dir)
    state = predictor.init_state(video, reference=reference, keep_results=False, drop=drop)
    try:
        if session is not None:
            session.check_video(state.num_frames, state.height, state.width)
            masks = masks + session.label_maps()
        if not masks:
            raise SSMVOSError(f"{session.source} holds no mask")
        given = _read_masks(masks, state.height, state.width, state.num_frames)
        inputs = _inputs(video, masks, session)
        check_not_input(out_dir, "the output folder", inputs)
        check_writable(out_dir)
        remove_temporaries(out_dir)  # left by a killed run
        if overlay is not None:
            check_overlay_path(overlay)
            check_not_input(overlay, "the overlay", inputs)
            check_output_file(overlay, "overlay")
            check_writable(Path(overlay).parent)
        for frame in sorted(given):  # in frame order: an object's first mask is its earliest
            for obj_id, mask in given[frame].items():
                predictor.add_new_mask(state, frame, obj_id, mask, need_output=False)
        return _Run(predictor, state, out_dir, overlay, progress, on_frame).run(direction, min(given), max(given))
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
    """One segment_video run: the frames of the direction, the PNG writers and the overlay.

    The overlay runs forward in time: a frame a backward pass yields gets its overlay frame
    later, from its PNG read back, once the frames before it are in the overlay.
    """

    def __init__(self, predictor: VideoPredictor, state: VideoState, out_dir: Path,
                 overlay: str | os.PathLike | None, progress: bool, on_frame: Callable[[], None] | None = None):
        self.predictor, self.state, self.out_dir, self.overlay_path = predictor, state, out_dir, overlay
        self.writer: OverlayWriter | None = None
        self.written: set[int] = set()
        self.waiting: set[int] = set()  # PNG written by a backward pass, overlay frame not yet
        self.stats = SegmentStats(0, len(state.objects), 0.0)
        self.progress, self.on_frame = progress, on_frame

    def run(self, direction: str, first: int, last: int) -> SegmentStats:
        n = self.state.num_frames
        if n is not None:
            self.stats.unmasked = {"forward": range(0, first), "backward": range(last + 1, n), "both": range(0)}[direction]
        total = None if n is None else n - len(self.stats.unmasked)
        self.bar = tqdm(total=total, unit="frame", desc="segment", disable=not self.progress)
        start = time.perf_counter()
        try:
            # on an error or interrupt, AsyncWriter's exit still writes what was done
            with _HeldInterrupts() as self.interrupts, AsyncWriter() as self.pngs:
                for result in self.predictor.propagate(self.state, direction, merge="soft"):
                    self._write(result)
                self._flush_overlay(None)
        except KeyboardInterrupt:
            self.stats.interrupted = True
        finally:
            self.bar.close()
            self.stats.seconds = time.perf_counter() - start
            self.stats.dropped = getattr(self.state.frames, "dropped", 0)
            if self.writer is not None:
                self.writer.close()  # the overlay of every frame done
        return self.stats

    def _write(self, result) -> None:
        index = result.frame_index
        labels = result.labels  # merged by the engine (where the network runs, with device geometry)
        if not result.reverse:
            self._flush_overlay(index)
        with self.interrupts.held():  # a frame's outputs all or none
            self.pngs.submit(write_palette_png, self._png(index), labels)
            if result.reverse:
                self.waiting.add(index)
            else:
                self._overlay(result.image, labels, result.fps)
            if result.latency is not None:
                self.stats.latencies.append(result.latency)
            self.written.add(index)
            self.stats.frames = len(self.written)
            self.bar.update(1)
            if self.on_frame is not None:
                self.on_frame()

    def _flush_overlay(self, below: int | None) -> None:
        """Overlay frames, from their PNGs, for the waiting frames before ``below`` (all: None)."""
        due = sorted(i for i in self.waiting if below is None or i < below)
        if not due:
            return
        if self.overlay_path is not None:
            self.pngs.wait()
        for index in due:
            with self.interrupts.held():
                if self.overlay_path is not None:
                    self._overlay(self.state.frames.get(index), read_label_map(self._png(index)),
                                  self.state.frames.fps)
                self.waiting.discard(index)

    def _png(self, index: int) -> Path:
        return self.out_dir / f"{self.state.frames.name(index)}.png"

    def _overlay(self, image: np.ndarray, labels: np.ndarray, fps: float | None) -> None:
        if self.overlay_path is None:
            return
        if self.writer is None:
            self.writer = OverlayWriter(self.overlay_path, self.state.width, self.state.height,
                                        fps or 24.0)  # frame folders and pipes carry no frame rate
        self.writer.write(blend(image, labels))

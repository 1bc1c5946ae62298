"""Segment every object of a split file and write the original's outputs.

Per-object soft masks go to ``<save_dir>/<video>/<object_index>/<frame stem>.png`` exactly
as the original evaluate.py writes them (frame 0 = the annotation); optionally merged label
maps to ``<merged_dir>/<video>/<frame stem>.png`` covering every frame of the video's
image folder (frames before any object appears are background), and a zip for submission.
"""
from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_path
from ..data.io import list_frames, object_mask, read_mask, write_gray_png, write_palette_png
from ..data.splits import ObjectTrack, check_files, group_tracks
from ..errors import SSMVOSError
from .engine import Engine, VideoState
from .merge import merge_frame
from .frames import FrameFiles
from .writer import AsyncWriter


@dataclass
class EvaluationStats:
    """Totals of one evaluation run."""

    videos: int = 0
    objects: int = 0
    frames: int = 0  # frames decoded and segmented (any object)
    object_frames: int = 0  # (object, frame) pairs run through the network
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def videos_of(entries: list[dict], source: str = "split") -> dict[str, list[ObjectTrack]]:
    """Object tracks grouped by video, in the split's order."""
    out: dict[str, list[ObjectTrack]] = {}
    for track in group_tracks(entries, source):
        out.setdefault(track.video, []).append(track)
    return out


def _prepare_video(engine: Engine, tracks: list[ObjectTrack]) -> VideoState:
    paths = sorted({e["image_path"] for t in tracks for e in t.entries}, key=lambda p: (Path(p).stem, p))
    position = {p: i for i, p in enumerate(paths)}
    state: VideoState | None = None
    for track in tracks:
        first = track.entries[0]
        mask = object_mask(read_mask(first["mask_path"]), track.object_index)
        if state is None:
            state = VideoState(FrameFiles([Path(p) for p in paths]), mask.shape[0], mask.shape[1])
        if not mask.any():
            raise SSMVOSError(f"object {track.object_index} is absent from its first annotation {first['mask_path']}")
        if mask.shape != (state.height, state.width):
            raise SSMVOSError(f"annotation {first['mask_path']} is {mask.shape[1]}×{mask.shape[0]}, "
                              f"other annotations of {track.video} are {state.width}×{state.height}")
        frames = frozenset(position[e["image_path"]] for e in track.entries)
        engine.add_object(state, position[first["image_path"]], track.object_index, mask, frames)
    assert state is not None
    return state


def evaluate_split(entries: list[dict], engine: Engine, save_dir: str | os.PathLike,
                   merged_dir: str | os.PathLike | None = None, merge_mode: str = "soft",
                   progress: bool = True, io_workers: int = 2, shard: tuple[int, int] = (0, 1)) -> EvaluationStats:
    """Run ``engine`` over every video of ``entries``; returns totals.

    ``shard=(rank, world)``: only every world-th video starting at ``rank`` (processes under
    torchrun split the videos this way; each video's outputs come from one process).
    """
    check_files(entries)
    rank, world = shard
    videos = dict(list(videos_of(entries).items())[rank::world])
    save_dir = Path(save_dir)
    stats = EvaluationStats()
    start = time.perf_counter()
    with AsyncWriter(io_workers) as writer:
        for video, tracks in videos.items():
            state = _prepare_video(engine, tracks)
            stats.videos += 1
            stats.objects += len(tracks)
            names = [state.frames.name(i) for i in range(state.num_frames)]
            for d in {t.object_index for t in tracks}:
                (save_dir / video / str(d)).mkdir(parents=True, exist_ok=True)
            done: set[str] = set()
            bar = tqdm(total=state.num_frames, desc=video, unit="frame", disable=not progress, leave=False)
            for result in engine.propagate(state):
                name = names[result.frame_index]
                for obj_id, soft in zip(result.object_ids, result.soft):
                    writer.submit(write_gray_png, save_dir / video / str(obj_id) / f"{name}.png", soft)
                if merged_dir is not None:
                    labels = (merge_frame(result.object_ids, list(result.soft), merge_mode) if result.object_ids
                              else np.zeros((state.height, state.width), np.uint8))
                    writer.submit(write_palette_png, Path(merged_dir) / video / f"{name}.png", labels)
                    done.add(name)
                stats.frames += 1
                stats.object_frames += len(result.object_ids)
                bar.update(1)
            bar.close()
            if merged_dir is not None:
                _fill_background_frames(tracks, state, Path(merged_dir) / video, done, writer)
    stats.seconds = time.perf_counter() - start
    return stats


def _fill_background_frames(tracks: list[ObjectTrack], state: VideoState, out: Path, done: set[str],
                            writer: AsyncWriter) -> None:
    """Merged output covers every frame of the video's image folder (YouTube-VOS: objects
    may start late, and frames before the first object are all background)."""
    folder = Path(tracks[0].entries[0]["image_path"]).parent
    empty = np.zeros((state.height, state.width), np.uint8)
    for frame in list_frames(folder):
        if frame.stem not in done:
            writer.submit(write_palette_png, out / f"{frame.stem}.png", empty)


def write_submission_zip(merged_dir: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip ``<merged_dir>/<video>/<frame>.png`` as ``Annotations/<video>/<frame>.png`` (atomically)."""
    merged_dir, zip_path = Path(merged_dir), Path(zip_path)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for png in sorted(merged_dir.glob("*/*.png")):
                zf.write(png, f"Annotations/{png.parent.name}/{png.name}")
    return zip_path

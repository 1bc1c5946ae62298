"""Segment every object of a split file and write the original's outputs.

Per-object soft masks go to ``<save_dir>/<video>/<object_index>/<frame stem>.png`` exactly
as the original evaluate.py writes them (frame 0 = the annotation); optionally merged label
maps to ``<merged_dir>/<video>/<frame stem>.png`` for every frame the split segments, plus
all-background maps for the frames of the video's image folder that come before its first
segmented frame (YouTube-VOS: objects may start late, and a submission needs every frame
from the first on); frames after the last segmented one (a trimmed split) are not written.
And a zip for submission.

:func:`evaluate` is the whole ``ssmvos evaluate`` run from an :class:`EvaluateConfig`
(model, torchrun sharding, merging, zip, J&F), as ``training.train`` is for training;
:func:`evaluate_split` is its core on an already built :class:`Engine`.
"""
from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import (atomic_path, check_not_input, check_output_file, check_output_folder, is_temporary,
                      make_dirs, remove_temporaries)
from ..data.io import object_mask, read_label_map, write_gray_png, write_palette_png
from ..data.splits import FrameEntry, ObjectTrack, as_entries, check_files, check_video_name, group_tracks
from ..errors import SSMVOSError
from ..io.frames.files import FrameFiles, frame_key, list_frames
from ..pretrained import DEFAULT_INPUT_SIZE
from .engine import Engine, VideoState
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

    @staticmethod
    def total(parts: list["EvaluationStats"]) -> "EvaluationStats":
        """Processes that ran side by side: counts add up, the time is the slowest's."""
        counts = ("videos", "objects", "frames", "object_frames")
        return EvaluationStats(*(sum(getattr(p, f) for p in parts) for f in counts),
                               seconds=max((p.seconds for p in parts), default=0.0))


@dataclass
class EvaluateConfig:
    """Everything an ``ssmvos evaluate`` run depends on (field names follow its flags).

    ``encoder``/``matching``/``keep_topk`` None: what the checkpoint records or implies.
    """

    split: str
    resume: str  # checkpoint path or published model name
    save_dir: str
    input_height: int = DEFAULT_INPUT_SIZE
    input_width: int = DEFAULT_INPUT_SIZE
    fix_margin: float = 0.5
    encoder: str | None = None
    matching: str | None = None
    keep_topk: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False  # the same as backend="compile"
    cuda_graphs: bool = False
    backend: str = "torch"  # torch | compile | onnxruntime (see ssmvos.runtime)
    onnx: str | None = None  # with backend="onnxruntime": an export folder (default: exported into the cache)
    max_batch: int = 16
    num_workers: int = 2  # threads (or processes) writing PNGs
    png_pool: str = "threads"  # threads | processes (see inference.writer)
    merged_dir: str | None = None
    merge_mode: str = "soft"
    zip: str | None = None
    score: bool = False
    score_json: str | None = None
    progress: bool = True


@dataclass
class EvaluateResult:
    """What :func:`evaluate` did: totals over all processes, the device, and what it wrote."""

    stats: EvaluationStats
    processes: int
    device: str
    zip_path: Path | None = None
    scores: dict | None = None  # J&F figures (--score), None if not asked or not scorable
    score_note: str | None = None  # why nothing was scored


def evaluate(config: EvaluateConfig) -> EvaluateResult | None:
    """Run a whole evaluation: one process, or one rank under torchrun (videos are shared out).

    Returns the result on the main process and None on the others. User errors (split,
    checkpoint, sizes) raise SSMVOSError before any output is written.
    """
    import tempfile

    from ..build import build_engine
    from ..data.splits import load_split
    from ..distributed import all_gather_objects, init_process_group, planned_context, raise_if_any_failed, shutdown
    from ..runtime import RuntimeSpec

    ctx = planned_context(config.device)
    if ctx.world_size > 1 and (config.zip or config.score) and not config.merged_dir:
        raise SSMVOSError("under torchrun, --zip and --score need --merged-dir (one folder all processes write)")
    spec = RuntimeSpec.of(config.backend, config.compile, device=ctx.device, precision=config.precision,
                          cuda_graphs=config.cuda_graphs, onnx=config.onnx)
    entries = load_split(config.split)
    _check_outputs(config)
    engine = build_engine(config.resume, (config.input_height, config.input_width), spec, encoder=config.encoder,
                          matching=config.matching, keep_topk=config.keep_topk,
                          size_source="--input-size / --input-height / --input-width / --keep-topk",
                          margin=config.fix_margin, max_batch=config.max_batch)
    init_process_group(ctx)
    try:
        with tempfile.TemporaryDirectory(prefix="ssmvos-merged-") as tmp:
            merged = config.merged_dir or (tmp if (config.zip or config.score) else None)
            error, stats = None, EvaluationStats()
            try:
                stats = evaluate_split(entries, engine, config.save_dir, merged, config.merge_mode,
                                       progress=config.progress and ctx.is_main, io_workers=config.num_workers,
                                       shard=(ctx.rank, ctx.world_size), png_pool=config.png_pool)
            except SSMVOSError as exc:
                if ctx.world_size == 1:
                    raise
                error = f"rank {ctx.rank}: {exc}"
            raise_if_any_failed(ctx, error)
            parts = all_gather_objects(ctx, stats)  # every rank has finished writing here
            if not ctx.is_main:
                return None
            result = EvaluateResult(EvaluationStats.total(parts), ctx.world_size, engine.device.type)
            if config.zip:
                result.zip_path = write_submission_zip(merged, config.zip)
            if config.score:
                result.scores, result.score_note = _score(entries, merged, config.split)
                if result.scores is not None and config.score_json:
                    from ..scoring.report import write_json

                    write_json(result.scores, config.score_json)
            return result
    finally:
        shutdown()


def _check_outputs(config: EvaluateConfig) -> None:
    """Every output path can be written: checked before the model is loaded or any work done."""
    check_output_folder(config.save_dir, "--save-dir")
    if config.merged_dir:
        check_output_folder(config.merged_dir, "--merged-dir")
    if config.zip:
        check_output_file(config.zip, "--zip")
    if config.score and config.score_json:
        check_output_file(config.score_json, "--score-json", folder_must_exist=True)


def _score(entries: list[FrameEntry], merged: str, split_file: str) -> tuple[dict | None, str | None]:
    """J&F of the merged results against the split's annotations, with the rules the dataset
    registry gives for this split. Only the frames the split holds are scored (see
    :func:`_annotations_of_split`)."""
    import tempfile

    from ..data.datasets import split_score_format
    from ..scoring.score import score_folder, split_annotations

    found = split_annotations(entries)
    if found is None:
        return None, "this split has no per-frame annotations (test set); nothing to score"
    annotations, videos = found
    fmt = split_score_format(split_file, entries, annotations)
    with tempfile.TemporaryDirectory(prefix="ssmvos-annotations-") as view:
        annotations = _annotations_of_split(entries, annotations, videos, Path(view))
        return score_folder(annotations, merged, fmt=fmt, sequences=videos), None


def _annotations_of_split(entries: list[FrameEntry], annotations: Path, videos: list[str], view: Path) -> Path:
    """``annotations`` itself when the split holds every annotation frame of its videos; else
    ``view``, a folder of links to the annotations of the split's frames only, so that a
    trimmed split is scored on what it segmented (first and last of those left out)."""
    held: dict[str, set[Path]] = {}
    for e in entries:
        held.setdefault(e.video_name, set()).add(Path(e.mask_path))
    if all({p.name for p in (annotations / v).glob("*.png")} == {m.name for m in held[v]} for v in videos):
        return annotations
    for video in videos:
        make_dirs(view / video)
        for mask in held[video]:
            (view / video / mask.name).symlink_to(mask.resolve())
    return view


def videos_of(entries: list[FrameEntry], source: str = "split") -> dict[str, list[ObjectTrack]]:
    """Object tracks grouped by video, in the split's order (mappings are checked and converted)."""
    out: dict[str, list[ObjectTrack]] = {}
    for track in group_tracks(as_entries(entries, source), source):
        out.setdefault(track.video, []).append(track)
    return out


def _prepare_video(engine: Engine, tracks: list[ObjectTrack]) -> VideoState:
    paths = sorted({e.image_path for t in tracks for e in t.entries}, key=lambda p: (frame_key(Path(p).stem), p))
    position = {p: i for i, p in enumerate(paths)}
    state: VideoState | None = None
    for track in tracks:
        first = track.entries[0]
        mask = object_mask(read_label_map(first.mask_path, "annotation"), track.object_index)
        if state is None:
            state = VideoState(FrameFiles([Path(p) for p in paths]), mask.shape[0], mask.shape[1])
            frame = state.frames.get(position[first.image_path])  # the size of the video is its frames'
            if frame.shape[:2] != mask.shape:
                raise SSMVOSError(f"annotation {first.mask_path} is {mask.shape[1]}×{mask.shape[0]}, but its frame "
                                  f"{first.image_path} is {frame.shape[1]}×{frame.shape[0]}")
        if not mask.any():
            raise SSMVOSError(f"object {track.object_index} is absent from its first annotation {first.mask_path}")
        if mask.shape != (state.height, state.width):
            raise SSMVOSError(f"annotation {first.mask_path} is {mask.shape[1]}×{mask.shape[0]}, "
                              f"other annotations of {track.video} are {state.width}×{state.height}")
        frames = frozenset(position[e.image_path] for e in track.entries)
        engine.add_object(state, position[first.image_path], track.object_index, mask, frames)
    assert state is not None
    return state


def evaluate_split(entries: list[FrameEntry], engine: Engine, save_dir: str | os.PathLike,
                   merged_dir: str | os.PathLike | None = None, merge_mode: str = "soft",
                   progress: bool = True, io_workers: int = 2, shard: tuple[int, int] = (0, 1),
                   png_pool: str = "threads") -> EvaluationStats:
    """Run ``engine`` over every video of ``entries``; returns totals.

    PNGs are encoded and written by ``io_workers`` threads or processes (``png_pool``, see
    :class:`~.writer.AsyncWriter`); the files are the same either way.

    ``shard=(rank, world)``: only every world-th video starting at ``rank`` (processes under
    torchrun split the videos this way; each video's outputs come from one process).
    """
    entries = as_entries(entries)
    check_files(entries)
    rank, world = shard
    videos = dict(list(videos_of(entries).items())[rank::world])
    save_dir = Path(save_dir)
    for video, tracks in videos.items():  # before any output: none may land on what is read
        check_video_name(video, "the split")
        first = tracks[0].entries[0]
        inputs = {f"the annotation folder of {video}": Path(first.mask_path).parent,
                  f"the frame folder of {video}": Path(first.image_path).parent}
        if merged_dir is not None:
            check_not_input(Path(merged_dir) / video, f"the merged masks' folder of {video}", inputs)
        for track in tracks:
            check_not_input(save_dir / video / str(track.object_index), f"the soft masks' folder of {video}", inputs)
    stats = EvaluationStats()
    start = time.perf_counter()
    with AsyncWriter(io_workers, pool=png_pool) as writer:
        for video, tracks in videos.items():
            state = _prepare_video(engine, tracks)
            stats.videos += 1
            stats.objects += len(tracks)
            names = [state.frames.name(i) for i in range(state.num_frames)]
            for d in {t.object_index for t in tracks}:
                remove_temporaries(make_dirs(save_dir / video / str(d)))  # left by a killed run
            if merged_dir is not None:
                remove_temporaries(Path(merged_dir) / video)
            done: set[str] = set()
            bar = tqdm(total=state.num_frames, desc=video, unit="frame", disable=not progress, leave=False)
            # the engine merges (where the network runs, with device geometry): uint8 maps only reach the host
            for result in engine.propagate(state, merge=merge_mode if merged_dir is not None else None):
                name = names[result.frame_index]
                for obj_id, soft in zip(result.object_ids, result.soft):
                    writer.submit(write_gray_png, save_dir / video / str(obj_id) / f"{name}.png", soft)
                if merged_dir is not None:
                    writer.submit(write_palette_png, Path(merged_dir) / video / f"{name}.png", result.labels)
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
    """All-background label maps for the frames of the video's image folder that come before
    its first segmented frame (YouTube-VOS: objects may start late, and a submission covers
    every frame from the first on). Frames after the last segmented one are left out: a
    trimmed split merges only what it segmented."""
    folder = Path(tracks[0].entries[0].image_path).parent
    first = min(frame_key(Path(e.image_path).stem) for t in tracks for e in t.entries)
    empty = np.zeros((state.height, state.width), np.uint8)
    for frame in list_frames(folder):
        if frame_key(frame.stem) >= first:
            break
        if frame.stem not in done:
            writer.submit(write_palette_png, out / f"{frame.stem}.png", empty)


def write_submission_zip(merged_dir: str | os.PathLike, zip_path: str | os.PathLike) -> Path:
    """Zip ``<merged_dir>/<video>/<frame>.png`` as ``Annotations/<video>/<frame>.png`` (atomically)."""
    merged_dir, zip_path = Path(merged_dir), Path(zip_path)
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for png in sorted(p for p in merged_dir.glob("*/*.png") if not is_temporary(p.name)):
                zf.write(png, f"Annotations/{png.parent.name}/{png.name}")
    return zip_path

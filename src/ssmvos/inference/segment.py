"""Segmenting a user's own clip from a first-frame mask of one or more objects."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import check_output_file, check_output_folder, make_dirs, remove_temporaries
from ..data.io import read_label_map, write_palette_png
from ..errors import SSMVOSError
from .merge import merge_frame
from .overlay import OverlayWriter, blend
from .predictor import VideoPredictor
from .writer import AsyncWriter


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
    frames: int
    objects: int
    seconds: float


def segment_video(predictor: VideoPredictor, video: str | os.PathLike, mask_path: str | os.PathLike,
                  out_dir: str | os.PathLike, overlay: str | os.PathLike | None = None,
                  progress: bool = True) -> SegmentStats:
    """Segment the objects of ``mask_path`` (first frame) through ``video``.

    Writes ``<out_dir>/<frame name>.png`` palette label maps at the video's resolution and,
    if asked, an overlay mp4. Inputs are checked before any output is written.
    """
    out_dir = Path(out_dir)
    state = predictor.init_state(video)
    labels = read_label_map(mask_path)
    if labels.shape != (state.height, state.width):
        raise SSMVOSError(f"the mask {mask_path} is {labels.shape[1]}×{labels.shape[0]} but the frames are "
                          f"{state.width}×{state.height}")
    objects = objects_in_mask(labels, str(mask_path))
    check_writable(out_dir)
    remove_temporaries(out_dir)  # left by a killed run
    if overlay is not None:
        check_output_file(overlay, "overlay")
        check_writable(Path(overlay).parent)
    for obj_id, mask in objects.items():
        predictor.add_new_mask(state, 0, obj_id, mask)
    fps = state.frames.fps or 24.0  # frame folders carry no frame rate
    writer = OverlayWriter(overlay, state.width, state.height, fps) if overlay is not None else None
    start = time.perf_counter()
    frames = 0
    try:
        with AsyncWriter() as pngs:
            bar = tqdm(total=state.num_frames, unit="frame", desc="segment", disable=not progress)
            for result in predictor.engine.propagate(state):
                merged = merge_frame(result.object_ids, list(result.soft))
                pngs.submit(write_palette_png, out_dir / f"{state.frames.name(result.frame_index)}.png", merged)
                if writer is not None:
                    writer.write(blend(result.image, merged))
                frames += 1
                bar.update(1)
            bar.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return SegmentStats(frames, len(objects), time.perf_counter() - start)


def demo_clip() -> tuple[Path, Path]:
    """(frame folder, first-frame mask) of the DAVIS 2016 clip bundled with the package."""
    root = Path(__file__).resolve().parents[1] / "assets" / "demo"
    frames, mask = root / "frames", root / "mask.png"
    if not frames.is_dir() or not mask.is_file():
        raise SSMVOSError(f"the bundled demo clip is missing from {root} (reinstall ssmvos)")
    return frames, mask

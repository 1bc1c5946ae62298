"""Soft-mask quantisation and merging per-object soft masks into one label map per frame (the
original merge_masks), each with a numpy and a torch implementation that give the same bits.

Quantisation: a foreground probability p (float32) is written as the uint8 level
``int(p * 255)`` (the product in float32, truncated), as the original's
``(pred * 255).astype(np.uint8)``: :func:`quantize` (numpy) and :func:`quantize_tensor`
(torch, on any device, so that only uint8 levels travel to the host).

Merging: for one frame, p_i = soft mask of object i / 255. Background score: Π(1 − p_i) ('soft')
or min(1 − p_i) ('hard'); label = argmax over [background, p_1, …], mapped to the ids.

Ties: background wins its ties; between objects the HIGHER id wins. The original took
objects in directory-listing order, which on the machine that produced the reference
outputs was reverse creation order (objects are written in ascending id order), so the
higher id came first; this rule reproduces those outputs deterministically.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..atomic import check_output_folder, is_temporary, remove_temporaries
from ..io.labels import read_label_map, write_label_png as write_palette_png
from ..errors import SSMVOSError
from ..io.frames.files import frame_key
from ..numbers import is_number

if TYPE_CHECKING:  # torch is imported where a tensor is merged: `ssmvos merge` starts without it
    import torch

MODES = ("soft", "hard")


#: p = level / 255 and 1 − p for every uint8 level, in float32: the per-pixel formula's values,
#: looked up instead of recomputed for each pixel
_P = np.arange(256, dtype=np.float32) / np.float32(255)
_ONE_MINUS_P = np.float32(1) - _P
#: one object: its score p beats the background's 1·(1 − p) (both rules) exactly at these levels
_ALONE_WINS = _P > _ONE_MINUS_P


def quantize(probs: np.ndarray) -> np.ndarray:
    """Foreground probabilities (any shape, float32 in [0, 1]) -> uint8 levels ``int(p·255)``."""
    return (np.asarray(probs, dtype=np.float32) * np.float32(255)).astype(np.uint8)


def quantize_tensor(probs: torch.Tensor) -> torch.Tensor:
    """:func:`quantize` on a float32 tensor where it lies: the same levels, bit for bit (an
    IEEE float32 product, then truncation towards zero)."""
    import torch

    return (probs.float() * 255).to(torch.uint8)


def _levels(mask: np.ndarray, table: np.ndarray) -> np.ndarray:
    if mask.dtype == np.uint8:
        return table[mask]
    p = mask.astype(np.float32) / 255  # not uint8: the formula itself
    return p if table is _P else 1 - p


def merge_frame(object_ids: Sequence[int], soft_masks: Sequence[np.ndarray], mode: str = "soft") -> np.ndarray:
    """Merge H×W uint8 soft masks (0..255) of ``object_ids`` into H×W uint8 labels.

    With no objects the result is all background; ``soft_masks`` must share one size.
    """
    if mode not in MODES:
        raise ValueError(f"merge mode must be one of {MODES}, not {mode!r}")
    if not soft_masks:
        raise ValueError("merge_frame needs at least one mask (or use np.zeros for an empty frame)")
    if any(not 0 <= i <= 255 for i in object_ids):
        raise SSMVOSError(f"object ids must lie in 0..255 to be written as labels: {list(object_ids)}")
    shape = soft_masks[0].shape
    for mask in soft_masks:
        if mask.shape != shape:
            raise SSMVOSError(f"soft masks of one frame differ in size: {mask.shape} vs {shape}")
    if len(soft_masks) == 1 and soft_masks[0].dtype == np.uint8:
        return np.where(_ALONE_WINS[soft_masks[0]], np.uint8(object_ids[0]), np.uint8(0))
    order = sorted(range(len(object_ids)), key=lambda i: -object_ids[i])  # higher id first
    background = np.ones(shape, dtype=np.float32)
    for i in order:
        if mode == "soft":
            background *= _levels(soft_masks[i], _ONE_MINUS_P)
        else:
            np.minimum(background, _levels(soft_masks[i], _ONE_MINUS_P), out=background)
    # argmax over [background, p_1, ...] with the first maximum winning: a later row takes a
    # pixel only when strictly greater than every earlier one
    labels = np.zeros(shape, dtype=np.uint8)
    best = background
    for i in order:
        p = _levels(soft_masks[i], _P)
        labels[p > best] = object_ids[i]
        np.maximum(best, p, out=best)
    return labels


def merge_frame_tensor(object_ids: Sequence[int], soft_masks: torch.Tensor, mode: str = "soft") -> torch.Tensor:
    """:func:`merge_frame` on an N×H×W uint8 tensor of soft masks (rows in ``object_ids``'
    order) where it lies: H×W uint8 labels, equal bit for bit to the numpy result (the same
    float32 level tables, products in the same order, the same tie rules)."""
    import torch

    if mode not in MODES:
        raise ValueError(f"merge mode must be one of {MODES}, not {mode!r}")
    if soft_masks.dtype != torch.uint8 or soft_masks.dim() != 3 or soft_masks.shape[0] != len(object_ids):
        raise ValueError(f"merge_frame_tensor needs an N×H×W uint8 tensor with one row per id, not "
                         f"{tuple(soft_masks.shape)} {soft_masks.dtype} for {len(object_ids)} ids")
    if not object_ids:
        raise ValueError("merge_frame_tensor needs at least one mask")
    if any(not 0 <= i <= 255 for i in object_ids):
        raise SSMVOSError(f"object ids must lie in 0..255 to be written as labels: {list(object_ids)}")
    device = soft_masks.device
    table_p = torch.from_numpy(_P).to(device)
    table_q = torch.from_numpy(_ONE_MINUS_P).to(device)
    levels = soft_masks.long()
    order = sorted(range(len(object_ids)), key=lambda i: -object_ids[i])  # higher id first
    background = torch.ones(soft_masks.shape[1:], dtype=torch.float32, device=device)
    for i in order:
        q = table_q[levels[i]]
        background = background * q if mode == "soft" else torch.minimum(background, q)
    labels = torch.zeros(soft_masks.shape[1:], dtype=torch.uint8, device=device)
    best = background
    for i in order:
        p = table_p[levels[i]]
        labels = torch.where(p > best, torch.tensor(object_ids[i], dtype=torch.uint8, device=device), labels)
        best = torch.maximum(best, p)
    return labels


def _object_dirs(video_dir: Path) -> list[tuple[int, Path]]:
    dirs = []
    for d in video_dir.iterdir():
        if not d.is_dir():
            continue
        if not is_number(d.name):
            raise SSMVOSError(f"{d} is not an object folder (object folders are named by their numeric id)")
        dirs.append((int(d.name), d))
    return sorted(dirs)


def merge_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, mode: str = "soft",
                 progress: bool = True) -> int:
    """Merge ``<in_dir>/<video>/<object>/<frame>.png`` into ``<out_dir>/<video>/<frame>.png``.

    An object without a mask file for a frame is left out of that frame; temporary files a
    killed writer left are skipped (and removed from the output). Returns the number of
    frames written.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise SSMVOSError(f"input folder not found: {in_dir}")
    videos = sorted(d for d in in_dir.iterdir() if d.is_dir())
    if not videos:
        raise SSMVOSError(f"no video folders in {in_dir}")
    if out_dir.resolve() == in_dir.resolve():
        raise SSMVOSError("the output folder must differ from the input folder")
    check_output_folder(out_dir, "output folder")
    written = 0
    for video_dir in tqdm(videos, desc="merge", unit="video", disable=not progress):
        objects = _object_dirs(video_dir)
        names = sorted({p.name for _, d in objects for p in d.glob("*.png") if not is_temporary(p.name)}, key=frame_key)
        remove_temporaries(out_dir / video_dir.name)
        size, first = None, ""  # every mask of a video has its first mask's size (checked from each header)
        for name in names:
            ids, masks = [], []
            for obj_id, d in objects:
                path = d / name
                if path.is_file():
                    ids.append(obj_id)
                    masks.append(read_label_map(path, "soft mask", lossy_check=False, size=size,  # 0..255
                                                size_of=f"the first of {video_dir.name} ({first})"))
                    if size is None:
                        size, first = masks[-1].shape, f"{obj_id}/{name}"
            try:
                labels = merge_frame(ids, masks, mode)
            except SSMVOSError as exc:
                raise SSMVOSError(f"{video_dir.name}/{name}: {exc}") from None
            write_palette_png(out_dir / video_dir.name / name, labels)
            written += 1
    return written

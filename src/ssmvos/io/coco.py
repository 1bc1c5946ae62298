"""COCO-style run-length encoding of masks, as pycocotools writes it.

The exported file (``ssmvos batch --format coco``, the app's export)::

    {"videos": [{"name", "height", "width",
                 "frames": [{"frame": i, "objects": {"<id>": {"size": [h, w], "counts": "..."}}}]}]}

``counts`` is COCO's compressed RLE string: run lengths over the mask read column by column
(Fortran order), starting with a run of zeros; each run, from the third on, is stored as its
difference from the run two before, in 5-bit groups (a 0x20 continuation bit, the last
group's 0x10 bit the sign), each group offset by 48 into printable ASCII. So
``pycocotools.mask.decode({"size": [h, w], "counts": counts})`` returns the mask.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np

from ..atomic import write_json_atomic
from ..errors import SSMVOSError


def run_lengths(mask: np.ndarray) -> list[int]:
    """Runs of a H×W boolean mask in column-major order, the first a run of zeros (maybe 0)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return [0]
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(edges).tolist()
    return [0, *runs] if flat[0] else runs


def encode_counts(runs: list[int]) -> str:
    """COCO's compressed string for a list of run lengths."""
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        while True:
            group = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences keep their sign
            more = x != -1 if group & 0x10 else x != 0
            out.append(chr(group + (0x20 if more else 0) + 48))
            if not more:
                break
    return "".join(out)


def decode_counts(counts: str) -> list[int]:
    """The run lengths a compressed COCO string holds (the inverse of :func:`encode_counts`)."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        x, shift = 0, 0
        while True:
            if pos >= len(counts):
                raise SSMVOSError("a COCO RLE string ends in the middle of a number")
            group = ord(counts[pos]) - 48
            if not 0 <= group < 64:
                raise SSMVOSError(f"a COCO RLE string holds {counts[pos]!r}, which is not in its alphabet")
            pos += 1
            x |= (group & 0x1F) << shift
            shift += 5
            if not group & 0x20:
                if group & 0x10:
                    x |= -1 << shift
                break
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def encode_mask(mask: np.ndarray) -> dict:
    """``{"size": [h, w], "counts": str}`` for a H×W mask (nonzero = the object)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask to encode must be H x W, not of shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": encode_counts(run_lengths(mask))}


def decode_mask(rle: Mapping) -> np.ndarray:
    """The H×W uint8 {0, 1} mask of an encoded object."""
    h, w = (int(v) for v in rle["size"])
    runs = decode_counts(rle["counts"])
    if sum(runs) != h * w:
        raise SSMVOSError(f"a COCO RLE of size {h}x{w} covers {sum(runs)} pixels, not {h * w}")
    values = np.zeros(len(runs), dtype=np.uint8)
    values[1::2] = 1
    return np.repeat(values, runs).reshape((h, w), order="F")


def video_entry(name: str, height: int, width: int, frames: Iterable[tuple[int, np.ndarray]]) -> dict:
    """One video of the file: ``frames`` yields (frame index, H×W label map); every object
    id present in a label map (nonzero, not 255: DAVIS's void) gets an RLE."""
    entries = []
    for index, labels in frames:
        labels = np.asarray(labels)
        ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]
        entries.append({"frame": int(index), "objects": {str(i): encode_mask(labels == i) for i in ids}})
    return {"name": name, "height": int(height), "width": int(width), "frames": entries}


def write_coco_json(path: str | os.PathLike, videos: list[dict]) -> None:
    """Write the file atomically (a failed write leaves no half file)."""
    write_json_atomic(path, {"videos": videos}, indent=None)

"""Label-map PNGs in, object ids out: what the scorers read and how ids are found.

Reading is separate from the metrics (:mod:`.metrics` and :mod:`.generic` work on arrays).
Every problem a user can cause raises SSMVOSError naming the file.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import SSMVOSError
from ..io.frames.files import frame_key
from ..io.labels import decode_label_values

def read_label_png(path: Path) -> np.ndarray:
    """The (H, W) integer label map of an indexed (palette) or grayscale PNG, by
    :mod:`ssmvos.io.labels`' rules (palette indices, never colours; a 1-bit PNG as 0/1; a
    16-bit map as uint16 when it holds ids above 255; a grey RGB image as L; colour and JPEG
    refused). Unfiltered 8-bit palette PNGs and 8-bit grayscale ones take a fast path.
    Raises SSMVOSError naming the file when it is missing, unreadable or not a label map.
    """
    return decode_label_values(path, "PNG")


def annotation_frames(folder: Path) -> list[str]:
    """File names of the PNGs in ``folder`` in frame order (:func:`~ssmvos.io.frames.files.frame_key`;
    the order every scorer uses); hidden files (macOS's ``._00000.png``) are left out."""
    return sorted((p.name for p in folder.iterdir() if p.suffix == ".png" and not p.name.startswith(".")),
                  key=frame_key)


def label_ids(labels: np.ndarray) -> list[int]:
    """The nonzero values that occur in a label map (H, W), ascending."""
    labels = np.asarray(labels)
    if labels.dtype == np.uint8:
        counts = cv2.calcHist([labels], [0], None, [256], [0, 256]).ravel()
        values = np.flatnonzero(counts)
    else:
        values = np.unique(labels)
    return [int(v) for v in values if v != 0]


def unknown_lut(known: set[int]) -> np.ndarray:
    """A 256-entry uint8 table, 1 for the values of a uint8 label map that are not in ``known``
    (0 counts as known): ``cv2.LUT(labels, table).any()`` says whether a map holds a new id."""
    table = np.ones(256, np.uint8)
    table[[0, *(k for k in known if 0 <= k < 256)]] = 0
    return table


def new_ids(labels: np.ndarray, known: set[int], table: np.ndarray) -> list[int]:
    """The nonzero ids of ``labels`` (H, W) that are not in ``known``, ascending.

    ``table`` is :func:`unknown_lut` of ``known``: for uint8 maps one table lookup (~0.2 ms
    at 854x480) rules out new ids, and only a map that has some is counted in full.
    """
    if labels.dtype == np.uint8 and not cv2.LUT(labels, table).any():
        return []
    return [k for k in label_ids(labels) if k not in known]


def result_png(results: Path, frame: str, annotation: Path, shape: tuple[int, int]) -> np.ndarray:
    """The result label map ``results/frame`` for the annotation ``annotation`` of ``shape`` (H, W).

    Raises SSMVOSError naming both files when the result is missing or of another size.
    """
    path = results / frame
    if not path.is_file():
        raise SSMVOSError(f"missing result frame {path} (annotated in {annotation})")
    pred = read_label_png(path)
    if pred.shape != shape:
        raise SSMVOSError(f"result {path} is {pred.shape[1]}x{pred.shape[0]} but its annotation "
                          f"{annotation} is {shape[1]}x{shape[0]}")
    return pred


__all__ = ["read_label_png", "annotation_frames", "label_ids", "unknown_lut", "new_ids", "result_png"]

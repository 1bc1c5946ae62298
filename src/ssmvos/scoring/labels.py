"""Label-map PNGs in, object ids out: what the scorers read and how ids are found.

Reading is separate from the metrics (:mod:`.metrics` and :mod:`.generic` work on arrays).
Every problem a user can cause raises SSMVOSError naming the file.
"""
from __future__ import annotations

import io
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import SSMVOSError
from ..io.frames.files import frame_key

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unfiltered_palette_png(data: bytes) -> np.ndarray | None:
    """The (H, W) uint8 indices of an 8-bit, non-interlaced palette PNG whose rows all use
    filter type 0 (what Pillow writes for palette images), or None for any other PNG.

    Such a file needs no unfiltering: its pixels are the inflated data minus one filter byte
    per row (about twice as fast as Pillow at 854x480).
    """
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[24:29] != bytes((8, 3, 0, 0, 0)):  # bit depth 8, palette, deflate, filtering 0, no interlace
        return None
    chunks, pos = [], 8
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            chunks.append(data[pos + 8:pos + 8 + size])
        elif kind == b"IEND":
            break
        pos += 12 + size
    try:
        raw = zlib.decompress(b"".join(chunks))
    except zlib.error:
        return None  # Pillow names the problem
    if len(raw) != height * (width + 1):
        return None
    rows = np.frombuffer(raw, np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():
        return None  # some row is filtered
    return np.ascontiguousarray(rows[:, 1:])


def read_label_png(path: Path) -> np.ndarray:
    """The (H, W) integer label map of an indexed (palette) or grayscale PNG.

    Palette PNGs give their palette indices (never colours). Unfiltered 8-bit palette PNGs
    are decoded directly, 8-bit grayscale ones by OpenCV (both faster, same values), the
    rest by Pillow (1-bit PNGs as uint8 0/1, 16-bit as uint16). Raises SSMVOSError naming
    the file when it is missing, unreadable or not single-channel.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SSMVOSError(f"missing PNG {path}") from None
    except OSError as exc:
        raise SSMVOSError(f"cannot read {path}: {exc.strerror or exc}") from None
    array = _unfiltered_palette_png(data)
    # IHDR: bit depth at byte 24, colour type at byte 25 (0 = grayscale, 3 = palette).
    if array is None and len(data) > 26 and data[:8] == _PNG_SIGNATURE and data[24] == 8 and data[25] == 0:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    raise SSMVOSError(f"{path} is not a PNG (it is {image.format})")
                array = np.array(image)
        except SSMVOSError:
            raise
        except Exception as exc:  # PIL raises many types for damaged files
            raise SSMVOSError(f"cannot read PNG {path}: {exc}") from None
    if array.ndim != 2:
        raise SSMVOSError(f"{path} is not an indexed or grayscale PNG (it has {array.shape[2]} channels); "
                          "label maps must hold one object id per pixel")
    if array.dtype == bool:
        array = array.astype(np.uint8)  # Pillow keeps 1-bit pixels as 0/255 bytes behind a bool view
    return array


def annotation_frames(folder: Path) -> list[str]:
    """File names of the PNGs in ``folder`` in frame order (:func:`~ssmvos.io.frames.files.frame_key`;
    the order every scorer uses)."""
    return sorted((p.name for p in folder.iterdir() if p.suffix == ".png"), key=frame_key)


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

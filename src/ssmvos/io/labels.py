"""Label-map PNGs, read and written: the one reader and the one writer of every command.

The rules (docs/design.md, "Label maps"), from a path or from bytes:

* palette (P) or grayscale (L, I;16, I) pixel values are object ids; a palette image gives
  its indices, never its colours;
* a 1-bit image is one object, id 1; so is a two-valued image of only 0 and 255 (a binary
  mask, :func:`object_labels`); beside other ids, 255 is DAVIS's void;
* an RGB or RGBA image is refused unless every pixel is grey (R = G = B), which is then read
  as L; the error says how to make a label map from a colour image;
* a JPEG, or a map with many rare scattered ids (what lossy compression leaves at the
  edges of a 0/255 mask), is refused, saying how to fix it.

Dataset annotations keep their values as ids (:func:`read_label_map`): DAVIS 2016's object
is its label 255, as the original index and evaluation have it; a user's mask
(``segment --mask``, ``--session``, the app's import) goes through :func:`read_object_labels`,
where a binary 0/255 mask is object 1. Writing is atomic (:mod:`ssmvos.atomic`).
"""
from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path
from ..errors import SSMVOSError
from .reading import read_user_file

#: DAVIS's "void" label (outlines and unclear pixels in DAVIS 2017 annotations).
VOID_LABEL = 255
#: More labels than this that look like compression artefacts make a mask "lossy".
LOSSY_LABELS = 4
#: A label covering less than this fraction of the pixels counts as rare.
RARE_FRACTION = 0.01
#: Label maps larger than this many pixels are refused before decoding (a decompression bomb).
MAX_PIXELS = 2**27

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_HOW_TO_MAKE = ("save it as a palette or grayscale PNG whose values are object ids (0 = background, 1, 2, ... "
                "one per colour; for one object: labels = (rgb.max(axis=2) > 0).astype('uint8'))")

def _davis_palette() -> bytes:
    """The DAVIS/PASCAL VOC colour map: label bits interleaved into the high bits of R, G, B."""
    out = bytearray()
    for label in range(256):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        out += bytes((r, g, b))
    return bytes(out)


#: 256 RGB triples (768 bytes): the palette every label map is written with.
DAVIS_PALETTE: bytes = _davis_palette()


@dataclass(frozen=True)
class LabelMap:
    """A label map already decoded (H×W uint8 object ids) and what it came from, for errors
    ("session file s.json, mask of frame 3")."""

    labels: np.ndarray
    source: str


# --------------------------------------------------------------------------- decoding
def _name(what: str, path: Path | None) -> str:
    return f"{what} {path}" if path is not None else what


def _load(source: str | os.PathLike | bytes, what: str) -> tuple[bytes, Path | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    path = Path(source)
    return read_user_file(path, what, "a PNG file"), path


def _unfiltered_palette_png(data: bytes) -> np.ndarray | None:
    """The (H, W) uint8 indices of an 8-bit, non-interlaced palette PNG whose rows all use
    filter type 0 (what Pillow writes for palette images), or None for any other PNG.

    Such a file needs no unfiltering: its pixels are the inflated data minus one filter byte
    per row (about twice as fast as Pillow at 854x480; scoring reads thousands of them).
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


def _gray8_png(data: bytes) -> np.ndarray | None:
    """An 8-bit grayscale PNG decoded by OpenCV (faster than Pillow, the same values), or None."""
    # IHDR: bit depth at byte 24, colour type at byte 25 (0 = grayscale)
    if len(data) > 26 and data[:8] == _PNG_SIGNATURE and data[24] == 8 and data[25] == 0:
        import cv2

        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if array is not None and array.ndim == 2 and array.dtype == np.uint8:
            return array
    return None


def _narrow(values: np.ndarray, name: str) -> np.ndarray:
    """Integer values -> uint8 when they fit, else uint16/int32; negative values refused."""
    if values.size == 0:
        return values.astype(np.uint8)
    low, high = int(values.min()), int(values.max())
    if low < 0:
        raise SSMVOSError(f"{name} has negative values ({low}): object ids are 0, 1, 2, ...")
    for dtype in (np.uint8, np.uint16):
        if high <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int32)


def _from_pillow(image: Image.Image, name: str) -> np.ndarray:
    mode = image.mode
    if mode == "1":
        return np.asarray(image).astype(np.uint8)  # one object, id 1
    if mode in ("P", "L"):
        return np.array(image, dtype=np.uint8)  # a writable array of its own
    if mode in ("PA", "LA"):
        return np.ascontiguousarray(np.asarray(image)[:, :, 0], dtype=np.uint8)  # alpha ignored
    if mode.startswith("I"):  # I, I;16, I;16B, I;16L: 16- and 32-bit grayscale
        return _narrow(np.asarray(image), name)
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image)[:, :, :3]
        if not ((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 0] == rgb[:, :, 2]).all()):
            raise SSMVOSError(f"{name} is a colour ({mode}) image, not a label map (not an indexed or grayscale "
                              f"PNG): {_HOW_TO_MAKE}")
        return np.ascontiguousarray(rgb[:, :, 0])
    raise SSMVOSError(f"{name} is a {mode} image, not a label map (not an indexed or grayscale PNG): {_HOW_TO_MAKE}")


def _check_size(name: str, width: int, height: int, size: tuple[int, int] | None, size_of: str) -> None:
    if size is not None and (height, width) != tuple(size):
        raise SSMVOSError(f"{name} is {width}x{height}, but {size_of} is {size[1]}x{size[0]}")


def decode_label_values(source: str | os.PathLike | bytes, what: str = "mask", *,
                        size: tuple[int, int] | None = None, size_of: str = "the video") -> np.ndarray:
    """The H×W pixel values of a label-map image (a path, or the file's bytes), by the module's
    rules: palette indices or gray levels (uint8; uint16/int32 when a 16/32-bit map holds
    values above 255), a 1-bit image as 0/1, a grey RGB(A) image as L.

    ``size`` (H, W): the size the map must have, checked from the file's header before any
    pixel is decoded (a small file can inflate to gigabytes); the error names ``size_of``.
    Raises SSMVOSError naming ``what`` (and the path) for a missing, unreadable, JPEG or
    colour image. No check for lossy artefacts and no 0/255 rule: see :func:`read_label_map`.
    """
    data, path = _load(source, what)
    name = _name(what, path)
    if data[:3] == _JPEG_SIGNATURE:
        raise SSMVOSError(f"{name} is a JPEG: lossy compression changes label values at every edge; save it as a "
                          "PNG (palette or grayscale) from its source")
    if len(data) >= 24 and data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if width * height > MAX_PIXELS:
            raise SSMVOSError(f"{name} is {width}x{height} pixels, more than a label map of any video "
                              f"({MAX_PIXELS} pixels at most)")
        _check_size(name, width, height, size, size_of)
    array = _unfiltered_palette_png(data)
    if array is None:
        array = _gray8_png(data)
    if array is not None:
        return array
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_size(name, image.width, image.height, size, size_of)  # from the header: nothing decoded yet
            image.load()
            if image.format == "JPEG":
                raise SSMVOSError(f"{name} is a JPEG: lossy compression changes label values at every edge; save it "
                                  "as a PNG (palette or grayscale) from its source")
            return _from_pillow(image, name)
    except SSMVOSError:
        raise
    except UnidentifiedImageError:
        raise SSMVOSError(f"cannot read {name}: it is not a readable PNG (not an image file Pillow knows)") from None
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as exc:
        raise SSMVOSError(f"cannot read {name}: it is not a readable PNG ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged files
        raise SSMVOSError(f"cannot read {name}: it is not a readable PNG ({type(exc).__name__})") from None


def artefact_labels(labels: np.ndarray) -> list[int]:
    """Nonzero labels of an H×W uint8 map that look like lossy-compression artefacts: rare
    (under RARE_FRACTION of the pixels) and scattered (some of their pixels touch no pixel of
    the same label). The regions of a real label map, however small, are solid."""
    counts = np.bincount(labels.ravel(), minlength=256)
    present = np.flatnonzero(counts[1:]) + 1
    if len(present) <= LOSSY_LABELS:
        return []
    touching = np.zeros(labels.shape, bool)
    same_v = labels[1:] == labels[:-1]
    same_h = labels[:, 1:] == labels[:, :-1]
    touching[1:] |= same_v
    touching[:-1] |= same_v
    touching[:, 1:] |= same_h
    touching[:, :-1] |= same_h
    connected = np.bincount(labels[touching].ravel(), minlength=256)
    rare = counts < RARE_FRACTION * labels.size
    return [int(v) for v in present if rare[v] and connected[v] < counts[v]]


def read_label_map(source: str | os.PathLike | bytes, what: str = "mask", *, lossy_check: bool = True,
                   size: tuple[int, int] | None = None, size_of: str = "the video") -> np.ndarray:
    """A label map (a path or PNG bytes) as H×W uint8 ids, by the module's rules; values are
    kept as they are (a DAVIS 2016 annotation's object stays 255).

    Beyond :func:`decode_label_values`: ids above 255 are refused, and with ``lossy_check``
    so is a map with more than ``LOSSY_LABELS`` rare scattered ids (what JPEG does to a
    0/255 mask) instead of becoming dozens of objects. ``size``: see :func:`decode_label_values`.
    """
    values = decode_label_values(source, what, size=size, size_of=size_of)
    name = _name(what, None if isinstance(source, (bytes, bytearray, memoryview)) else Path(source))
    if values.dtype != np.uint8:
        raise SSMVOSError(f"{name} has labels up to {int(values.max())}: object ids must be 0..255 here "
                          "(0 = background, 255 = void)")
    if lossy_check:
        artefacts = artefact_labels(values)
        if len(artefacts) > LOSSY_LABELS:
            shown = ", ".join(map(str, artefacts[:6])) + (", ..." if len(artefacts) > 6 else "")
            raise SSMVOSError(f"{name} looks like a lossy image: {len(artefacts)} rare scattered labels ({shown}) as "
                              "compression leaves at edges; save the label map losslessly (PNG) from its source")
    return values


def object_labels(labels: np.ndarray) -> np.ndarray:
    """An H×W uint8 label map with the object rules applied: a binary mask (only 0 and 255)
    becomes object 1; beside other ids, 255 (void) becomes 0. Returns a new array."""
    present = np.bincount(labels.ravel(), minlength=256) if labels.size else np.zeros(256, np.int64)
    if present[VOID_LABEL] and not present[1:VOID_LABEL].any():
        return (labels == VOID_LABEL).astype(np.uint8)
    return np.where(labels == VOID_LABEL, np.uint8(0), labels).astype(np.uint8)


def read_object_labels(source: str | os.PathLike | bytes, what: str = "mask", *,
                       size: tuple[int, int] | None = None, size_of: str = "the video") -> np.ndarray:
    """A user's mask (``segment --mask``, a session's mask, the app's import) as H×W uint8
    object ids 0..254: :func:`read_label_map`, then :func:`object_labels`; ``size`` (H, W)
    checked before decoding (see :func:`decode_label_values`)."""
    return object_labels(read_label_map(source, what, size=size, size_of=size_of))


def object_masks(labels: np.ndarray, source: str) -> dict[int, np.ndarray]:
    """Object id -> H×W bool mask of a user's label map (ids 1..254; a binary 0/255 mask is
    object 1; beside other ids 255 is void and ignored). Raises if it holds no object, naming
    ``source`` (a path, or what the map is: "the mask of frame 3 in session file X")."""
    labels = object_labels(labels)
    ids = [int(v) for v in np.flatnonzero(np.bincount(labels.ravel(), minlength=256)) if v]
    if not ids:
        name = source if source.startswith("the ") else f"the mask {source}"
        raise SSMVOSError(f"{name} holds no object (all pixels are 0)")
    return {i: labels == i for i in ids}


# --------------------------------------------------------------------------- writing
def encode_label_png(labels: np.ndarray, palette: bool = True, compress_level: int = 6) -> bytes:
    """H×W uint8 labels -> PNG bytes: a DAVIS-palette PNG, or grayscale (values = labels)."""
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P" if palette else "L")
    if palette:
        image.putpalette(DAVIS_PALETTE)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def _atomic_save(image: Image.Image, path: Path, **params) -> None:
    with atomic_path(path, suffix=path.suffix or ".png") as tmp:
        image.save(tmp, format="PNG", **params)


def write_label_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Write H×W uint8 labels as an indexed PNG with the DAVIS palette (atomically)."""
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="P")
    image.putpalette(DAVIS_PALETTE)
    _atomic_save(image, Path(path))


def write_gray_png(path: str | os.PathLike, values: np.ndarray) -> None:
    """Write an H×W uint8 array (a soft mask, 0..255) as a grayscale PNG (atomically)."""
    _atomic_save(Image.fromarray(np.ascontiguousarray(values, dtype=np.uint8), mode="L"), Path(path), compress_level=1)


__all__ = ["DAVIS_PALETTE", "VOID_LABEL", "LabelMap", "decode_label_values", "read_label_map", "read_object_labels",
           "object_labels", "object_masks", "artefact_labels", "encode_label_png", "write_label_png", "write_gray_png"]

"""The label-map rules (docs/design.md, "Label maps"), one row per rule, from a path and from
bytes; and the same file giving the same objects through every entry point that reads one
(``segment --mask``, ``--session``, the app's import, ``score``, ``index``)."""
from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from ssmvos.errors import SSMVOSError
from ssmvos.io.labels import (DAVIS_PALETTE, decode_label_values, encode_label_png, object_masks, read_label_map,
                              read_object_labels)

H, W = 12, 16


def _base() -> np.ndarray:
    """Objects 1 (a block) and 2 (another block) on background."""
    labels = np.zeros((H, W), np.uint8)
    labels[2:6, 2:7] = 1
    labels[7:11, 9:14] = 2
    return labels


def _png(array: np.ndarray, mode: str | None = None, palette: bool = False, fmt: str = "PNG") -> bytes:
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:
        image.putpalette(DAVIS_PALETTE)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _lossy() -> bytes:
    """A 0/255 mask after JPEG, saved as PNG: the edges hold dozens of rare scattered values."""
    big = np.zeros((64, 64), np.uint8)
    big[16:48, 12:50] = 255
    big[21:32, 21:32] = 0
    return _png(np.asarray(Image.open(io.BytesIO(_jpeg(big)))))


def _bomb() -> bytes:
    """A PNG whose header claims 40000x40000 pixels (1.6 GB decoded), with almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    header = (40000).to_bytes(4, "big") * 2 + bytes((8, 3, 0, 0, 0))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(768))
            + chunk(b"IDAT", zlib.compress(bytes(40001))) + chunk(b"IEND", b""))


B = _base()
VOIDED = np.where(np.arange(W)[None, :] == 0, 255, B).astype(np.uint8)  # column 0 is void
BINARY = np.where(B > 0, 255, 0).astype(np.uint8)
GREY = np.dstack([B, B, B])
COLOUR = np.dstack([B * 100, B * 0 + 9, B])

# name -> (PNG bytes, the object labels a user's mask gives, the values read_label_map keeps)
RULES = {
    "palette: indices are ids": (_png(B, "P", palette=True), B, B),
    "palette: 255 beside other ids is void": (_png(VOIDED, "P", palette=True), B, VOIDED),
    "grayscale L: values are ids": (_png(B, "L"), B, B),
    "16-bit grayscale: ids 1 and 2 are two objects": (_png(B.astype(np.uint16)), B, B),
    "32-bit grayscale I (a TIFF): values are ids": (_png(B.astype(np.int32), "I", fmt="TIFF"), B, B),
    "1-bit: one object, id 1": (_png(B > 0), (B > 0).astype(np.uint8), (B > 0).astype(np.uint8)),
    "two-valued 0/255 grayscale: one object, id 1": (_png(BINARY, "L"), (B > 0).astype(np.uint8), BINARY),
    "two-valued 0/255 palette: one object, id 1": (_png(BINARY, "P", palette=True), (B > 0).astype(np.uint8), BINARY),
    "grey RGB: read as L": (_png(GREY), B, B),
    "grey RGBA: read as L": (_png(np.dstack([GREY, np.full((H, W), 255, np.uint8)])), B, B),
    "grey with alpha (LA): read as L": (_png(np.dstack([B, np.full((H, W), 255, np.uint8)]), "LA"), B, B),
}
# name -> (bytes, words the one-line error holds)
REFUSED = {
    "colour RGB": (_png(COLOUR), ("colour (RGB)", "not a label map", "palette or grayscale PNG")),
    "colour RGBA": (_png(np.dstack([COLOUR, np.full((H, W), 255, np.uint8)])), ("colour (RGBA)", "not a label map")),
    "JPEG": (_jpeg(BINARY), ("is a JPEG", "save it as a PNG")),
    "JPEG artefacts saved as PNG": (_lossy(), ("looks like a lossy image", "losslessly")),
    "16-bit ids above 255": (_png(B.astype(np.uint16) * 300), ("labels up to 600", "0..255")),
    "not an image": (b"not a png at all", ("not a readable PNG",)),
    "decompression bomb": (_bomb(), ("40000x40000 pixels", "at most")),
}


@pytest.fixture(params=["path", "bytes"])
def source(request, tmp_path):
    """How the file reaches the reader: a path, or its bytes."""
    def make(data: bytes, name: str = "mask.png"):
        if request.param == "bytes":
            return data
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return make


@pytest.mark.parametrize("name", list(RULES))
def test_label_map_rules(name, source):
    data, objects, kept = RULES[name]
    got = read_object_labels(source(data), "mask")
    assert got.dtype == np.uint8 and got.shape == (H, W)
    np.testing.assert_array_equal(got, objects)
    np.testing.assert_array_equal(read_label_map(source(data), "annotation"), kept)  # dataset annotations


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_label_maps_say_why_and_how_to_fix(name, source, tmp_path):
    data, words = REFUSED[name]
    given = source(data, "bad.png")
    with pytest.raises(SSMVOSError) as caught:
        read_object_labels(given, "the mask")
    message = str(caught.value)
    assert "\n" not in message and "the mask" in message
    if not isinstance(given, bytes):
        assert "bad.png" in message
    for word in words:
        assert word in message, message


def test_wide_ids_are_kept_for_scoring_and_a_missing_file_is_named(tmp_path):
    np.testing.assert_array_equal(decode_label_values(_png(B.astype(np.uint16) * 300)), B.astype(np.uint16) * 300)
    with pytest.raises(SSMVOSError, match="mask not found: .*nowhere.png"):
        read_label_map(tmp_path / "nowhere.png")


def test_encode_round_trips_and_writes_the_davis_palette():
    data = encode_label_png(VOIDED)
    image = Image.open(io.BytesIO(data))
    assert image.mode == "P" and bytes(image.getpalette()[:768]) == DAVIS_PALETTE
    np.testing.assert_array_equal(read_label_map(data), VOIDED)
    np.testing.assert_array_equal(read_label_map(encode_label_png(VOIDED, palette=False)), VOIDED)


def test_an_empty_mask_holds_no_object():
    with pytest.raises(SSMVOSError, match="the mask m.png holds no object"):
        object_masks(np.zeros((H, W), np.uint8), "m.png")


# ------------------------------------------------------------------ one file, every entry point
def _sets(masks) -> list[bytes]:
    """Objects as sorted pixel sets (ids may differ: DAVIS 2016's object is 255 in a dataset)."""
    return sorted(np.packbits(np.asarray(m, bool)).tobytes() for m in masks)


SAME = ["16-bit grayscale: ids 1 and 2 are two objects", "two-valued 0/255 grayscale: one object, id 1",
        "1-bit: one object, id 1", "palette: 255 beside other ids is void"]


@pytest.mark.parametrize("name", SAME)
def test_one_file_gives_the_same_objects_everywhere(name, tmp_path):
    from ssmvos.app.session import png_to_labels
    from ssmvos.data.index import first_frame_objects
    from ssmvos.inference.segment import _read_masks
    from ssmvos.io.session_file import read_session_file
    from ssmvos.scoring.score import _annotation, detect_format

    data, objects, _ = RULES[name]
    want = _sets(object_masks(objects, "want").values())
    path = tmp_path / "ann" / "v" / "00000.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)

    # segment --mask
    assert _sets(_read_masks([(0, path)], H, W, 3)[0].values()) == want
    # segment --session and the app's Load session: the same PNG inside a session file
    session = tmp_path / "session.json"
    session.write_text(json.dumps({"version": 1, "video": {"name": "v", "num_frames": 3, "height": H, "width": W},
                                   "masks": {"0": base64.b64encode(data).decode()}}))
    labels = read_session_file(session).masks[0]
    assert _sets(labels == i for i in np.unique(labels) if i) == want
    # the app's import
    labels = png_to_labels(data, "the imported mask")
    assert _sets(labels == i for i in np.unique(labels) if i) == want
    # score: the format its annotations call for, then that format's objects
    fmt, _ = detect_format(tmp_path / "ann", ["v"])
    labels, _ = _annotation(path, fmt, exclude_void=False)
    assert _sets(labels == i for i in np.unique(labels) if i) == want
    # index (a dataset keeps 255 beside other ids as an object, as the original make_index.py does)
    if "void" not in name:
        labels = read_label_map(path)
        assert _sets(labels == i for i in first_frame_objects(path)) == want

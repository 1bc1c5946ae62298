"""COCO-style RLE: what ``batch --format coco`` and the app's export write decodes with
pycocotools (the reference implementation, a test-only dependency) to the same masks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ssmvos import SSMVOSError
from ssmvos.io.coco import decode_counts, decode_mask, encode_mask, video_entry, write_coco_json

coco = pytest.importorskip("pycocotools.mask", reason="pycocotools (the test extra) is the RLE oracle")


def masks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    blobs = np.zeros((37, 53), dtype=np.uint8)
    blobs[5:30, 10:40] = 1
    blobs[12:18, 20:25] = 0
    return [np.zeros((4, 6), np.uint8), np.ones((4, 6), np.uint8), blobs,
            (rng.random((61, 47)) > 0.5).astype(np.uint8),  # many short runs: large differences both ways
            np.pad(np.ones((300, 2), np.uint8), ((0, 700), (0, 1)))]  # a run over 2**15 pixels


@pytest.mark.parametrize("mask", masks(), ids=["empty", "full", "blob", "noise", "long-run"])
def test_encoding_equals_pycocotools_and_round_trips(mask):
    ours = encode_mask(mask)
    theirs = coco.encode(np.asfortranarray(mask))
    assert ours["counts"] == theirs["counts"].decode("ascii")
    assert ours["size"] == list(theirs["size"])
    assert np.array_equal(coco.decode({"size": ours["size"], "counts": ours["counts"].encode()}), mask)
    assert np.array_equal(decode_mask(ours), mask)


def test_a_video_file_holds_every_object_of_every_frame(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    labels[2:8, 3:9], labels[10:15, 20:28], labels[0, 0] = 1, 3, 255  # 255: DAVIS's void, not an object
    path = tmp_path / "out.json"
    write_coco_json(path, [video_entry("clip", 20, 30, [(0, labels), (4, np.zeros_like(labels))])])
    video = json.loads(path.read_text())["videos"][0]
    assert (video["name"], video["height"], video["width"]) == ("clip", 20, 30)
    assert [f["frame"] for f in video["frames"]] == [0, 4]
    first = video["frames"][0]["objects"]
    assert sorted(first) == ["1", "3"] and video["frames"][1]["objects"] == {}
    for oid, rle in first.items():
        assert np.array_equal(coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}),
                              labels == int(oid))


def test_damaged_strings_are_refused():
    with pytest.raises(SSMVOSError, match="middle of a number"):
        decode_counts("0`")  # a continuation bit on the last character
    with pytest.raises(SSMVOSError, match="alphabet"):
        decode_counts("0 1")
    with pytest.raises(SSMVOSError, match="covers 3 pixels"):
        decode_mask({"size": [2, 2], "counts": "12"})

"""The session file (docs/design.md): versioned JSON written and read straight into masks;
every error names the file and the field or frame, and nothing is returned unless all of it
is good."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from ssmvos.errors import SSMVOSError
from ssmvos.io.session_file import SessionVideo, encode_session, read_session_file

H, W = 10, 14
VIDEO = SessionVideo("clip", 4, H, W)


def labels() -> np.ndarray:
    out = np.zeros((H, W), np.uint8)
    out[2:5, 3:8] = 1
    out[6:9, 8:12] = 2
    return out


def png(array: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def good() -> dict:
    return json.loads(encode_session(VIDEO, {0: labels(), 2: labels() * 0}, {1: "car", 2: "dog"}))


def test_written_and_read_back():
    data = good()
    assert data["version"] == 1 and data["video"] == {"name": "clip", "num_frames": 4, "height": H, "width": W}
    assert list(data["masks"]) == ["0"]  # an empty map is left out
    assert data["objects"] == {"1": {"name": "car"}, "2": {"name": "dog"}}
    decoded = Image.open(io.BytesIO(base64.b64decode(data["masks"]["0"])))
    assert decoded.mode == "P"  # a palette PNG


def test_read_from_a_file_into_masks(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(good()))
    session = read_session_file(path)
    np.testing.assert_array_equal(session.masks[0], labels())
    assert session.video == VIDEO and session.objects == {1: "car", 2: "dog"}
    session.check_video(4, H, W)
    with pytest.raises(SSMVOSError, match=r"s.json was made for a video of 4 frames of 14x10, but the video has 5 "):
        session.check_video(5, H, W)
    with pytest.raises(SSMVOSError, match=r"s.json .* but the frames are 14x11: it belongs to another video"):
        session.check_video(4, 11, W)
    session.check_video(None, H, W)  # a live source: the size only


def _with(**change) -> dict:
    data = good()
    for key, value in change.items():
        where = data["video"] if key in ("num_frames", "height", "width") else data
        where[key] = value
    return data


CASES = {
    "width true": (_with(width=True), "video.width must be a whole number > 0, not true"),
    "height 0": (_with(height=0), "video.height must be a whole number > 0, not 0"),
    "frames missing": (_with(num_frames=None), "video.num_frames must be a whole number"),
    "frame beyond the video": (_with(masks={"0": png(labels()), "40": png(labels())}),
                               "mask for frame 40, but the video has 4 frames"),
    "300-digit frame key": (_with(masks={"9" * 300: png(labels())}), "(300 digits) is not a frame number"),
    "superscript frame key": (_with(masks={"²": png(labels())}), "mask key '²' is not a frame number"),
    "negative frame key": (_with(masks={"-1": png(labels())}), "mask key '-1' is not a frame number"),
    "the same frame twice": (_with(masks={"1": png(labels()), "01": png(labels())}), "two masks for frame 1"),
    "not base64": (_with(masks={"0": "@@@"}), "the mask of frame 0 is not base64 PNG data"),
    "a colour mask": (_with(masks={"0": png(np.dstack([labels() * 90, labels(), labels()]))}),
                      "the mask of frame 0 in session file"),
    "a mask of another size": (_with(masks={"0": png(labels()[:5])}), "is 14x5, but the session's video is 14x10"),
    "version 2": (_with(version=2), "a session file of version 2"),
    "not a session": ({"a": 1}, "not an ssmvos session file"),
    "objects not ids": (_with(objects={"x": {"name": "a"}}), "objects key 'x' is not an object id"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_errors_name_the_file_and_field(name, tmp_path):
    data, words = CASES[name]
    path = tmp_path / "session.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SSMVOSError) as caught:
        read_session_file(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and words in message, message
    assert "9" * 30 not in message  # a 300-digit key is not echoed whole


def test_unreadable_files(tmp_path):
    with pytest.raises(SSMVOSError, match="session file not found"):
        read_session_file(tmp_path / "nowhere.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(SSMVOSError, match=r"bad.json is not valid JSON \(line 1"):
        read_session_file(tmp_path / "bad.json")


def header_only_png(width: int, height: int) -> str:
    """A PNG announcing width x height whose pixel data is damaged: only a reader that
    checks the size from the header first can tell what is wrong with it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"damaged") + chunk(b"IEND", b"")
    return base64.b64encode(data).decode()


def test_sizes_are_checked_before_any_mask_is_decoded():
    """A session file is a few KB that could inflate to gigabytes: the video it was made for
    is checked against the open one (video_of) before any mask, and every mask's size is read
    from its PNG header before its pixels are."""
    from ssmvos.io.session_file import parse_session

    bomb = _with(masks={"0": header_only_png(11585, 11585)})
    with pytest.raises(SSMVOSError, match="is 11585x11585, but the session's video is 14x10"):
        parse_session(bomb)
    huge = _with(width=11585, height=11585, masks={"0": header_only_png(11585, 11585)})
    with pytest.raises(SSMVOSError, match="made for a video of 4 frames of 11585x11585, but the frames are 14x10"):
        parse_session(huge, video_of=(4, H, W))
    bigger = _with(width=20000, height=20000)
    with pytest.raises(SSMVOSError, match="made for frames of 20000x20000, more than any video"):
        parse_session(bigger)
    assert np.array_equal(parse_session(good(), video_of=(4, H, W)).masks[0], labels())

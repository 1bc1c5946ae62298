"""Frame and mask I/O: palette round trips, colour conversion, errors naming the file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import DAVIS16
from ssmvos.data.io import DAVIS_PALETTE, object_mask, read_mask, write_gray_png, write_palette_png
from ssmvos.errors import SSMVOSError
from ssmvos.io.frames import VideoFile, list_frames, read_frame


def test_palette_png_round_trip_with_the_davis_colours(tmp_path):
    labels = np.zeros((12, 16), np.uint8)
    labels[2:6, 3:9] = 1
    labels[7:10, 1:4] = 2
    labels[0, 0] = 255
    path = tmp_path / "out" / "00000.png"
    write_palette_png(path, labels)
    np.testing.assert_array_equal(read_mask(path), labels)
    with Image.open(path) as im:
        assert im.mode == "P"
        rgb = np.asarray(im.convert("RGB"))
    assert tuple(rgb[3, 4]) == (128, 0, 0) and tuple(rgb[8, 2]) == (0, 128, 0) and tuple(rgb[11, 15]) == (0, 0, 0)
    assert tuple(rgb[0, 0]) == (224, 224, 192)  # 255: the DAVIS void colour
    assert DAVIS_PALETTE[9:12] == bytes((128, 128, 0))  # label 3
    assert [p.name for p in path.parent.iterdir()] == ["00000.png"]  # no temporary file left


def test_gray_png_round_trip(tmp_path):
    values = np.arange(200, dtype=np.uint8).reshape(10, 20)
    write_gray_png(tmp_path / "g.png", values)
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png"), values)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "RGB"])
def test_frames_become_rgb(tmp_path, mode):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    if mode == "L":
        image = image.convert("L")
    elif mode == "RGBA":
        image = image.convert("RGBA")
    elif mode == "P":
        image = image.convert("P")
    path = tmp_path / f"f_{mode}.png"
    image.save(path)
    got = read_frame(path)
    assert got.shape == (8, 10, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.asarray(image.convert("RGB")))
    if mode in ("RGB", "RGBA"):
        np.testing.assert_array_equal(got, rgb)


def test_masks_in_other_formats(tmp_path):
    labels = np.zeros((6, 7), np.uint8)
    labels[1:3, 2:5] = 3
    Image.fromarray(np.dstack([labels, labels, labels])).save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "gray_rgb.png"), labels)  # gray stored as RGB
    Image.fromarray(np.dstack([labels, labels * 0 + 9, labels])).save(tmp_path / "rgb.png")
    with pytest.raises(SSMVOSError, match="rgb.png is a colour .* not a label map"):  # not its first channel
        read_mask(tmp_path / "rgb.png")
    Image.fromarray(labels > 0).save(tmp_path / "bits.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "bits.png"), labels > 0)  # 1-bit: object 1
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "u16.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "u16.png"), labels)
    Image.fromarray((labels.astype(np.uint16) * 1000)).save(tmp_path / "big.png")
    with pytest.raises(SSMVOSError, match="big.png"):
        read_mask(tmp_path / "big.png")


def test_object_mask():
    labels = np.array([[0, 1, 2], [2, 255, 1]], np.uint8)
    m = object_mask(labels, 2)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, [[0, 0, 1], [1, 0, 0]])


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(SSMVOSError, match="nowhere.jpg"):
        read_frame(tmp_path / "nowhere.jpg")
    with pytest.raises(SSMVOSError, match="nowhere.png"):
        read_mask(tmp_path / "nowhere.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(SSMVOSError, match="bad.jpg"):
        read_frame(bad)
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(SSMVOSError, match="bad.png"):
        read_mask(tmp_path / "bad.png")


def test_list_frames(tmp_path):
    for name in ["00002.jpg", "00000.png", "00001.JPG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    assert [p.name for p in list_frames(tmp_path)] == ["00000.png", "00001.JPG", "00002.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SSMVOSError, match="empty"):
        list_frames(tmp_path / "empty")
    with pytest.raises(SSMVOSError, match="missing"):
        list_frames(tmp_path / "missing")


def test_video_frames(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG here")
    for k in range(3):
        bgr = np.zeros((24, 32, 3), np.uint8)
        bgr[:, :, 2] = 200  # red in BGR
        writer.write(bgr)
    writer.release()
    video = VideoFile(path)
    frames = [frame for _, frame in video.iterate(list(range(len(video))))]
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3) and video.fps == 10
    assert frames[0][..., 0].mean() > 150 and frames[0][..., 2].mean() < 60  # RGB order
    # random access, forwards and back, gives the same frames as decoding in order
    assert all(np.array_equal(video.get(k), frames[k]) for k in (1, 2, 0, 2))
    (tmp_path / "fake.mp4").write_bytes(b"not a video")
    with pytest.raises(SSMVOSError, match="fake.mp4"):
        VideoFile(tmp_path / "fake.mp4")


def test_real_davis_frame_and_annotation():
    img = read_frame(DAVIS16 / "JPEGImages" / "480p" / "blackswan" / "00000.jpg")
    mask = read_mask(DAVIS16 / "Annotations" / "480p" / "blackswan" / "00000.png")
    assert img.shape == (480, 854, 3) and img.dtype == np.uint8
    assert mask.shape == (480, 854) and set(np.unique(mask)) == {0, 255}


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_frames_decode_to_the_same_pixels_as_pillow(tmp_path, mode):
    rgb = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    path = tmp_path / "f.jpg"
    Image.fromarray(rgb).convert(mode).save(path, quality=90)
    with Image.open(path) as im:
        want = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(read_frame(path), want)

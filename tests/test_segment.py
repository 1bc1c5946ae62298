"""`ssmvos segment` on a user's own clip: mp4 and frame folder, two objects, overlay;
every bad input gives one clear line and leaves no output claimed as done."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import DAVIS16, REFERENCE, assert_clean_error, require_shared, run_cli
from ssmvos.data.io import read_mask, write_palette_png

W, H, N = 320, 180, 5


@pytest.fixture(scope="module")
def clip(tmp_path_factory, reference_checkpoint):
    """A small two-object clip (libby frames, downscaled) as an mp4, a frame folder and a mask;
    weights.pt links to the session's reference checkpoint."""
    require_shared(DAVIS16)
    root = tmp_path_factory.mktemp("clip")
    frames = root / "frames"
    frames.mkdir()
    src = sorted((DAVIS16 / "JPEGImages" / "480p" / "libby").glob("*.jpg"))[:N]
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for i, f in enumerate(src):
        small = cv2.resize(cv2.imread(str(f)), (W, H), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), small)
        writer.write(small)
    writer.release()
    labels = read_mask(REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby" / "00000.png")
    write_palette_png(root / "mask.png", cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST))
    (root / "weights.pt").symlink_to(reference_checkpoint)
    return root


def _segment(clip, out, *extra):
    return run_cli("segment", *extra, "--mask", clip / "mask.png", "--out", out, "--weights", clip / "weights.pt",
                   "--input-size", 224, "--device", "cpu", "--no-progress")


@pytest.mark.parametrize("source", ["video", "frames"])
def test_segment_two_objects_with_overlay(clip, tmp_path, source):
    arg = ("--video", clip / "clip.mp4") if source == "video" else ("--frames", clip / "frames")
    proc = _segment(clip, tmp_path / "out", *arg, "--overlay", tmp_path / "overlay.mp4")
    assert proc.returncode == 0, proc.stderr
    assert "2 object(s) in 5 frames" in proc.stdout
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(N)]
    first = read_mask(pngs[0])
    assert first.shape == (H, W)
    assert set(np.unique(first)) == {0, 1, 2}  # frame 0 is the given mask
    assert np.array_equal(first, read_mask(clip / "mask.png"))
    for p in pngs[1:]:
        assert set(np.unique(read_mask(p))) <= {0, 1, 2}
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == N
    assert not list(tmp_path.glob(".overlay*"))


def test_segment_bad_inputs(clip, tmp_path):
    out = tmp_path / "out"
    # missing frame folder / video
    assert_clean_error(_segment(clip, out, "--frames", tmp_path / "nope"), "nope")
    assert_clean_error(_segment(clip, out, "--video", tmp_path / "nope.mp4"), "nope.mp4")
    # a file that is not a video
    (tmp_path / "fake.mp4").write_text("not a video")
    assert_clean_error(_segment(clip, out, "--video", tmp_path / "fake.mp4"), "fake.mp4")
    # a corrupt frame in a folder
    bad = tmp_path / "bad_frames"
    bad.mkdir()
    for f in sorted((clip / "frames").iterdir()):
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "00003.jpg").write_bytes(b"garbage")
    proc = _segment(clip, tmp_path / "out_bad", "--frames", bad)
    assert_clean_error(proc, "00003.jpg")
    # mask of another size
    write_palette_png(tmp_path / "small.png", np.ones((10, 10), np.uint8))
    proc = run_cli("segment", "--frames", clip / "frames", "--mask", tmp_path / "small.png", "--out", out,
                   "--weights", clip / "weights.pt", "--input-size", 224, "--device", "cpu")
    assert_clean_error(proc, "small.png", "10×10")
    # a mask with no object
    write_palette_png(tmp_path / "empty.png", np.zeros((H, W), np.uint8))
    proc = run_cli("segment", "--frames", clip / "frames", "--mask", tmp_path / "empty.png", "--out", out,
                   "--weights", clip / "weights.pt", "--input-size", 224, "--device", "cpu")
    assert_clean_error(proc, "empty.png", "no object")
    # weights that are not a checkpoint
    (tmp_path / "notckpt.pt").write_text("hello")
    proc = run_cli("segment", "--frames", clip / "frames", "--mask", clip / "mask.png", "--out", out,
                   "--weights", tmp_path / "notckpt.pt", "--device", "cpu")
    assert_clean_error(proc, "notckpt.pt")
    # an output path that cannot be written (a file stands where the folder should be)
    (tmp_path / "afile").write_text("x")
    assert_clean_error(_segment(clip, tmp_path / "afile" / "sub", "--frames", clip / "frames"), "afile")
    assert_clean_error(_segment(clip, tmp_path / "afile", "--frames", clip / "frames"), "afile")
    # nothing claimed as done: no output folder was created for the rejected inputs
    assert not out.exists()

"""`ssmvos segment` on a user's own clip: mp4 and frame folder, two objects, overlay; masks
on later frames (corrections, late objects), backward and both directions, live input on
stdin with Ctrl-C; every bad input gives one clear line and leaves no output claimed as done."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import DAVIS16, REFERENCE, ROOT, SUBPROCESS_TIMEOUT, assert_clean_error, run_cli
from ssmvos.data.io import read_mask, write_palette_png

W, H, N = 320, 180, 5


@pytest.fixture(scope="module")
def clip(tmp_path_factory, reference_checkpoint):
    """A small two-object clip (libby frames, downscaled) as an mp4, a frame folder and a mask;
    weights.pt links to the session's reference checkpoint."""
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
    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby"
    labels = read_mask(ann / "00000.png")
    write_palette_png(root / "mask.png", cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST))
    # frame 2: object 1 as annotated (a correction) and object 2's region as a new object 3
    labels = cv2.resize(read_mask(ann / "00002.png"), (W, H), interpolation=cv2.INTER_NEAREST)
    write_palette_png(root / "mask2.png", labels)
    write_palette_png(root / "fix2.png", np.where(labels == 2, 3, labels).astype(np.uint8))
    (root / "weights.pt").symlink_to(reference_checkpoint)
    return root


def _segment(clip, out, *extra):
    """``ssmvos segment`` on the clip; the frame-0 mask unless ``extra`` gives masks."""
    masks = () if "--mask" in extra else ("--mask", clip / "mask.png")
    return run_cli("segment", *extra, *masks, "--out", out, "--weights", clip / "weights.pt",
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


def _labels(folder) -> dict[str, np.ndarray]:
    return {p.stem: read_mask(p) for p in sorted(folder.glob("*.png"))}


def _frame_count(video) -> int:
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    return count


@pytest.fixture(scope="module")
def plain(clip, tmp_path_factory):
    """Outputs of the plain run: the frame-0 mask, forward over the frame folder."""
    out = tmp_path_factory.mktemp("plain")
    proc = _segment(clip, out, "--frames", clip / "frames")
    assert proc.returncode == 0, proc.stderr
    return out


def test_correction_and_late_object_from_a_later_mask(clip, plain, tmp_path):
    masks = ("--frames", clip / "frames", "--mask", clip / "mask.png", "--mask", f"2:{clip / 'fix2.png'}")
    proc = _segment(clip, tmp_path / "fwd", *masks, "--direction", "forward")
    assert proc.returncode == 0, proc.stderr
    assert "3 object(s) in 5 frames" in proc.stdout
    for name in ("00000", "00001"):  # before the correction: byte for byte the plain run's
        assert (tmp_path / "fwd" / f"{name}.png").read_bytes() == (plain / f"{name}.png").read_bytes()
    got, want = _labels(tmp_path / "fwd"), _labels(plain)
    fix = read_mask(clip / "fix2.png")  # object 3 (the highest id) wins every pixel of its given mask
    assert (got["00002"][fix == 3] == 3).all() and {1, 3} <= set(np.unique(got["00002"]))
    assert all(3 not in np.unique(got[n]) for n in ("00000", "00001"))  # forward: the late object starts at frame 2
    assert all(3 in np.unique(got[n]) for n in ("00002", "00003"))
    assert all(not np.array_equal(got[n], want[n]) for n in ("00002", "00003", "00004"))
    # both (the default): the late object is also tracked backward from its first mask; objects
    # 1 and 2 there, and every object from frame 2 on, are the forward run's
    proc = _segment(clip, tmp_path / "both", *masks)
    assert proc.returncode == 0, proc.stderr
    both = _labels(tmp_path / "both")
    assert sorted(both) == sorted(got)
    for name in ("00002", "00003", "00004"):
        assert (tmp_path / "both" / f"{name}.png").read_bytes() == (tmp_path / "fwd" / f"{name}.png").read_bytes()
    for name in ("00000", "00001"):
        assert 3 in np.unique(both[name])
        assert np.array_equal(both[name][both[name] != 3], got[name][both[name] != 3])


def test_a_forward_run_says_which_frames_it_left_out(clip, tmp_path):
    proc = _segment(clip, tmp_path / "out", "--frames", clip / "frames", "--mask", f"2:{clip / 'mask2.png'}",
                    "--direction", "forward")
    assert proc.returncode == 0, proc.stderr
    assert sorted(_labels(tmp_path / "out")) == ["00002", "00003", "00004"]
    assert "frames 0..1 come before the first mask" in proc.stderr and "--direction both" in proc.stderr


def test_backward_and_both_directions(clip, tmp_path):
    mask = f"2:{clip / 'mask2.png'}"
    proc = _segment(clip, tmp_path / "both", "--frames", clip / "frames", "--mask", mask,
                    "--overlay", tmp_path / "both.mp4")
    assert proc.returncode == 0, proc.stderr
    both = _labels(tmp_path / "both")
    assert sorted(both) == [f"{i:05d}" for i in range(N)] and _frame_count(tmp_path / "both.mp4") == N
    assert np.array_equal(both["00002"], read_mask(clip / "mask2.png"))
    assert all({1, 2} & set(np.unique(both[n])) for n in ("00000", "00001"))  # segmented backward from frame 2
    proc = _segment(clip, tmp_path / "back", "--frames", clip / "frames", "--mask", mask, "--direction", "backward")
    assert proc.returncode == 0, proc.stderr
    assert sorted(_labels(tmp_path / "back")) == ["00000", "00001", "00002"]
    for name in ("00000", "00001", "00002"):
        assert (tmp_path / "back" / f"{name}.png").read_bytes() == (tmp_path / "both" / f"{name}.png").read_bytes()


def _live(clip, out, *extra) -> subprocess.Popen:
    """``ssmvos segment --video -`` reading frames from a pipe the caller writes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "ssmvos", "segment", "--video", "-", "--out", str(out),
                             "--weights", str(clip / "weights.pt"), "--input-size", "224", "--device", "cpu",
                             "--no-progress", *map(str, extra)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _feed(proc: subprocess.Popen, jpegs: list[bytes], delay: float, loops: int = 1) -> threading.Thread:
    """Write the JPEGs to the process's stdin with a delay between frames, then close it."""
    def write() -> None:
        try:
            for _ in range(loops):
                for data in jpegs:
                    proc.stdin.write(data)
                    proc.stdin.flush()
                    time.sleep(delay)
            proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):  # the reader went away
            pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _finish(proc: subprocess.Popen, timeout: float = SUBPROCESS_TIMEOUT) -> tuple[str, str]:
    """Wait for a process whose stdin a feeder writes; its (stdout, stderr)."""
    proc.wait(timeout=timeout)
    return proc.stdout.read().decode(), proc.stderr.read().decode()


def test_live_stdin_is_segmented_as_frames_arrive_and_ctrl_c_keeps_what_is_done(clip, plain, tmp_path):
    jpegs = [p.read_bytes() for p in sorted((clip / "frames").glob("*.jpg"))]
    proc = _live(clip, tmp_path / "live", "--mask", clip / "mask.png", "--no-drop", "--overlay", tmp_path / "live.mp4")
    _feed(proc, jpegs, delay=0.1)
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert "latency per frame: median" in out and "dropped 0 frame(s)" in out
    # the same frames as the folder, decoded from the pipe: the same masks
    got, want = _labels(tmp_path / "live"), _labels(plain)
    assert sorted(got) == sorted(want) and all(np.array_equal(got[n], want[n]) for n in want)
    assert _frame_count(tmp_path / "live.mp4") == N

    # an endless stream, interrupted once two frames are written
    proc = _live(clip, tmp_path / "int", "--mask", clip / "mask.png", "--overlay", tmp_path / "int.mp4")
    _feed(proc, jpegs, delay=0.2, loops=1000)
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while len(list((tmp_path / "int").glob("*.png"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = _finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err
    pngs = sorted((tmp_path / "int").glob("*.png"))
    assert len(pngs) >= 2 and all(read_mask(p).shape == (H, W) for p in pngs)  # complete files
    assert not list((tmp_path / "int").glob(".*"))  # no half-written temporaries
    assert _frame_count(tmp_path / "int.mp4") == len(pngs)


def test_steering_bad_inputs(clip, tmp_path):
    out = tmp_path / "out"
    frames = ("--frames", clip / "frames")
    assert_clean_error(_segment(clip, out, *frames, "--mask", f"7:{clip / 'mask2.png'}"), "frame 7", "5 frames")
    assert_clean_error(_segment(clip, out, *frames, "--mask", "x:nothing.png"), "'x' is not a frame number")
    write_palette_png(tmp_path / "empty.png", np.zeros((H, W), np.uint8))
    assert_clean_error(_segment(clip, out, *frames, "--mask", f"2:{tmp_path / 'empty.png'}"), "empty.png", "no object")
    write_palette_png(tmp_path / "small.png", np.ones((10, 10), np.uint8))
    assert_clean_error(_segment(clip, out, *frames, "--mask", f"2:{tmp_path / 'small.png'}"), "small.png", "10×10")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/live.mp4"
    assert_clean_error(_segment(clip, out, "--video", url), "cannot open stream", url)
    assert not out.exists()
    # stdin: not frames; a live source asked to run backward
    proc = _live(clip, out, "--mask", clip / "mask.png")
    _, err = proc.communicate(b"hello", timeout=SUBPROCESS_TIMEOUT)
    assert_clean_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", err.decode()), "neither JPEG/PNG")
    jpegs = [p.read_bytes() for p in sorted((clip / "frames").glob("*.jpg"))]
    proc = _live(clip, out, "--mask", clip / "mask.png", "--direction", "both")
    _, err = proc.communicate(b"".join(jpegs), timeout=SUBPROCESS_TIMEOUT)
    assert_clean_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", err.decode()), "only be segmented forward")
    assert not out.exists()
    # a stream that ends before a mask's frame: an error, and the frames done stay on disk
    proc = _live(clip, out, "--mask", clip / "mask.png", "--mask", f"9:{clip / 'mask2.png'}", "--no-drop")
    _, err = proc.communicate(b"".join(jpegs), timeout=SUBPROCESS_TIMEOUT)
    assert_clean_error(subprocess.CompletedProcess(proc.args, proc.returncode, "", err.decode()),
                       "stdin ended after frame 4, before frame 9")
    assert len(_labels(out)) == N

"""Ctrl-C (SIGINT) in the middle of segment, evaluate, score and train: one line, exit status
130, every file on disk complete (no half-written PNG, JSON, video or checkpoint, no
temporary file), and train continues from its last checkpoint exactly as if never stopped.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DAVIS16, ROOT, SUBPROCESS_TIMEOUT, davis_entries, run_cli
from ssmvos.data.io import write_palette_png
from builders import assert_complete

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ssmvos", *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until(condition, proc: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` while ``proc`` runs; fail if it ends first or takes too long."""
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the command ended before {what}: {proc.stdout.read()} {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    """Send Ctrl-C; returns (exit status, stderr)."""
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    return proc.returncode, err


def assert_interrupted(status: int, stderr: str, command: str) -> str:
    """Exit 130, one line on stderr (log lines of train aside), no traceback; returns that line."""
    assert status == 130, stderr
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith(f"ssmvos {command}: interrupted"), stderr
    return lines[0]


def test_ctrl_c_during_segment_leaves_complete_masks_and_video(tmp_path, reference_checkpoint):
    out = tmp_path / "out"
    proc = start("segment", "--demo", "--out", out, "--overlay", out / "overlay.mp4", "--weights",
                 reference_checkpoint, "--input-size", 224, "--device", "cpu", "--no-progress")
    wait_until(lambda: (out / "00002.png").exists(), proc, "the third mask was written")
    assert_interrupted(*interrupt(proc), "segment")
    pngs = sorted(out.glob("*.png"))
    assert 3 <= len(pngs) < 30  # stopped part-way
    assert_complete(out)
    # the overlay is closed on the way out: a playable video of exactly the frames whose masks are done
    import cv2

    video = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = 0
    while video.grab():
        frames += 1
    video.release()
    assert frames == len(pngs)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_ctrl_c_during_evaluate_leaves_complete_outputs(tmp_path, reference_checkpoint):
    split = tmp_path / "split.json"
    split.write_text(json.dumps(davis_entries("blackswan", DAVIS16 / "Annotations" / "480p", [255])))
    save, merged = tmp_path / "save", tmp_path / "merged"
    proc = start("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", save, "--merged-dir",
                 merged, "--input-size", 224, "--device", "cpu", "--no-progress")
    wait_until(lambda: (merged / "blackswan" / "00002.png").exists(), proc, "three merged masks were written")
    assert_interrupted(*interrupt(proc), "evaluate")
    assert 3 <= len(list((save / "blackswan" / "255").glob("*.png"))) < 50
    assert_complete(save)
    assert_complete(merged)


def test_ctrl_c_during_batch_with_videos_at_once_leaves_no_partial_folder(tmp_path, reference_checkpoint):
    frames, annotations = DAVIS16 / "JPEGImages" / "480p", DAVIS16 / "Annotations" / "480p"
    manifest = tmp_path / "videos.csv"
    manifest.write_text("name,video,masks\n" + "".join(
        f"{v},{frames / v},{annotations / v / '00000.png'}\n" for v in ("blackswan", "car-shadow", "libby")))
    out = tmp_path / "out"
    proc = start("batch", "--manifest", manifest, "--out", out, "--videos-at-once", 2, "--weights",
                 reference_checkpoint, "--input-size", 224, "--device", "cpu", "--no-progress")
    wait_until(lambda: len(list(out.glob(".*.tmp/*.png"))) >= 6, proc, "both videos had masks written")
    assert len(list(out.glob(".*.tmp"))) == 2  # two videos under way at once
    assert_interrupted(*interrupt(proc), "batch")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert not [p for p in out.iterdir() if p.is_dir()]  # no video was complete: no folder
    assert json.loads((out / "summary.json").read_text()) == {"videos": []}


def test_ctrl_c_during_score_writes_no_json(tmp_path):
    """The scorer is held on an annotation that is a FIFO (a read that has not returned yet),
    so the interrupt lands mid-run whatever the machine's speed."""
    annotations, results = tmp_path / "annotations", tmp_path / "results"
    for video in ("a", "b"):
        for k in range(3):
            labels = np.zeros((8, 8), np.uint8)
            labels[2:6, 2:6] = 1
            write_palette_png(results / video / f"{k:05d}.png", labels)
            if (video, k) != ("b", 1):
                write_palette_png(annotations / video / f"{k:05d}.png", labels)
    fifo = annotations / "b" / "00001.png"
    os.mkfifo(fifo)
    proc = start("score", "--annotations", annotations, "--results", results, "--workers", 1, "--json",
                 tmp_path / "scores.json")

    writer: list[int] = []

    def reader_waiting() -> bool:
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError:  # no reader yet
            return False

    wait_until(reader_waiting, proc, "score reached the FIFO")
    proc.send_signal(signal.SIGINT)
    os.close(writer[0])
    _, err = proc.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert_interrupted(proc.returncode, err, "score")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations", "results"]  # no JSON, whole or partial


def _train(model_dir: Path, split: Path, *extra) -> list:
    return ["train", "--model-dir", model_dir, "--split", split, "--input-size", 224, 64, "--keep-topk", 8,
            "--batch-size", 2, "--no-pretrained", "--device", "cpu", "--num-workers", 0, "--log-step", 1, *extra]


def test_ctrl_c_during_train_then_resume_exactly(tmp_path):
    ann = DAVIS16 / "Annotations" / "480p"
    split = tmp_path / "split.json"
    split.write_text(json.dumps(davis_entries("blackswan", ann, [255], frames=3)
                                + davis_entries("car-shadow", ann, [255], frames=3)))
    run = tmp_path / "run"
    proc = start(*_train(run, split, "--save-step", 1, "--max-steps", 100))
    wait_until(lambda: (run / "checkpoints" / "0.pt").exists(), proc, "the first checkpoint was saved")
    line = assert_interrupted(*interrupt(proc), "train")
    saved = sorted(int(p.stem) for p in (run / "checkpoints").glob("*.pt"))
    last = run / "checkpoints" / f"{saved[-1]}.pt"
    assert f"continue with --resume {last} --resume-step" in line
    assert_complete(run)
    assert saved == list(range(len(saved)))

    # the same command again would replace the run's checkpoints: refused, saying how to continue
    again = run_cli(*_train(run, split, "--save-step", 1, "--max-steps", 100), env=ENV)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"already holds a run (checkpoints up to step {saved[-1]}); continue it with --resume {last}" in again.stderr

    # continuing from the last checkpoint gives the weights of a run that was never stopped
    end = saved[-1] + 2
    resumed = run_cli(*_train(run, split, "--resume", last, "--resume-step", "--max-steps", end, "--save-step", end),
                      env=ENV)  # one thread, as the interrupted run: the same arithmetic bit for bit
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    uninterrupted = run_cli(*_train(straight, split, "--max-steps", end, "--save-step", end), env=ENV)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    a = torch.load(run / "checkpoints" / f"{end - 1}.pt", map_location="cpu", weights_only=True)
    b = torch.load(straight / "checkpoints" / f"{end - 1}.pt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == end - 1
    assert all(torch.equal(a["model_dict"][k], b["model_dict"][k]) for k in b["model_dict"])

"""`ssmvos batch`: many videos from a manifest, each folder byte-equal to `ssmvos segment`'s,
complete or absent; resumable; bad rows fail alone; torchrun with 2 processes; Ray with 2 CPU
workers, one of them killed mid-run; COCO RLE next to the PNGs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from builders import TWO_OBJECT, assert_complete
from conftest import DAVIS16, ROOT, SUBPROCESS_TIMEOUT
from ssmvos.cli import main
from ssmvos.data.io import read_mask, write_palette_png

W, H = 224, 200  # small frames; the network runs at 224 px
CLIPS = {"libby": 4, "blackswan": 3, "car-shadow": 2}  # name -> frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory, reference_checkpoint) -> Path:
    """Three small clips (frame folders, one also as an mp4 file) with frame-0 masks, a CSV
    manifest (relative paths) and weights.pt linking to the reference checkpoint."""
    root = tmp_path_factory.mktemp("clips")
    for name, n in CLIPS.items():
        frames = sorted((DAVIS16 / "JPEGImages" / "480p" / name).glob("*.jpg"))[:n]
        (root / name).mkdir()
        for i, f in enumerate(frames):
            cv2.imwrite(str(root / name / f"{i:05d}.jpg"), cv2.resize(cv2.imread(str(f)), (W, H), cv2.INTER_AREA))
        ann = TWO_OBJECT / "00000.png" if name == "libby" else DAVIS16 / "Annotations" / "480p" / name / "00000.png"
        labels = cv2.resize(read_mask(ann), (W, H), interpolation=cv2.INTER_NEAREST)
        write_palette_png(root / f"{name}.png", labels if name == "libby" else (labels > 0).astype(np.uint8))
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for f in sorted((root / "blackswan").glob("*.jpg")):
        writer.write(cv2.imread(str(f)))
    writer.release()
    # frame 2 of libby: a correction of object 1, as a second mask item
    fix = cv2.resize(read_mask(TWO_OBJECT / "00002.png"), (W, H), interpolation=cv2.INTER_NEAREST)
    write_palette_png(root / "libby_fix2.png", fix)
    (root / "videos.csv").write_text("name,video,masks\n"
                                     "libby,libby,libby.png;2:libby_fix2.png\n"
                                     "blackswan,clip.mp4,0:blackswan.png\n"
                                     "car-shadow,car-shadow,car-shadow.png\n")
    (root / "weights.pt").symlink_to(reference_checkpoint)
    return root


FLAGS = ["--input-size", "224", "--device", "cpu", "--no-progress"]


def _batch(clips: Path, out: Path, *extra) -> int:
    return main(["batch", "--manifest", str(clips / "videos.csv"), "--out", str(out), "--weights",
                 str(clips / "weights.pt"), *FLAGS, *map(str, extra)])


def _summary(out: Path) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads((out / "summary.json").read_text())["videos"]}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local(clips, tmp_path_factory) -> Path:
    """One local batch over the three clips (one torch thread: the same arithmetic as one
    torchrun or Ray worker, so the files compare byte for byte)."""
    out = tmp_path_factory.mktemp("local") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _batch(clips, out, "--format", "coco") == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_each_folder_equals_segment_byte_for_byte(clips, local, tmp_path, capsys):
    summary = _summary(local)
    assert [v["status"] for v in summary.values()] == ["done"] * 3
    assert {k: v["frames"] for k, v in summary.items()} == CLIPS
    assert sorted(p.name for p in local.iterdir()) == ["blackswan", "car-shadow", "libby", "summary.json"]
    assert_complete(local)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["segment", "--frames", str(clips / "libby"), "--mask", str(clips / "libby.png"),
                     "--mask", f"2:{clips / 'libby_fix2.png'}", "--out", str(tmp_path / "seg"), "--weights",
                     str(clips / "weights.pt"), *FLAGS]) == 0
    finally:
        torch.set_num_threads(threads)
    want = _files(tmp_path / "seg")
    assert len(want) == CLIPS["libby"]
    got = {k: v for k, v in _files(local / "libby").items() if k.endswith(".png")}
    assert got == want
    assert set(np.unique(read_mask(local / "libby" / "00003.png"))) == {0, 1, 2}


def test_coco_json_decodes_to_the_pngs_objects(local):
    from pycocotools import mask as coco_mask

    data = json.loads((local / "libby" / "coco.json").read_text())
    (video,) = data["videos"]
    assert (video["name"], video["height"], video["width"]) == ("libby", H, W)
    assert [f["frame"] for f in video["frames"]] == list(range(CLIPS["libby"]))
    for entry in video["frames"]:
        labels = read_mask(local / "libby" / f"{entry['frame']:05d}.png")
        ids = sorted(int(i) for i in np.unique(labels) if i)
        assert sorted(map(int, entry["objects"])) == ids
        for obj, rle in entry["objects"].items():
            assert np.array_equal(coco_mask.decode(rle).astype(bool), labels == int(obj))


def test_rerun_skips_complete_folders_and_a_bad_row_fails_alone(clips, local, tmp_path, capsys):
    """A rerun skips the complete folders and does the rest; a row with a missing video, one
    with a mask of another size, a duplicate and an unsafe name fail alone, with one line
    each, and leave no folder behind (--overwrite: see the next test)."""
    out = tmp_path / "out"
    shutil.copytree(local, out)
    shutil.rmtree(out / "car-shadow")  # as if the first run had stopped before it
    stamp = (out / "libby" / "00001.png").stat().st_mtime_ns
    bad = tmp_path / "bad.png"
    write_palette_png(bad, np.ones((10, 10), np.uint8))
    manifest = tmp_path / "m.csv"
    manifest.write_text((clips / "videos.csv").read_text().replace(",libby,", f",{clips / 'libby'},")
                        .replace("libby.png;2:libby_fix2.png", f"{clips / 'libby.png'};2:{clips / 'libby_fix2.png'}")
                        .replace("clip.mp4,0:blackswan.png", f"{clips / 'clip.mp4'},0:{clips / 'blackswan.png'}")
                        .replace("car-shadow,car-shadow,car-shadow.png",
                                 f"car-shadow,{clips / 'car-shadow'},{clips / 'car-shadow.png'}")
                        + f"missing,{clips / 'nope'},{clips / 'libby.png'}\n"
                        f"wrong-size,{clips / 'car-shadow'},{bad}\n"
                        f"car-shadow,{clips / 'libby'},{clips / 'libby.png'}\n"
                        f"../x,{clips / 'libby'},{clips / 'libby.png'}\n")
    capsys.readouterr()
    status = main(["batch", "--manifest", str(manifest), "--out", str(out), "--weights", str(clips / "weights.pt"),
                   *FLAGS])
    assert status == 1
    videos = json.loads((out / "summary.json").read_text())["videos"]
    assert [(v["name"], v["status"]) for v in videos] == [
        ("libby", "skipped"), ("blackswan", "skipped"), ("car-shadow", "done"), ("missing", "failed"),
        ("wrong-size", "failed"), ("car-shadow", "failed"), ("../x", "failed")]
    assert videos[0]["frames"] == CLIPS["libby"] and videos[2]["frames"] == CLIPS["car-shadow"]
    assert (out / "libby" / "00001.png").stat().st_mtime_ns == stamp
    assert sorted(_files(out / "car-shadow")) == [f"{i:05d}.png" for i in range(CLIPS["car-shadow"])]
    errors = [v["error"] for v in videos[3:]]
    assert all(e and "\n" not in e for e in errors)
    assert "nope" in errors[0] and "bad.png" in errors[1] and "line 7" in errors[2] and "'../x'" in errors[3]
    # no partial folder of a failed video, no temporary folder, no ../x outside
    assert sorted(p.name for p in out.iterdir()) == ["blackswan", "car-shadow", "libby", "summary.json"]
    assert not (out.parent / "x").exists()
    err = capsys.readouterr().err
    assert "failed: missing:" in err and "Traceback" not in err
    # asked again for COCO: a folder done as PNGs only gets its coco.json from its PNGs (it was
    # skipped as complete and never got one), one that has it keeps it
    assert not (out / "car-shadow" / "coco.json").exists()
    kept = (out / "libby" / "coco.json").read_bytes()
    assert main(["batch", "--manifest", str(manifest), "--out", str(out), "--weights", str(clips / "weights.pt"),
                 "--format", "coco", *FLAGS]) == 1
    (video,) = json.loads((out / "car-shadow" / "coco.json").read_text())["videos"]
    assert [f["frame"] for f in video["frames"]] == list(range(CLIPS["car-shadow"]))
    assert (out / "libby" / "coco.json").read_bytes() == kept
    assert (out / "car-shadow" / "00000.png").stat().st_mtime_ns < (out / "car-shadow" / "coco.json").stat().st_mtime_ns


def test_a_failure_midway_leaves_no_partial_folder(clips, tmp_path, monkeypatch):
    """A video whose writing fails after some frames: no folder, no temporary folder, one line
    in its outcome; the next videos still finish (the network: the tests' stub runner)."""
    from ssmvos.inference import segment as segment_module
    from ssmvos.inference.batch import SegmentOptions, read_manifest, run_video
    from stub_network import stub_predictor

    real, calls = segment_module.write_palette_png, {"n": 0}

    def failing(path, labels):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device", str(path))
        return real(path, labels)

    monkeypatch.setattr(segment_module, "write_palette_png", failing)
    predictor, _ = stub_predictor(224)
    out = tmp_path / "out"
    outcomes = [run_video(predictor, job, out) for job in read_manifest(clips / "videos.csv")]
    assert [o.status for o in outcomes] == ["failed", "done", "done"]
    assert "no space left" in outcomes[0].error.lower() and "\n" not in outcomes[0].error
    assert sorted(p.name for p in out.iterdir()) == ["blackswan", "car-shadow"]
    assert_complete(out)

    # the overlay goes to the overlay folder once the video is complete; a failed video has none
    monkeypatch.setattr(segment_module, "write_palette_png", real)
    options = SegmentOptions(overlay_dir=str(tmp_path / "overlays"))
    jobs = read_manifest(clips / "videos.csv")
    broken = replace(jobs[2], name="broken", masks=((0, str(clips / "no-such.png")),))
    outcomes = [run_video(predictor, job, tmp_path / "again", options) for job in (jobs[2], broken)]
    assert [o.status for o in outcomes] == ["done", "failed"] and "no-such.png" in outcomes[1].error
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["car-shadow.mp4"]
    assert sorted(p.name for p in (tmp_path / "again" / "car-shadow").iterdir()) == ["00000.png", "00001.png"]

    # a rerun skips the complete folder; overwrite redoes it (the old folder replaced whole)
    (tmp_path / "again" / "car-shadow" / "stale.txt").write_text("from before")
    assert run_video(predictor, jobs[2], tmp_path / "again").status == "skipped"
    assert run_video(predictor, jobs[2], tmp_path / "again", overwrite=True).status == "done"
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["car-shadow"]
    assert sorted(p.name for p in (tmp_path / "again" / "car-shadow").iterdir()) == ["00000.png", "00001.png"]


def test_folder_manifest_and_malformed_manifests(clips, tmp_path, capsys):
    from ssmvos.inference.batch import read_manifest

    layout = tmp_path / "davis"
    layout.mkdir()
    for name in ("car-shadow", "blackswan"):
        (layout / name).symlink_to(clips / name)
        shutil.copy(clips / f"{name}.png", layout / f"{name}.png")
    (layout / "orphan.png").write_bytes((clips / "car-shadow.png").read_bytes())
    (layout / "results").mkdir()  # the output folder inside the manifest folder is no video
    jobs = read_manifest(layout, layout / "results")
    assert [(j.name, j.masks, j.error is None) for j in jobs] == [
        ("blackswan", ((0, str(layout / "blackswan.png")),), True),
        ("car-shadow", ((0, str(layout / "car-shadow.png")),), True), ("orphan", (), False)]
    for text, needle in (("", "empty"), ("video,name,masks\nx,y,z\n", "header name,video,masks"),
                         ("name,video\nx,y\n", "header")):
        (tmp_path / "m.csv").write_text(text)
        status = main(["batch", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), *FLAGS])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 1 and len(err) == 1 and needle in err[0] and "m.csv" in err[0], err
        assert not (tmp_path / "o").exists()


def test_plan_longest_first_balances_ranks():
    from ssmvos.inference.batch import VideoJob, plan

    jobs = [VideoJob(f"v{k}", "", frames=n, row=k) for k, n in enumerate([10, 90, 40, 50, 10, 5])]
    shares = plan(jobs, 2)
    assert [[j.name for j in s] for s in shares] == [["v1", "v0", "v5"], ["v3", "v2", "v4"]]
    assert [sum(j.frames for j in s) for s in shares] == [105, 100]
    assert sorted(j.name for s in plan(jobs, 4) for j in s) == sorted(j.name for j in jobs)


def test_torchrun_two_processes_share_the_videos(clips, local, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "ssmvos", "batch", "--manifest", str(clips / "videos.csv"), "--out", str(out),
                           "--weights", str(clips / "weights.pt"), "--format", "coco", *FLAGS],
                          env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert "3 done, 0 skipped, 0 failed (9 frames)" in proc.stdout and "2 process(es)" in proc.stdout
    assert proc.stdout.count("done,") == 1  # one summary line, from rank 0
    assert [v["name"] for v in json.loads((out / "summary.json").read_text())["videos"]] == list(CLIPS)
    for name in CLIPS:
        assert _files(out / name) == _files(local / name), name


@pytest.mark.skipif(not shutil.which("true"), reason="posix")
def test_ray_two_cpu_workers_with_one_killed_mid_run(clips, local, tmp_path):
    ray = pytest.importorskip("ray")
    import signal

    from ssmvos.inference.batch import BatchConfig, PredictorConfig, SegmentOptions, batch

    killed: list[tuple[str, int]] = []

    def dispatched(name: str, pid: int) -> None:
        if not killed:  # the first worker given a video dies while it runs it
            killed.append((name, pid))
            os.kill(pid, signal.SIGKILL)

    config = BatchConfig(str(clips / "videos.csv"), str(tmp_path / "out"),
                         PredictorConfig(str(clips / "weights.pt"), (224, 224), device="cpu"),
                         SegmentOptions(format="coco"), engine="ray", ray_workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "src")}})
    try:
        result = batch(config, on_dispatch=dispatched)
        again = batch(config)  # a rerun: every folder is complete, so no worker is needed
    finally:
        ray.shutdown()
    assert [o.status for o in again.outcomes] == ["skipped"] * len(CLIPS)
    assert killed and result.retried >= 1
    assert [(o.name, o.status) for o in result.outcomes] == [(n, "done") for n in CLIPS]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [*sorted(CLIPS), "summary.json"]
    for name in CLIPS:
        assert _files(out / name) == _files(local / name), name


def _agreement(got: Path, want: Path) -> float:
    """The share of label pixels two folders of PNGs agree on (the same frames in both)."""
    names = sorted(p.name for p in want.glob("*.png"))
    assert sorted(p.name for p in got.glob("*.png")) == names
    return float(np.mean([np.mean(read_mask(got / n) == read_mask(want / n)) for n in names]))


def test_videos_at_once_share_the_network_calls_and_match_one_at_a_time(clips, local, tmp_path, monkeypatch, capsys):
    from ssmvos.inference import batch as batch_module

    made = []
    original = batch_module.Together.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(batch_module.Together, "__init__", keep)
    out = tmp_path / "out"
    assert _batch(clips, out, "--videos-at-once", "3") == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    stats = made[0].shared.stats
    # network frames: libby 1 and 3 (2 objects; both are given on frame 2), blackswan 1 and 2,
    # car-shadow 1: five calls one video at a time, two together (4 rows, then 3)
    assert dict(stats) == {"rounds": 2, "calls": 2, "rows": 2 * 2 + 2 + 1}
    assert [v["status"] for v in _summary(out).values()] == ["done"] * 3
    assert_complete(out)
    for name in CLIPS:
        assert _agreement(out / name, local / name) >= 0.999, name
    # the threads take their turns and their videos in one fixed order: a rerun writes the same files
    assert _batch(clips, tmp_path / "again", "--videos-at-once", "3") == 0
    for name in CLIPS:
        assert _files(tmp_path / "again" / name) == _files(out / name), name


@pytest.mark.skipif(not shutil.which("true"), reason="posix")
def test_ray_worker_with_two_videos_at_once_killed_mid_run(clips, local, tmp_path):
    ray = pytest.importorskip("ray")
    import signal

    from ssmvos.inference.batch import BatchConfig, PredictorConfig, SegmentOptions, batch

    killed: list[tuple[str, int]] = []
    dispatched_to: list[int] = []

    def dispatched(name: str, pid: int) -> None:
        dispatched_to.append(pid)
        if len(dispatched_to) == 2:  # the worker holds two videos: both are lost, and run again
            killed.append((name, pid))
            os.kill(pid, signal.SIGKILL)

    config = BatchConfig(str(clips / "videos.csv"), str(tmp_path / "out"),
                         PredictorConfig(str(clips / "weights.pt"), (224, 224), device="cpu"),
                         SegmentOptions(), engine="ray", ray_workers=1, progress=False, videos_at_once=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT / "src")}})
    try:
        result = batch(config, on_dispatch=dispatched)
    finally:
        ray.shutdown()
    assert dispatched_to[0] == dispatched_to[1]  # one actor, two videos in flight on it
    assert killed and result.retried >= 2
    assert [(o.name, o.status) for o in result.outcomes] == [(n, "done") for n in CLIPS]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [*sorted(CLIPS), "summary.json"]
    for name in CLIPS:
        assert _agreement(out / name, local / name) >= 0.999, name


def test_ray_engine_without_ray_names_the_extra(monkeypatch):
    from ssmvos.errors import SSMVOSError
    from ssmvos.inference.batch import _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray has
    with pytest.raises(SSMVOSError, match=r"pip install 'ssmvos\[ray\]'"):
        _import_ray()

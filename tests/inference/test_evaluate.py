"""`ssmvos evaluate` bad inputs, and the README's main job (`segment --demo`) with a local file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DAVIS16, REFERENCE, assert_clean_error, davis_entries, run_cli
from ssmvos.data.io import read_mask


@pytest.fixture(scope="module")
def weights(reference_checkpoint):
    return reference_checkpoint


@pytest.fixture()
def split(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps(davis_entries("blackswan", DAVIS16 / "Annotations" / "480p", [255], frames=3)))
    return path


def _evaluate(split, resume, save_dir, *extra):
    return run_cli("evaluate", "--split", split, "--resume", resume, "--save-dir", save_dir,
                   "--input-height", 224, "--input-width", 224, "--device", "cpu", "--no-progress", *extra)


def test_evaluate_bad_inputs(tmp_path, split, weights):
    out = tmp_path / "out"
    assert_clean_error(_evaluate(tmp_path / "missing.json", weights, out), "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    assert_clean_error(_evaluate(tmp_path / "bad.json", weights, out), "bad.json")
    (tmp_path / "empty.json").write_text("[]")
    assert_clean_error(_evaluate(tmp_path / "empty.json", weights, out), "empty.json")
    assert_clean_error(_evaluate(split, tmp_path / "nope.pt", out), "nope.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert_clean_error(_evaluate(split, tmp_path / "text.pt", out), "text.pt")
    assert_clean_error(_evaluate(split, weights, out, "--encoder", "resnet101"), "does not fit")
    proc = run_cli("evaluate", "--split", split, "--resume", weights, "--save-dir", out, "--input-height", 128,
                   "--device", "cpu")
    assert_clean_error(proc, "128")
    entries = json.loads(split.read_text())
    entries[1]["image_path"] += ".gone"
    (tmp_path / "gone.json").write_text(json.dumps(entries))
    assert_clean_error(_evaluate(tmp_path / "gone.json", weights, out), ".gone")
    assert not out.exists()


def test_readme_main_job_runs_the_bundled_demo_with_a_local_file(tmp_path, weights):
    proc = run_cli("segment", "--demo", "--out", tmp_path / "demo", "--overlay", tmp_path / "demo" / "overlay.mp4",
                   "--weights", weights, "--input-size", 224, "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    pngs = sorted((tmp_path / "demo").glob("*.png"))
    assert len(pngs) == 30
    assert read_mask(pngs[0]).shape == (480, 854)
    assert np.array_equal(read_mask(pngs[0]) > 0, read_mask(pngs[0]) == 1)
    assert (tmp_path / "demo" / "overlay.mp4").stat().st_size > 0


def test_offline_published_weights_say_what_to_do(tmp_path):
    proc = run_cli("segment", "--demo", "--out", tmp_path / "demo", "--device", "cpu",
                   env={"SSMVOS_HOME": str(tmp_path / "home"), "SSMVOS_WEIGHTS_URL": "http://127.0.0.1:9/"})
    assert_clean_error(proc, "--weights")
    assert not (tmp_path / "demo").exists()
    assert not list((tmp_path / "home").rglob("*.pt*"))


def test_torchrun_shards_videos_and_matches_one_process(tmp_path, weights):
    import os
    import subprocess
    import sys

    from conftest import ROOT, SUBPROCESS_TIMEOUT

    ann = DAVIS16 / "Annotations" / "480p"
    entries = (davis_entries("blackswan", ann, [255], frames=3) + davis_entries("car-shadow", ann, [255], frames=3)
               + davis_entries("libby", ann, [255], frames=3))
    split = tmp_path / "split.json"
    split.write_text(json.dumps(entries))
    args = ["--split", split, "--resume", weights, "--input-height", 224, "--input-width", 224, "--device", "cpu",
            "--no-progress"]
    # one thread in every process (torchrun's default), so the arithmetic is the same bit for bit
    one = run_cli("evaluate", *args, "--save-dir", tmp_path / "one", "--merged-dir", tmp_path / "one_m",
                  env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
                          "-m", "ssmvos", "evaluate", *map(str, args), "--save-dir", str(tmp_path / "two"),
                          "--merged-dir", str(tmp_path / "two_m")], env=env, capture_output=True, text=True,
                         timeout=SUBPROCESS_TIMEOUT)
    assert two.returncode == 0, two.stderr
    assert "3 videos, 3 objects, 9 frames" in two.stdout and "2 x cpu" in two.stdout
    for a, b in (("one", "two"), ("one_m", "two_m")):
        files = sorted(p.relative_to(tmp_path / a) for p in (tmp_path / a).rglob("*.png"))
        assert files == sorted(p.relative_to(tmp_path / b) for p in (tmp_path / b).rglob("*.png"))
        for f in files:
            assert np.array_equal(read_mask(tmp_path / a / f), read_mask(tmp_path / b / f)), f


def test_device_merge_and_process_pool_write_the_same_files(tmp_path, model):
    """evaluate with the merge and quantisation where the network runs (device geometry, here
    on the CPU) and PNGs encoded in processes: the same files, byte for byte, as the host's
    merge of the same soft masks (``ssmvos merge``), and as threads writing them."""
    from ssmvos.inference.engine import Engine
    from ssmvos.inference.evaluate import evaluate_split
    from ssmvos.inference.merge import merge_folder

    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p"
    entries = davis_entries("libby", ann, [1, 2], frames=3)

    def files(folder):
        return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.png"))}

    runs = {}
    for geometry, pool in ((True, "threads"), (True, "processes")):
        engine = Engine.for_model(model, (224, 224), device_geometry=geometry)
        out = tmp_path / f"{geometry}-{pool}"
        evaluate_split(entries, engine, out / "per", out / "merged", progress=False, io_workers=2, png_pool=pool)
        runs[geometry, pool] = out
    device = runs[True, "threads"]
    assert len(files(device / "per")) == 6 and len(files(device / "merged")) == 3
    assert files(runs[True, "processes"]) == files(device)
    merge_folder(device / "per", tmp_path / "host_merged", progress=False)
    assert files(tmp_path / "host_merged") == files(device / "merged")

"""benchmarks/gpu_check.py --smoke: the GPU check runs end to end on the CPU (tiny sizes), from
the DAVIS frames vendored in tests/fixtures."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, SUBPROCESS_TIMEOUT


def test_gpu_check_smoke_runs_every_section(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--device", "cpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["failures"] == []
    assert report["environment"]["device"] == "cpu"
    # correctness is the golden tests' CUDA cases, run by pytest (-m cuda): on a CPU all skip
    golden = report["golden_tests"]
    assert golden["exit_status"] == 0 and golden["failures"] == golden["errors"] == 0
    assert golden["tests"] >= 10 and golden["skipped"] == golden["tests"]  # no GPU here
    # reduced precisions against the original's pipeline: reported figures
    assert set(report["precision"]["bf16"]) == {"blackswan+car-shadow", "libby (2 objects)"}
    assert all(0 <= r["merged_agreement_with_original"] <= 1 for r in report["precision"]["bf16"].values())
    # every measurement produced figures
    assert report["inference"]["original_loop_fp32"] > 0
    assert report["inference"]["bf16"]["object_frames_per_s"] > 0
    assert set(report["batched"]["fp32"]) == {"1", "2"}
    assert report["evaluate"] and report["train"]["original_fp32"] > 0
    # ssmvos batch over the vendored videos, one at a time and two at once sharing the calls
    videos = report["videos"]["bf16"]
    assert set(videos) == {"1", "2"} and videos["2"]["rows"] > videos["2"]["calls"]
    assert report["resume"]["resumed_vs_uninterrupted"][1] == 0.0  # bitwise on the CPU
    sections = {row[0] for row in report["rows"]}
    assert {"correctness", "precision", "inference", "batched", "evaluate", "videos", "train", "compile"} <= sections
    assert "gpu_check finished" in proc.stdout

"""benchmarks/gpu_check.py --smoke: the GPU check runs end to end on the CPU (tiny sizes)."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import DAVIS16, ROOT, SHARED, SUBPROCESS_TIMEOUT, require_shared


def test_gpu_check_smoke_runs_every_section(tmp_path):
    require_shared(DAVIS16)
    require_shared(SHARED / "reference" / "pipeline_two_object_libby")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--device", "cpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["failures"] == []
    assert report["environment"]["device"] == "cpu"
    # the faithful checks ran and passed
    assert report["forward"]["fp32"]["relative_error"] <= 1e-4
    assert set(report["pipeline"]["fp32"]) == {"blackswan+car-shadow", "libby (2 objects)"}
    assert all(r["merged_agreement_with_original"] >= 0.995 for r in report["pipeline"]["fp32"].values())
    # every measurement produced figures
    assert report["inference"]["original_loop_fp32"] > 0
    assert report["inference"]["bf16"]["object_frames_per_s"] > 0
    assert set(report["batched"]["fp32"]) == {"1", "2"}
    assert report["evaluate"] and report["train"]["original_fp32"] > 0
    assert report["resume"]["resumed_vs_uninterrupted"][1] == 0.0  # bitwise on the CPU
    sections = {row[0] for row in report["rows"]}
    assert {"correctness", "inference", "batched", "evaluate", "train", "compile"} <= sections
    assert "gpu_check finished" in proc.stdout

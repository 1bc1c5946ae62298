"""A fresh clone (no ../shared, no datasets/, no $SSMVOS_TEST_DATA) runs every golden test.

The golden tests compare with the original code's outputs (tests/fixtures/reference) on DAVIS
frames vendored in tests/fixtures/DAVIS2016. The only way for a test to reach other DAVIS
data is the ``davis2016_full`` fixture (which skips with the reason where there is none, and
fails inside a golden test). This guard collects the suite in a subprocess as a fresh clone
would (the variable unset, run from an empty folder) and checks that no golden test needs
data outside the repository, and that the tests which do are the known few.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import DAVIS16, INVENTORY_VARIABLE, REFERENCE, ROOT, SUBPROCESS_TIMEOUT, TEST_DATA_VARIABLE

#: the golden tests the issue names: each must exist, be marked golden and have a CPU case
GOLDEN = {
    "tests/model/test_model.py::test_forward_reproduces_the_original",
    "tests/model/test_model.py::test_state_dict_keys_and_shapes_equal_the_original",
    "tests/runtime/test_runtime.py::test_runner_reproduces_the_original_forward",
    "tests/runtime/test_onnx.py::test_exported_graphs_reproduce_the_original_forward",
    "tests/inference/test_pipeline_reference.py::test_evaluate_and_merge_reproduce_blackswan_and_car_shadow",
    "tests/inference/test_pipeline_reference.py::test_two_objects_batched_with_in_memory_merge",
    "tests/inference/test_sam2_compat.py::test_a_sam2_client_runs_unchanged_and_gets_the_originals_masks",
    "tests/inference/test_predictor.py::test_one_mask_at_frame_0_forward_reproduces_the_original",
    "tests/scoring/test_score.py::test_equal_to_the_official_evaluation",
}
#: the only tests that need a full DAVIS 2016 (the 20-video val list): skipped on a fresh clone
NEEDS_FULL_DAVIS = {
    "tests/data/test_index.py::test_davis2016_val_from_the_full_data",
    "tests/data/test_index.py::test_cli_indexes_every_dataset",
    "tests/data/test_index.py::test_cli_default_layout_and_nothing_found",
}


def _inventory(tmp_path) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if k != TEST_DATA_VARIABLE}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               **{INVENTORY_VARIABLE: str(tmp_path / "inventory.json")})
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), str(ROOT / "tests")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp_path / "inventory.json").read_text())


def test_no_golden_test_needs_data_outside_the_repository(tmp_path):
    inventory = _inventory(tmp_path)
    function = {nodeid: nodeid.split("[")[0] for nodeid in inventory}
    golden = {n for n, item in inventory.items() if "golden" in item["markers"]}
    assert GOLDEN <= {function[n] for n in golden}, GOLDEN - {function[n] for n in golden}
    # each of them runs on the CPU (their CUDA cases skip without a GPU)
    on_cpu = {function[n] for n in golden if "cuda" not in inventory[n]["markers"]}
    assert GOLDEN <= on_cpu, GOLDEN - on_cpu
    assert any("cuda" in inventory[n]["markers"] for n in golden)  # and some have CUDA cases
    # nothing golden reaches for a full DAVIS 2016; what does is the known few
    full = {n for n, item in inventory.items() if "davis2016_full" in item["fixtures"]}
    assert not full & golden, sorted(full & golden)
    assert {function[n] for n in full} == NEEDS_FULL_DAVIS
    # the vendored data is there (checkouts without it, e.g. a sparse one, fail here, not skip)
    for video, frames in (("blackswan", 50), ("car-shadow", 40), ("libby", 49)):
        assert len(list((DAVIS16 / "JPEGImages" / "480p" / video).glob("*.jpg"))) == frames, video
        assert len(list((DAVIS16 / "Annotations" / "480p" / video).glob("*.png"))) == frames, video
    assert len(list((REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby").glob("*.png"))) == 49


def test_tests_reach_shared_data_only_through_the_lookup():
    """``../shared`` is named in one place: conftest's DAVIS 2016 lookup (after
    ``$SSMVOS_TEST_DATA`` and ``datasets/DAVIS2016``)."""
    needles = ('/ "shared"', '"../shared', "'../shared")  # a path built in code, not prose
    named = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "tests").rglob("*.py"))
             if p != Path(__file__) and any(n in p.read_text() for n in needles)]
    assert named == ["tests/conftest.py"]

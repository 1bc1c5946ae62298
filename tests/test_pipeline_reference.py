"""The whole inference chain against the original's outputs under reference weights.

`ssmvos evaluate` + `ssmvos merge` at 256×256 on DAVIS 2016 blackswan and car-shadow and
on the two-object libby variant must reproduce ../shared/reference (tolerances from its
README: mean |soft mask difference| ≤ 1/255, merged masks equal on ≥ 99.5 % of pixels).
"""
from __future__ import annotations

import json

import pytest

from conftest import DAVIS16, REFERENCE, davis_entries, label_agreement, mean_soft_difference, require_shared, run_cli


def _split(tmp_path, entries):
    path = tmp_path / "split.json"
    path.write_text(json.dumps(entries))
    return path


def test_evaluate_and_merge_reproduce_blackswan_and_car_shadow(tmp_path, reference_checkpoint):
    require_shared(REFERENCE / "pipeline_blackswan_car-shadow")
    ann = DAVIS16 / "Annotations" / "480p"
    split = _split(tmp_path, davis_entries("blackswan", ann, [255]) + davis_entries("car-shadow", ann, [255]))
    proc = run_cli("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", tmp_path / "per",
                   "--input-height", 256, "--input-width", 256, "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "90 frames" in proc.stdout and "frames/s" in proc.stdout
    proc = run_cli("merge", "-i", tmp_path / "per", "-o", tmp_path / "merged")
    assert proc.returncode == 0, proc.stderr

    ref = REFERENCE / "pipeline_blackswan_car-shadow"
    diff, count = mean_soft_difference(tmp_path / "per", ref / "per_object")
    assert count == 90
    assert diff <= 1.0
    assert label_agreement(tmp_path / "merged", ref / "merged") >= 0.995


def test_two_objects_batched_with_in_memory_merge(tmp_path, reference_checkpoint):
    ann = require_shared(REFERENCE / "davis_two_object" / "Annotations" / "480p")
    split = _split(tmp_path, davis_entries("libby", ann, [1, 2]))
    proc = run_cli("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", tmp_path / "per",
                   "--input-height", 256, "--input-width", 256, "--device", "cpu", "--no-progress",
                   "--merged-dir", tmp_path / "merged", "--score", "--score-json", tmp_path / "jf.json")
    assert proc.returncode == 0, proc.stderr
    # --score after merging: figures equal to scoring the merged folder separately
    jf = json.loads((tmp_path / "jf.json").read_text())
    assert set(jf["per_object"]) == {"libby_1", "libby_2"}
    proc = run_cli("score", "--annotations", ann, "--results", tmp_path / "merged", "--sequences", "libby",
                   "--json", tmp_path / "jf2.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "jf2.json").read_text()) == jf
    ref = REFERENCE / "pipeline_two_object_libby"
    diff, count = mean_soft_difference(tmp_path / "per", ref / "per_object")
    assert count == 98 and diff <= 1.0
    assert label_agreement(tmp_path / "merged", ref / "merged") >= 0.995
    # the in-memory merge equals merging the written files afterwards
    assert run_cli("merge", "-i", tmp_path / "per", "-o", tmp_path / "merged2").returncode == 0
    assert label_agreement(tmp_path / "merged2", tmp_path / "merged") == 1.0

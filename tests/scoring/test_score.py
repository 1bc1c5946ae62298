"""Folders -> J&F figures: equal to the official DAVIS evaluation, official semantics, clean errors."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders import write_png
from conftest import FIXTURES, assert_clean_error, run_cli
from ssmvos.errors import SSMVOSError
from ssmvos.scoring import score_folder
from ssmvos.scoring.score import read_label_png

METRICS = FIXTURES / "metrics"
SEQUENCES = ["blackswan", "car-shadow", "libby", "motocross-jump"]
FIGURES = ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")


def official() -> dict:
    return json.loads((METRICS / "official_metrics.json").read_text())


def assert_equal_to_official(got: dict, want: dict) -> None:
    for key in FIGURES + ("JF_mean",):
        assert got[key] == pytest.approx(want["global_"][key], abs=1e-6), key
    assert sorted(got["per_object"]) == sorted(want["per_object"])
    for name, figures in want["per_object"].items():
        for key in FIGURES:
            assert got["per_object"][name][key] == pytest.approx(figures[key], abs=1e-6), (name, key)


def write_video(root: Path, video: str, frames: list[np.ndarray], skip: tuple[int, ...] = ()) -> None:
    for t, labels in enumerate(frames):
        if t not in skip:
            write_png(root / video / f"{t:05d}.png", labels)


# ------------------------------------------------------------------ against the official code

@pytest.mark.golden
def test_equal_to_the_official_evaluation():
    got = score_folder(METRICS / "annotations", METRICS / "results", fmt="davis2016", workers=2)
    assert_equal_to_official(got, official())


def test_davis_root_layout_and_sequence_selection(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "480p").symlink_to((METRICS / "annotations").resolve(), target_is_directory=True)
    got = score_folder(tmp_path, METRICS / "results", fmt="davis2016", sequences=["libby"], workers=1)
    assert list(got["per_object"]) == ["libby_1"]
    want = official()["per_object"]["libby_1"]
    for key in FIGURES:
        assert got["per_object"]["libby_1"][key] == pytest.approx(want[key], abs=1e-6)
        assert got[key] == pytest.approx(want[key], abs=1e-6)  # one object: global = its figures


def test_label_png_reading_gives_indices_for_gray_and_palette(tmp_path):
    gray = METRICS / "annotations" / "blackswan" / "00000.png"
    palette = METRICS / "results" / "blackswan" / "00000.png"
    for path in (gray, palette):
        np.testing.assert_array_equal(read_label_png(path), np.array(Image.open(path)))
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(read_label_png(write_png(tmp_path / "p.png", labels)), labels)
    np.testing.assert_array_equal(read_label_png(write_png(tmp_path / "l.png", labels, "L")), labels)


# ------------------------------------------------------------------ official semantics, by hand

def two_objects(shape=(20, 30)) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[2:6, 2:6] = 1
    labels[10:14, 10:20] = 2
    return labels


def test_two_objects_zero_padding_and_untouched_end_frames(tmp_path):
    gt = two_objects()
    write_video(tmp_path / "ann", "v", [gt] * 4)
    only_one = np.where(gt == 2, 0, gt)
    # Frame 1 exact, frame 2 without object 2; frames 0 and 3 are not evaluated (not even read).
    write_video(tmp_path / "res", "v", [gt, gt, only_one, gt], skip=(0, 3))
    got = score_folder(tmp_path / "ann", tmp_path / "res", workers=1)
    one, two = got["per_object"]["v_1"], got["per_object"]["v_2"]
    assert (one["J_mean"], one["J_recall"], one["J_decay"]) == (1.0, 1.0, 0.0)
    assert (one["F_mean"], one["F_recall"], one["F_decay"]) == (1.0, 1.0, 0.0)
    # Two evaluated frames: decay = first - last frame.
    assert (two["J_mean"], two["J_recall"], two["J_decay"]) == (0.5, 0.5, 1.0)
    assert (two["F_mean"], two["F_recall"], two["F_decay"]) == (0.5, 0.5, 1.0)
    assert got["J_mean"] == got["F_mean"] == got["JF_mean"] == 0.75
    assert got["J_decay"] == 0.5
    # A result that never has object 2 is zero-padded: object 2 scores 0 everywhere.
    write_video(tmp_path / "res1", "v", [only_one] * 4)
    got = score_folder(tmp_path / "ann", tmp_path / "res1", workers=1)
    assert got["per_object"]["v_2"]["J_mean"] == 0.0 and got["per_object"]["v_2"]["F_mean"] == 0.0


def test_objects_are_one_to_max_label_of_the_first_frame(tmp_path):
    gt = np.zeros((20, 30), np.uint8)
    gt[4:8, 4:8] = 2  # only label 2: objects 1 and 2, object 1 empty
    later = gt.copy()
    later[15:18, 20:25] = 3  # label 3 appears later: belongs to no object
    write_video(tmp_path / "ann", "v", [gt, later, later])
    write_video(tmp_path / "res", "v", [gt, gt, gt])
    got = score_folder(tmp_path / "ann", tmp_path / "res", workers=1)
    assert list(got["per_object"]) == ["v_1", "v_2"]
    assert got["per_object"]["v_1"]["J_mean"] == 1.0  # empty in both
    assert got["per_object"]["v_2"]["J_mean"] == 1.0


def test_void_counts_as_background_as_the_official_code(tmp_path):
    gt = np.zeros((10, 10), np.uint8)
    gt[0:2, 0:5] = 1  # 10 object pixels
    gt[5:10, 5:10] = 255  # 25 void pixels
    pred = np.where(gt == 255, 1, gt)  # the object, plus everything void
    write_video(tmp_path / "ann", "v", [gt] * 3)
    write_video(tmp_path / "res", "v", [pred] * 3)
    official_like = score_folder(tmp_path / "ann", tmp_path / "res", workers=1)
    assert official_like["J_mean"] == pytest.approx(10 / 35)
    assert official_like["F_mean"] < 1.0
    excluded = score_folder(tmp_path / "ann", tmp_path / "res", workers=1, exclude_void=True)
    assert excluded["J_mean"] == 1.0 and excluded["F_mean"] == 1.0


def test_davis2016_any_nonzero_is_the_object(tmp_path):
    gt = np.zeros((20, 30), np.uint8)
    gt[3:9, 3:12] = 255
    write_video(tmp_path / "ann", "v", [gt] * 3)
    write_video(tmp_path / "res", "v", [np.where(gt > 0, 7, 0)] * 3)  # any id: still the object
    got = score_folder(tmp_path / "ann", tmp_path / "res", fmt="davis2016", workers=1)
    assert list(got["per_object"]) == ["v_1"] and got["JF_mean"] == 1.0


# ------------------------------------------------------------------ bad input

@pytest.fixture()
def small(tmp_path):
    gt = two_objects()
    write_video(tmp_path / "ann", "v", [gt] * 3)
    write_video(tmp_path / "res", "v", [gt] * 3)
    return tmp_path


@pytest.mark.parametrize("damage, needle", [
    (lambda d: (d / "res" / "v" / "00001.png").unlink(), "00001.png"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.zeros((10, 30))), "is 30x10 but its annotation"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.full((20, 30), 3)), "object id 3"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.full((20, 30), 255)), "object id 255"),
    (lambda d: (d / "res" / "v" / "00001.png").write_bytes(b"not a png"), "cannot read PNG"),
    (lambda d: Image.new("RGB", (30, 20), (200, 0, 0)).save(d / "res" / "v" / "00001.png"), "not an indexed or grayscale"),
    (lambda d: (d / "res" / "v").rename(d / "res" / "w"), "missing results folder for video v"),
    (lambda d: (d / "ann" / "v" / "00002.png").unlink(), "needs at least 3"),
])
def test_bad_input_names_the_problem(small, damage, needle):
    damage(small)
    with pytest.raises(SSMVOSError, match=needle):
        score_folder(small / "ann", small / "res", workers=1)


def test_bad_folders_and_sequences(small):
    with pytest.raises(SSMVOSError, match="results folder not found"):
        score_folder(small / "ann", small / "nowhere")
    with pytest.raises(SSMVOSError, match="annotations folder not found"):
        score_folder(small / "nowhere", small / "res")
    with pytest.raises(SSMVOSError, match="no annotations for sequence 'x'"):
        score_folder(small / "ann", small / "res", sequences=["x"])
    with pytest.raises(SSMVOSError, match="unknown format"):
        score_folder(small / "ann", small / "res", fmt="davis2019")


def test_error_in_a_worker_process_reaches_the_caller(small):
    write_video(small / "ann", "w", [two_objects()] * 3)
    write_video(small / "res", "w", [np.full((20, 30), 9)] * 3)
    with pytest.raises(SSMVOSError, match="object id 9"):
        score_folder(small / "ann", small / "res", workers=2)


# ------------------------------------------------------------------ command line

def test_cli_prints_table_and_writes_json_and_csv(tmp_path):
    out_json, out_csv = tmp_path / "scores.json", tmp_path / "scores.csv"
    proc = run_cli("score", "--annotations", METRICS / "annotations", "--results", METRICS / "results",
                   "--format", "davis2016", "--json", out_json, "--csv", out_csv, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "J&F-Mean" in proc.stdout and "blackswan_1" in proc.stdout
    global_row = next(line for line in proc.stdout.splitlines() if line.startswith("Global"))
    assert global_row.split()[1] == f"{100 * official()['global_']['JF_mean']:.1f}"
    assert_equal_to_official(json.loads(out_json.read_text()), official())
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["Sequence", "J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert [r["Sequence"] for r in rows] == ["Global"] + [f"{s}_1" for s in SEQUENCES]
    assert float(rows[0]["J-Mean"]) == pytest.approx(official()["global_"]["J_mean"], abs=1e-6)
    assert float(rows[2]["F-Decay"]) == pytest.approx(official()["per_object"]["car-shadow_1"]["F_decay"], abs=1e-6)


@pytest.mark.parametrize("damage, needle", [
    (lambda d: (d / "res" / "v" / "00001.png").unlink(), "00001.png"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.zeros((10, 30))), "30x10"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.full((20, 30), 5)), "object id 5"),
    (lambda d: (d / "res").rename(d / "gone"), "results folder not found"),
])
def test_cli_bad_input_is_one_clean_line_and_no_json(small, damage, needle):
    damage(small)
    out_json = small / "scores.json"
    proc = run_cli("score", "--annotations", small / "ann", "--results", small / "res", "--json", out_json)
    assert_clean_error(proc, "ssmvos score: error:", needle)
    assert not out_json.exists()
    assert not list(small.glob(".scores.json*"))

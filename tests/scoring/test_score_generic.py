"""Generic scoring (any VOS dataset), format detection and the score table's units.

vos-benchmark (the oracle for the generic rules) is not a test dependency: it requires
opencv-python, which clashes with this project's opencv-python-headless, and scikit-image.
The cases here are worked out by hand from its rules (every mask is either exact, empty or
far from the truth, so each J and F is 0 or 1); benchmarks/bench_score_generic.py compares
against vos-benchmark itself on generated folders.
"""
from __future__ import annotations

import csv
import json
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES, assert_clean_error, run_cli
from ssmvos.errors import SSMVOSError
from ssmvos.scoring import score_folder
from ssmvos.scoring.generic import GenericVideo
from ssmvos.scoring.labels import read_label_png
from ssmvos.scoring.report import UNITS
from builders import write_png
from test_score import FIGURES, assert_equal_to_official, official

METRICS = FIXTURES / "metrics"
SHAPE = (40, 60)


def rect(labels: np.ndarray, box: tuple[int, int, int, int], value: int) -> np.ndarray:
    y0, y1, x0, x1 = box
    labels[y0:y1, x0:x1] = value
    return labels


OBJ2 = (5, 15, 5, 15)
OBJ7 = (25, 35, 40, 55)
OBJ7_ELSEWHERE = (2, 8, 45, 58)  # disjoint from OBJ7 and beyond the 1-pixel tolerance: J = F = 0


def frame(*objects: tuple[tuple[int, int, int, int], int]) -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    for box, value in objects:
        rect(labels, box, value)
    return labels


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """Two videos.

    ``sparse``: annotations on every 5th frame 00000..00045 (results on every frame; the
    unannotated ones are RGB PNGs, which would fail if read). Object 2 everywhere, object 7
    (ids with a gap) from 00020 on. The result has object 2 exact; object 7 early at 00010,
    exact from 00020 except missing at 00035 and misplaced at 00045; a stray id 9 at 00015.

    ``dense``: 5 frames, object 1 everywhere, object 3 in frame 0 only. The result has
    object 1 exact except empty at frame 3, and never object 3.
    """
    for t in range(50):
        name = f"{t:05d}.png"
        if t % 5:
            Image.new("RGB", SHAPE[::-1], (200, 0, 0)).save(_mkdir(tmp_path / "res" / "sparse") / name)
            continue
        gt = frame((OBJ2, 2), *([(OBJ7, 7)] if t >= 20 else []))
        res = frame((OBJ2, 2))
        if t == 10 or 20 <= t <= 40 and t != 35:
            rect(res, OBJ7, 7)
        if t == 45:
            rect(res, OBJ7_ELSEWHERE, 7)
        if t == 15:
            rect(res, (30, 34, 5, 10), 9)
        write_png(tmp_path / "ann" / "sparse" / name, gt)
        write_png(tmp_path / "res" / "sparse" / name, res)
    for t in range(5):
        write_png(tmp_path / "ann" / "dense" / f"{t:05d}.png", frame((OBJ2, 1), *([(OBJ7, 3)] if t == 0 else [])))
        write_png(tmp_path / "res" / "dense" / f"{t:05d}.png", frame(*([] if t == 3 else [(OBJ2, 1)])), "L")
    return tmp_path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def assert_series_figures(figures: dict, series: list[int]) -> None:
    """J and F (equal here) of an object whose per-frame values are ``series`` (0s and 1s)."""
    n = len(series)
    mean = Fraction(sum(series), n)
    ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(int)  # the DAVIS decay bins
    first, last = series[ids[0]:ids[1] + 1], series[ids[3]:ids[4] + 1]
    decay = Fraction(sum(first), len(first)) - Fraction(sum(last), len(last))
    for m in "JF":
        assert figures[f"{m}_mean"] == pytest.approx(float(mean), abs=1e-12)
        assert figures[f"{m}_recall"] == pytest.approx(float(mean), abs=1e-12)  # values are 0 or 1
        assert figures[f"{m}_decay"] == pytest.approx(float(decay), abs=1e-12)


def test_default_rules_are_vos_benchmarks(dataset):
    got = score_folder(dataset / "ann", dataset / "res", fmt="generic", workers=2)
    assert list(got["per_object"]) == ["dense_1", "sparse_2", "sparse_7"]  # object 3: only in frame 0
    # scored: sparse 00005..00040; object 7 counted from 00010, where only the result has it
    assert_series_figures(got["per_object"]["sparse_2"], [1] * 8)
    assert_series_figures(got["per_object"]["sparse_7"], [0, 1, 1, 1, 1, 0, 1])
    assert got["per_object"]["sparse_7"]["J_decay"] == pytest.approx(2 / 3 - 1 / 2)
    assert_series_figures(got["per_object"]["dense_1"], [1, 1, 0])
    j = (1 + 5 / 7 + 2 / 3) / 3
    assert got["J_mean"] == pytest.approx(j) and got["F_mean"] == pytest.approx(j)
    assert got["JF_mean"] == pytest.approx(j)
    assert got["per_video"]["sparse"]["J_mean"] == pytest.approx((1 + 5 / 7) / 2)
    assert got["per_video"]["dense"]["JF_mean"] == pytest.approx(2 / 3)
    assert got["format"] == "generic"
    assert any("sparse" in n and "result id(s) 9" in n for n in got["notes"])


def test_keep_first_last_and_exclude_given(dataset):
    keep = score_folder(dataset / "ann", dataset / "res", fmt="generic", workers=1, keep_first_last=True)
    assert_series_figures(keep["per_object"]["sparse_2"], [1] * 10)
    assert_series_figures(keep["per_object"]["sparse_7"], [0, 1, 1, 1, 1, 0, 1, 0])  # 00045 misplaced
    assert_series_figures(keep["per_object"]["dense_3"], [0, 1, 1, 1, 1])  # frame 0 now scored
    assert_series_figures(keep["per_object"]["dense_1"], [1, 1, 1, 0, 1])

    given = score_folder(dataset / "ann", dataset / "res", fmt="generic", workers=1, exclude_given=True)
    assert_series_figures(given["per_object"]["sparse_7"], [0, 1, 1, 1, 0, 1])  # 00020 left out
    assert_series_figures(given["per_object"]["sparse_2"], [1] * 8)  # given at 00000, not scored anyway

    both = score_folder(dataset / "ann", dataset / "res", fmt="generic", workers=1, keep_first_last=True,
                        exclude_given=True)
    assert_series_figures(both["per_object"]["sparse_2"], [1] * 9)
    assert_series_figures(both["per_object"]["sparse_7"], [0, 1, 1, 1, 0, 1, 0])
    assert_series_figures(both["per_object"]["dense_1"], [1, 1, 0, 1])


def copy_remapped(src: Path, dst: Path, mapping: dict[int, int], videos: list[str]) -> Path:
    """Copy label PNGs of ``videos`` with their values remapped (others kept)."""
    for video in videos:
        for png in sorted((src / video).glob("*.png")):
            labels = read_label_png(png)
            out = labels.copy()
            for a, b in mapping.items():
                out[labels == a] = b
            write_png(dst / video / png.name, out)
    return dst


def test_generic_equals_the_official_figures_where_the_rules_agree(tmp_path):
    """One object present from the first frame on everywhere: every figure is the official one."""
    videos = ["blackswan", "libby"]
    ann = copy_remapped(METRICS / "annotations", tmp_path / "ann", {255: 1}, videos)
    got = score_folder(ann, METRICS / "results", fmt="generic", workers=1)
    want = official()["per_object"]
    assert sorted(got["per_object"]) == ["blackswan_1", "libby_1"]
    for name in got["per_object"]:
        for key in FIGURES:
            assert got["per_object"][name][key] == pytest.approx(want[name][key], abs=1e-6), (name, key)


def test_generic_video_tracker_on_arrays():
    video = GenericVideo(exclude_given=True)
    empty = np.zeros((6, 6), np.uint8)
    one = empty.copy()
    one[1:3, 1:3] = 4
    video.mark_given(one)  # object 4 given in an unscored first frame
    video.add_frame(one, one)
    video.add_frame(empty, one)  # object 4 gone from the truth, still in the result
    late = one * 0
    late[4:6, 4:6] = 5
    video.add_frame(late, empty)  # object 5's given frame: left out of its figures
    video.add_frame(late, late)
    series = video.series()
    assert list(series) == [4, 5]
    np.testing.assert_array_equal(series[4][0], [1, 0, 1, 1])
    np.testing.assert_array_equal(series[5][0], [1])
    assert video.result_only_ids() == [] and video.unscored_ids() == []


def palette_png(labels: np.ndarray, filters: list[int]) -> bytes:
    """An 8-bit palette PNG written by hand, row y filtered with ``filters[y % len(filters)]``
    (0 = none, 2 = up), as other writers than Pillow may do."""
    rows, prev = [], np.zeros(labels.shape[1], np.uint8)
    for y, row in enumerate(labels.astype(np.uint8)):
        kind = filters[y % len(filters)]
        rows.append(bytes([kind]) + (row if kind == 0 else row - prev).tobytes())
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = struct.pack(">IIBBBBB", labels.shape[1], labels.shape[0], 8, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"PLTE", bytes(range(256)) * 3)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("filters", [[0], [0, 2], [2]])
def test_palette_pngs_read_as_indices_filtered_or_not(tmp_path, filters):
    labels = np.random.default_rng(0).integers(0, 256, (7, 9)).astype(np.uint8)
    path = tmp_path / "p.png"
    path.write_bytes(palette_png(labels, filters))
    np.testing.assert_array_equal(np.array(Image.open(path)), labels)  # a valid PNG
    got = read_label_png(path)
    np.testing.assert_array_equal(got, labels)
    got[0, 0] = 1  # a writable array of its own


def test_one_bit_and_16_bit_label_maps(tmp_path):
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:5] = True
    Image.fromarray(mask).save(tmp_path / "one.png")  # 1-bit: object id 1
    np.testing.assert_array_equal(read_label_png(tmp_path / "one.png"), mask.astype(np.uint8))
    Image.fromarray(mask.astype(np.uint16) * 300).save(tmp_path / "wide.png")  # ids above 255
    np.testing.assert_array_equal(read_label_png(tmp_path / "wide.png"), mask * 300)


# ------------------------------------------------------------------ format detection (issue 17.1)

def test_davis2016_results_labelled_255_score_without_format(tmp_path):
    """`evaluate` on DAVIS 2016 writes 255 labels: `score` without --format detects davis2016."""
    res = copy_remapped(METRICS / "results", tmp_path / "res", {1: 255}, ["blackswan", "car-shadow", "libby",
                                                                            "motocross-jump"])
    out = tmp_path / "s.json"
    proc = run_cli("score", "--annotations", METRICS / "annotations", "--results", res, "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert "note: format davis2016" in proc.stderr
    assert_equal_to_official(json.loads(out.read_text()), official())
    assert json.loads(out.read_text())["format"] == "davis2016"
    proc = run_cli("score", "--annotations", METRICS / "annotations", "--results", res, "--format", "davis2017")
    assert_clean_error(proc, "object id 255", "use --format davis2016")


def write_dense(root: Path, video: str, frames: list[np.ndarray]) -> None:
    for t, labels in enumerate(frames):
        write_png(root / video / f"{t:05d}.png", labels)


@pytest.mark.parametrize("frames, fmt, why", [
    ([frame((OBJ2, 1), (OBJ7, 2))] * 4, "davis2017", "indexed"),
    ([frame((OBJ2, 1), (OBJ7, 3))] * 4, "generic", "ids with gaps"),
    ([frame((OBJ2, 1))] * 3 + [frame((OBJ2, 1), (OBJ7, 2))], "generic", "late objects"),
    ([frame((OBJ2, 255))] * 4, "davis2016", "0 and 255"),
])
def test_format_detection(tmp_path, frames, fmt, why):
    write_dense(tmp_path / "ann", "v", frames)
    write_dense(tmp_path / "res", "v", frames)
    got = score_folder(tmp_path / "ann", tmp_path / "res", fmt="auto", workers=1)
    assert got["format"] == fmt and why in got["notes"][0]
    assert got["JF_mean"] == 1.0


def test_late_object_found_while_scoring_switches_to_generic(tmp_path):
    """Object 2 appears at frame 2 and is gone by the last frame: the first/last check misses
    it, the davis2017 pass finds it and the folder is scored generically."""
    frames = [frame((OBJ2, 1))] * 2 + [frame((OBJ2, 1), (OBJ7, 2))] * 2 + [frame((OBJ2, 1))] * 2
    write_dense(tmp_path / "ann", "v", frames)
    write_dense(tmp_path / "res", "v", [frame((OBJ2, 1))] * 6)
    got = score_folder(tmp_path / "ann", tmp_path / "res", fmt="auto", workers=1)
    assert got["format"] == "generic" and "late objects" in got["notes"][0]
    assert_series_figures(got["per_object"]["v_2"], [0, 0, 1])  # missed at frames 2 and 3
    official_rules = score_folder(tmp_path / "ann", tmp_path / "res", fmt="davis2017", workers=1)
    assert list(official_rules["per_object"]) == ["v_1"]
    assert any("--format generic scores them" in n for n in official_rules["notes"])


# ------------------------------------------------------------------ bad input

@pytest.fixture()
def small(tmp_path):
    write_dense(tmp_path / "ann", "v", [frame((OBJ2, 1), (OBJ7, 4))] * 3)
    write_dense(tmp_path / "res", "v", [frame((OBJ2, 1), (OBJ7, 4))] * 3)
    return tmp_path


@pytest.mark.parametrize("damage, needle", [
    (lambda d: (d / "res" / "v" / "00001.png").unlink(), "missing result frame"),
    (lambda d: write_png(d / "res" / "v" / "00001.png", np.zeros((10, 60))), "is 60x10 but its annotation"),
    (lambda d: Image.new("RGB", SHAPE[::-1], (200, 0, 0)).save(d / "res" / "v" / "00001.png"), "not an indexed or grayscale"),
    (lambda d: Image.new("RGB", SHAPE[::-1], (200, 0, 0)).save(d / "ann" / "v" / "00001.png"), "not an indexed or grayscale"),
    (lambda d: (d / "res" / "v").rename(d / "res" / "w"), "missing results folder for video v"),
])
def test_bad_input_names_the_problem(small, damage, needle):
    damage(small)
    with pytest.raises(SSMVOSError, match=needle):
        score_folder(small / "ann", small / "res", fmt="generic", workers=1)


def test_videos_without_scored_objects_are_notes_and_none_at_all_an_error(small):
    write_dense(small / "ann", "short", [frame((OBJ2, 1))] * 2)
    (small / "ann" / "empty").mkdir()
    got = score_folder(small / "ann", small / "res", fmt="generic", workers=1)
    assert list(got["per_object"]) == ["v_1", "v_4"]
    assert any("short: 2 annotated frame(s), none scored" in n for n in got["notes"])
    assert any("hold no PNG" in n and "empty" in n for n in got["notes"])
    write_dense(small / "ann2", "v", [np.zeros(SHAPE, np.uint8)] * 3)
    with pytest.raises(SSMVOSError, match="no objects to score: video v: no ground-truth object"):
        score_folder(small / "ann2", small / "res", fmt="generic", workers=1)
    with pytest.raises(SSMVOSError, match="--keep-first-last apply to --format generic only"):
        score_folder(small / "ann", small / "res", fmt="davis2017", keep_first_last=True)


def test_cli_generic_notes_units_json_and_csv(dataset):
    out_json, out_csv = dataset / "s.json", dataset / "s.csv"
    proc = run_cli("score", "--annotations", dataset / "ann", "--results", dataset / "res", "--json", out_json,
                   "--csv", out_csv)
    assert proc.returncode == 0, proc.stderr
    stdout = proc.stdout.splitlines()
    assert stdout[0] == UNITS and "percent" in UNITS
    assert next(line for line in stdout if line.startswith("sparse_7")).split()[2] == f"{100 * 5 / 7:.1f}"
    assert "note: format generic (sparse annotations" in proc.stderr
    assert "result id(s) 9" in proc.stderr
    saved = json.loads(out_json.read_text())
    assert set(saved["per_object"]) == {"dense_1", "sparse_2", "sparse_7"}
    assert saved["per_object"]["sparse_7"]["J_mean"] == pytest.approx(5 / 7)  # fractions, not percent
    assert saved["per_video"]["dense"]["J_mean"] == pytest.approx(2 / 3) and saved["format"] == "generic"
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["Sequence"] for r in rows] == ["Global", "dense_1", "sparse_2", "sparse_7"]
    # a generic-only flag picks the generic rules when --format is not given
    proc = run_cli("score", "--annotations", dataset / "ann", "--results", dataset / "res", "--exclude-given")
    assert proc.returncode == 0 and "--exclude-given given" in proc.stderr
    assert next(line for line in proc.stdout.splitlines() if line.startswith("sparse_7")).split()[2] == \
        f"{100 * 4 / 6:.1f}"


def test_cli_bad_input_is_one_clean_line(small):
    write_png(small / "res" / "v" / "00001.png", np.zeros((10, 60)))
    proc = run_cli("score", "--annotations", small / "ann", "--results", small / "res", "--format", "generic")
    assert_clean_error(proc, "ssmvos score: error:", "is 60x10")

"""Indexing dataset folders into split files, as the original make_index.py."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from builders import TWO_OBJECT, davis2017_layout, youtube_layout
from conftest import assert_clean_error, run_cli
from ssmvos.data.datasets import index_datasets
from ssmvos.data.index import index_davis2016, index_davis2017, index_youtube
from ssmvos.data.io import write_palette_png
from ssmvos.data.splits import check_track_order, load_split, write_split
from ssmvos.errors import SSMVOSError




def test_davis2016_val_from_the_full_data(davis2016_full):
    entries = index_davis2016(davis2016_full, "val")
    assert len(entries) == 1376
    assert {e.object_index for e in entries} == {255}
    videos = list(dict.fromkeys(e.video_name for e in entries))
    assert videos == sorted(videos) and len(videos) == 20
    check_track_order(entries)
    e = entries[60]  # bmx-trees follows blackswan's 50 frames
    assert e.video_name == "bmx-trees" and e.frame_index == 10 and e.num_frames == 80
    assert Path(e.image_path).is_absolute() and Path(e.image_path).is_file()
    assert Path(e.image_path).stem == Path(e.mask_path).stem == "00010"


def test_davis2017_train_objects_and_order(tmp_path):
    root = davis2017_layout(tmp_path / "DAVIS2017")
    entries = index_davis2017(root, "train")
    keys = [(e.video_name, e.object_index, e.frame_index, e.num_frames) for e in entries]
    assert keys == ([("libby", 1, k, 4) for k in range(4)] + [("libby", 2, k, 4) for k in range(4)]
                    + [("blackswan", 1, k, 3) for k in range(3)])
    for e in entries:
        assert Path(e.image_path).stem == Path(e.mask_path).stem
        assert Path(e.mask_path).is_file() and Path(e.image_path).is_absolute()


def test_davis2017_test_dev_points_to_the_first_annotation(tmp_path):
    root = davis2017_layout(tmp_path / "DAVIS2017_test", test=True)
    entries = index_davis2017(root, "test")
    assert [(e.object_index, e.frame_index) for e in entries] == [(o, k) for o in (1, 2) for k in range(4)]
    assert {Path(e.mask_path).name for e in entries} == {"00000.png"}
    assert [Path(e.image_path).name for e in entries[:4]] == [f"{k:05d}.jpg" for k in range(4)]


def test_davis_bad_layouts_name_the_culprit(tmp_path):
    root = davis2017_layout(tmp_path / "d17")
    (root / "Annotations" / "480p" / "blackswan" / "00002.png").unlink()
    with pytest.raises(SSMVOSError, match=r"blackswan.*do not pair up.*00002"):
        index_davis2017(root, "train")
    root = davis2017_layout(tmp_path / "d17b")
    write_palette_png(root / "Annotations" / "480p" / "libby" / "00000.png", np.zeros((480, 854), np.uint8))
    with pytest.raises(SSMVOSError, match=r"libby/00000.png is empty"):
        index_davis2017(root, "train")
    root = davis2017_layout(tmp_path / "d17t", test=True)
    shutil.copy(TWO_OBJECT / "00001.png", root / "Annotations" / "480p" / "libby" / "00001.png")
    with pytest.raises(SSMVOSError, match="only its first-frame annotation"):
        index_davis2017(root, "test")
    (root / "Annotations" / "480p" / "libby" / "00001.png").unlink()
    (root / "ImageSets" / "2017" / "test-dev.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(SSMVOSError, match="test-dev.txt"):
        index_davis2017(root, "test")
    (root / "ImageSets" / "2017" / "test-dev.txt").write_text("libby\nnosuchvideo\n")
    with pytest.raises(SSMVOSError, match="nosuchvideo"):
        index_davis2017(root, "test")


def test_youtube_objects_follow_their_own_frame_lists(tmp_path):
    root = youtube_layout(tmp_path / "YouTubeVOS")
    train = index_youtube(root, "train")
    assert [(e.object_index, e.frame_index, e.num_frames, Path(e.image_path).stem) for e in train] == (
        [(1, k, 4, f) for k, f in enumerate(["00000", "00005", "00010", "00015"])]
        + [(2, 0, 2, "00010"), (2, 1, 2, "00015")])
    assert all(Path(e.mask_path).stem == Path(e.image_path).stem for e in train)
    check_track_order(train)
    test = index_youtube(root, "test")
    assert [Path(e.image_path).stem for e in test] == [Path(e.image_path).stem for e in train]
    assert [Path(e.mask_path).stem for e in test] == ["00000"] * 4 + ["00010"] * 2
    assert all("/valid/" in e.image_path for e in test)


def test_youtube_bad_input(tmp_path):
    root = youtube_layout(tmp_path / "yt")
    (root / "train" / "Annotations" / "vid" / "00005.png").unlink()
    with pytest.raises(SSMVOSError, match=r"Annotations/vid lacks 00005.png"):
        index_youtube(root, "train")
    index_youtube(root, "test")  # valid needs first annotations only
    (root / "valid" / "meta.json").write_text("{not json")
    with pytest.raises(SSMVOSError, match="meta.json is not valid JSON"):
        index_youtube(root, "test")
    (root / "valid" / "meta.json").write_text('{"videos": {"vid": {"objects": {"1": {}}}}}')
    with pytest.raises(SSMVOSError, match="meta.json"):
        index_youtube(root, "test")


def test_index_datasets_skips_missing_lists_and_writes_atomically(tmp_path):
    root = davis2017_layout(tmp_path / "d17")
    lines: list[str] = []
    out = tmp_path / "splits"
    (out).mkdir()
    (out / "davis2017_train.json").write_text("old")
    written = index_datasets({"davis2017": root}, out, report=lines.append)
    assert written == [out / "davis2017_train.json"]
    assert sorted(p.name for p in out.iterdir()) == ["davis2017_train.json"]  # no temporary files left
    assert len(load_split(written[0])) == 11
    assert any(line.startswith("davis2017_val: skipped") and "val.txt" in line for line in lines)
    assert (out / "davis2017_train.json").read_text().startswith('[\n    {\n        "image_path"')  # indent=4
    with pytest.raises(SSMVOSError, match="nothing written"):
        index_datasets({"youtube": tmp_path / "d17"}, out, report=lines.append)
    with pytest.raises(SSMVOSError, match="not found"):
        index_datasets({"davis2016": tmp_path / "nowhere"}, out)
    write_split(out / "x.json", [{"a": 1}])
    assert json.loads((out / "x.json").read_text()) == [{"a": 1}]


def test_cli_indexes_every_dataset(tmp_path, davis2016_full):
    d17 = davis2017_layout(tmp_path / "d17")
    d17t = davis2017_layout(tmp_path / "d17t", test=True)
    yt = youtube_layout(tmp_path / "yt")
    out = tmp_path / "out"
    proc = run_cli("index", "--davis2016", davis2016_full, "--davis2017", d17, "--davis2017-test", d17t,
                   "--youtube", yt, "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.json" for n in ["davis2016_val", "davis2017_train", "davis2017_test", "youtube_train", "youtube_test"])
    skipped = [line for line in proc.stdout.splitlines() if "skipped" in line]
    assert len(skipped) == 2 and any("davis2016_train" in s for s in skipped)
    assert len(load_split(out / "davis2016_val.json")) == 1376
    assert len(load_split(out / "youtube_test.json")) == 6


def test_cli_default_layout_and_nothing_found(tmp_path, davis2016_full):
    (tmp_path / "datasets").mkdir()
    os.symlink(davis2016_full, tmp_path / "datasets" / "DAVIS2016")
    proc = run_cli("index", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "found" in proc.stdout and "DAVIS2016" in proc.stdout
    entries = load_split(tmp_path / "splits" / "davis2016_val.json")
    assert len(entries) == 1376 and Path(entries[0].image_path).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run_cli("index", cwd=empty), "no dataset root given", "datasets")
    assert_clean_error(run_cli("index", "--davis2016", empty / "missing", cwd=empty), "not found", "missing")

"""YouTube-VOS-layout datasets besides YouTube-VOS 2018 (MOSE, YouTube-VOS 2019): indexing,
and how `evaluate --score` scores their splits (generically)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from conftest import run_cli
from ssmvos.data.index import index_davis2017, index_youtube
from ssmvos.data.splits import load_split
from ssmvos.scoring import score_folder
from ssmvos.data.datasets import split_score_format
from ssmvos.scoring.score import split_annotations
from builders import davis2017_layout, write_png, youtube_layout

FRAMES = [f"{t:05d}" for t in range(6)]


def labels(*ids: int) -> np.ndarray:
    out = np.zeros((30, 40), np.uint8)
    for k in ids:
        out[2 * k:2 * k + 6, 3 * k:3 * k + 8] = k
    return out


def mose_layout(root: Path) -> Path:
    """MOSE: no meta.json. Train video 'm': object 1 on every frame, object 3 on frames 2, 3
    and 5 (it vanishes at 4, which stays in its list). Valid: annotations only where objects
    first appear (0 and 2). Frame files are empty: indexing decodes annotations only."""
    truth = {0: (1,), 1: (1,), 2: (1, 3), 3: (1, 3), 4: (1,), 5: (1, 3)}
    for split in ("train", "valid"):
        (root / split / "JPEGImages" / "m").mkdir(parents=True)
        for t, name in enumerate(FRAMES):
            (root / split / "JPEGImages" / "m" / f"{name}.jpg").touch()
            if split == "train" or t in (0, 2):
                write_png(root / split / "Annotations" / "m" / f"{name}.png", labels(*truth[t]))
    return root


def tracks(entries: list) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for e in entries:
        out.setdefault(e.object_index, []).append((Path(e.image_path).stem, Path(e.mask_path).stem))
    return out


def test_mose_objects_are_derived_from_the_annotations(tmp_path):
    root = mose_layout(tmp_path / "MOSE")
    notes: list[str] = []
    train = index_youtube(root, "train", notes.append)
    assert tracks(train) == {1: [(f, f) for f in FRAMES], 3: [(f, f) for f in FRAMES[2:]]}
    assert notes and "no meta.json" in notes[0]
    test = index_youtube(root, "test")
    assert tracks(test) == {1: [(f, "00000") for f in FRAMES], 3: [(f, "00002") for f in FRAMES[2:]]}


def test_cli_indexes_mose_and_youtube2019_and_their_train_splits_score_generically(tmp_path):
    mose = mose_layout(tmp_path / "MOSE")
    yt19 = youtube_layout(tmp_path / "YouTubeVOS2019")
    out = tmp_path / "splits"
    proc = run_cli("index", "--mose", mose, "--youtube2019", yt19, "--out-dir", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "mose_test.json", "mose_train.json", "youtube2019_test.json", "youtube2019_train.json"]
    assert len(load_split(out / "youtube2019_train.json")) == 6
    entries = load_split(out / "mose_train.json")
    assert len(entries) == 10
    # a hold-out of MOSE train: local ground truth, scored with the generic rules
    annotations, videos = split_annotations(entries)
    fmt = split_score_format(out / "mose_train.json", entries, annotations)
    assert (annotations, fmt, videos) == (mose.resolve() / "train" / "Annotations", "generic", ["m"])
    scores = score_folder(annotations, annotations, fmt=fmt, sequences=videos, workers=1)
    assert set(scores["per_object"]) == {"m_1", "m_3"} and scores["JF_mean"] == 1.0
    assert split_annotations(load_split(out / "mose_test.json")) is None  # first frames only


def test_davis_splits_keep_the_official_rules(tmp_path):
    entries = index_davis2017(davis2017_layout(tmp_path / "d17"), "train")
    annotations = split_annotations(entries)[0]
    assert split_score_format("davis2017_train.json", entries, annotations) == "davis2017"  # the registry's
    assert split_score_format(tmp_path / "mine.json", entries, annotations) == "davis2017"  # a DAVIS root
    binary = [dataclasses.replace(e, object_index=255) for e in entries if e.object_index == 1]
    assert split_score_format(tmp_path / "mine.json", binary, annotations) == "davis2016"
    assert split_score_format(tmp_path / "mine.json", entries, tmp_path / "Annotations") == "generic"


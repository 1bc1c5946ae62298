"""Small datasets and files that tests in several folders write, and checks they share."""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import DAVIS16, REFERENCE
from ssmvos.atomic import is_temporary
from ssmvos.data.io import read_mask, write_palette_png

TWO_OBJECT = REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby"


def write_png(path: Path, labels: np.ndarray, mode: str = "P") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(labels.astype(np.uint8), mode="L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [200, 200, 200] * 252)
    img.save(path)
    return path


def davis2017_layout(root: Path, test: bool = False, frames: int = 4) -> Path:
    """A DAVIS 2017 root: libby (objects 1, 2; two-object annotations) and, unless test, blackswan (object 1)."""
    videos = {"libby": TWO_OBJECT} if test else {"libby": TWO_OBJECT, "blackswan": None}
    for video, labels_dir in videos.items():
        (root / "JPEGImages" / "480p" / video).mkdir(parents=True)
        (root / "Annotations" / "480p" / video).mkdir(parents=True)
        for k in range(frames if video == "libby" else 3):
            name = f"{k:05d}"
            os.symlink(DAVIS16 / "JPEGImages" / "480p" / video / f"{name}.jpg",
                       root / "JPEGImages" / "480p" / video / f"{name}.jpg")
            if test and k > 0:
                continue
            target = root / "Annotations" / "480p" / video / f"{name}.png"
            if labels_dir is not None:
                shutil.copy(labels_dir / f"{name}.png", target)
            else:
                labels = read_mask(DAVIS16 / "Annotations" / "480p" / video / f"{name}.png")
                write_palette_png(target, (labels > 0).astype(np.uint8))
    lists = root / "ImageSets" / "2017"
    lists.mkdir(parents=True)
    if test:
        (lists / "test-dev.txt").write_text("libby\n")
    else:
        (lists / "train.txt").write_text("libby\nblackswan\n")
    return root


def youtube_layout(root: Path) -> Path:
    """YouTube-VOS: one video, object 1 on all frames, object 2 from the third frame on.

    The frame and annotation files are empty: indexing must not decode them.
    """
    frames = ["00000", "00005", "00010", "00015"]
    meta = {"videos": {"vid": {"objects": {"1": {"category": "cat", "frames": frames},
                                           "2": {"category": "dog", "frames": frames[2:]}}}}}
    for split, annotated in (("train", frames), ("valid", ["00000", "00010"])):
        (root / split / "JPEGImages" / "vid").mkdir(parents=True)
        (root / split / "Annotations" / "vid").mkdir(parents=True)
        for f in frames:
            (root / split / "JPEGImages" / "vid" / f"{f}.jpg").touch()
        for f in annotated:
            (root / split / "Annotations" / "vid" / f"{f}.png").touch()
        (root / split / "meta.json").write_text(json.dumps(meta))
    return root


def assert_complete(path: Path) -> None:
    """No temporary file under ``path``, and every PNG/JSON/checkpoint there reads completely."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for f in files:
        assert not is_temporary(f.name), f"leftover temporary file {f}"
        if f.suffix == ".png":
            with Image.open(f) as image:
                image.load()
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.suffix == ".pt":
            with zipfile.ZipFile(f) as zf:
                assert zf.testzip() is None, f

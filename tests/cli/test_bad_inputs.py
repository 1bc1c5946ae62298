"""Every command against a table of bad inputs and faults: one clear line, never a traceback,
never a silent wrong result, and nothing half-written left behind.

The table runs in ONE Python process (``tests/cli_batch.py``: torch is imported once), so its
70-odd cases cost seconds; most fail in argument parsing or in the checks made before any work.
Faults (a full disk, a read-only file system) are simulated in that process. For each case:
the exit status, no "Traceback" anywhere in the output, exactly one error line naming the
problem (after the subcommand's usage for argument errors), and in the folders it wrote no
temporary file and no incomplete PNG/JSON/checkpoint.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from builders import assert_complete
from conftest import DAVIS16, REFERENCE, ROOT, SUBPROCESS_TIMEOUT, davis_entries
from ssmvos.data.io import read_mask, write_gray_png, write_palette_png

W, H = 128, 72  # frames of the small clip (the network input is 224: crops are resized)


@dataclass
class Case:
    """One command line and what it must do."""

    argv: list
    status: int  # 2: argument error, 1: error, 0: success (a fault that must be survived)
    needles: tuple = ()  # words the error line must contain
    env: dict = field(default_factory=dict)
    fault: dict | None = None
    outputs: tuple = ()  # folders/files whose contents must be complete afterwards
    check: Callable[[], None] | None = None  # more checks after the run (outputs written, ...)
    notes: tuple = ()  # words stderr must contain (a note on a run that succeeds)


# --------------------------------------------------------------------------- the inputs
class Workspace:
    """Small inputs for every command, good and bad, built once for the table."""

    def __init__(self, root: Path, checkpoint: Path):
        self.root, self.ckpt = root, checkpoint
        self.frames = root / "frames"
        self.frames.mkdir()
        for i, src in enumerate(sorted((DAVIS16 / "JPEGImages" / "480p" / "libby").glob("*.jpg"))[:3]):
            small = cv2.resize(cv2.imread(str(src)), (W, H), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(self.frames / f"{i:05d}.jpg"), small)
        labels = read_mask(REFERENCE / "davis_two_object" / "Annotations" / "480p" / "libby" / "00000.png")
        self.labels = cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST)
        self.mask = root / "mask.png"
        write_palette_png(self.mask, self.labels)
        self._bad_frames()
        self._bad_masks()
        self._sessions()
        self._checkpoints()
        self._splits()
        self._soft_masks()
        self._score_data()
        self._index_data()
        self._zips()
        self._leftovers()
        self._inputs_as_outputs()

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def _bad_frames(self) -> None:
        self.truncated = self.path("truncated")
        self.truncated.mkdir()
        for f in sorted(self.frames.iterdir()):
            (self.truncated / f.name).write_bytes(f.read_bytes())
        data = (self.truncated / "00002.jpg").read_bytes()
        (self.truncated / "00002.jpg").write_bytes(data[: len(data) * 2 // 3])
        for name, empty in (("empty_first", "00000.jpg"), ("empty_middle", "00002.jpg")):  # zero-byte frames
            folder = self.path(name)
            shutil.copytree(self.frames, folder)
            (folder / empty).write_bytes(b"")
            setattr(self, name, folder)
        self.fake_video = self.path("fake.mp4")
        self.fake_video.write_text("not a video")
        self.path("ro").mkdir()  # stands for a read-only mount in the faults that make it one
        self.a_file = self.path("a_file.txt")
        self.a_file.write_text("not a folder")
        self.a_dir = self.path("a_dir")
        self.a_dir.mkdir()

    def _sessions(self) -> None:
        """Session files (ssmvos app's format) for the 3-frame clip, each wrong in one field."""
        from ssmvos.io.session_file import SessionVideo, session_dict

        def write(name: str, num_frames: int = 3, size: tuple[int, int] = (H, W), **change) -> Path:
            data = session_dict(SessionVideo("frames", num_frames, *size), {0: cv2.resize(
                self.labels, size[::-1], interpolation=cv2.INTER_NEAREST)})
            for key, value in change.items():
                where = data["video"] if key in ("width", "height") else data
                where[key] = value
            path = self.path(name)
            path.write_text(json.dumps(data))
            return path

        good = session_dict(SessionVideo("frames", 3, H, W), {0: self.labels})["masks"]["0"]
        self.session = write("session.json")
        self.session_far = write("session_far.json", masks={"0": good, "40": good})
        self.session_true = write("session_true.json", width=True)
        self.session_digits = write("session_digits.json", masks={"9" * 300: good})
        self.session_frames = write("session_frames.json", num_frames=50)
        self.session_size = write("session_size.json", size=(H * 2, W * 2))

    def _bad_masks(self) -> None:
        binary = np.where(self.labels > 0, 255, 0).astype(np.uint8)
        self.mask_jpeg = self.path("mask_as.jpg")
        Image.fromarray(binary).save(self.mask_jpeg, quality=90)
        self.mask_lossy = self.path("mask_lossy.png")  # JPEG-decoded values saved losslessly
        write_gray_png(self.mask_lossy, np.asarray(Image.open(self.mask_jpeg).convert("L")))
        self.mask_rgb = self.path("mask_rgb.png")
        colours = np.array([[0, 0, 0], [200, 30, 30], [30, 200, 30]], np.uint8)
        Image.fromarray(colours[self.labels]).save(self.mask_rgb)

    def _checkpoints(self) -> None:
        import torch

        class Evil:
            def __reduce__(self):
                return (print, ("pwned",))

        self.evil = self.path("evil.pt")
        torch.save({"model_dict": {"a": torch.zeros(1)}, "x": Evil()}, self.evil)
        # shapes that imply keep_topk 0 (global_conv maps 1024 channels to 2048)
        self.topk0 = self.path("topk0.pt")
        torch.save({"model_dict": {"pixel_corr.self_structure.global_conv.0.weight": torch.zeros(2048, 1024, 1, 1)},
                    "global_step": 1}, self.topk0)
        self.finished_run = self.path("finished_run")
        (self.finished_run / "checkpoints").mkdir(parents=True)
        (self.finished_run / "checkpoints" / "3.pt").write_bytes(b"a finished run's checkpoint")

    def _write_split(self, name: str, entries: list[dict]) -> Path:
        path = self.path(name)
        path.write_text(json.dumps(entries))
        return path

    def _splits(self) -> None:
        ann = DAVIS16 / "Annotations" / "480p"
        entries = davis_entries("blackswan", ann, [255], frames=3)
        self.split = self._write_split("split.json", entries)
        self.split_type = self._write_split("split_type.json", [{**e, "frame_index": "one"} if i == 1 else e
                                                                for i, e in enumerate(entries)])
        self.split_null = self._write_split("split_null.json", [{**e, "image_path": None} if i == 0 else e
                                                                for i, e in enumerate(entries)])
        for name, empty in (("empty_first", "00000.jpg"), ("empty_middle", "00002.jpg")):  # zero-byte frames
            images = self.path(f"{name}_images")
            (images / "blackswan").mkdir(parents=True)
            for e in entries:
                shutil.copy(e["image_path"], images / "blackswan")
            (images / "blackswan" / empty).write_bytes(b"")
            setattr(self, f"split_{name}", self._write_split(f"split_{name}.json",
                                                             davis_entries("blackswan", ann, [255], 3, images)))
        self.split_dict = self.path("split_dict.json")
        self.split_dict.write_text(json.dumps({"entries": entries}))
        colour = self.path("colour_annotations")
        colour.mkdir()
        for e in entries:
            labels = read_mask(e["mask_path"])
            Image.fromarray(np.dstack([labels, labels // 2, labels // 3])).save(colour / Path(e["mask_path"]).name)
        self.split_rgb = self._write_split("split_rgb.json", [{**e, "mask_path": str(colour / Path(e["mask_path"]).name)}
                                                              for e in entries])

    def _soft_masks(self) -> None:
        self.soft = self.path("soft")
        for obj, level in ((1, 200), (2, 90)):
            for k in range(3):
                write_gray_png(self.soft / "v" / str(obj) / f"{k:05d}.png", np.full((8, 8), level, np.uint8))
        # a killed writer's leftovers: a complete one and a half-written one
        (self.soft / "v" / "1" / ".00003.png.ab12cd_9.png").write_bytes(
            (self.soft / "v" / "1" / "00000.png").read_bytes())
        (self.soft / "v" / "2" / ".00001.png.zz99xx00.png").write_bytes(b"\x89PNG\r\n\x1a\nhalf")
        self.soft_rgb = self.path("soft_rgb")
        (self.soft_rgb / "v" / "1").mkdir(parents=True)
        Image.fromarray(np.dstack([np.full((8, 8), c, np.uint8) for c in (10, 20, 30)])).save(
            self.soft_rgb / "v" / "1" / "00000.png")

    def _score_data(self) -> None:
        self.path("score_full").mkdir()
        self.ann = self.path("score", "annotations")
        self.res = self.path("score", "results")
        for k in range(4):
            labels = np.zeros((16, 16), np.uint8)
            labels[4:12, 3 + k:11 + k] = 1
            write_palette_png(self.ann / "v" / f"{k:05d}.png", labels)
            write_palette_png(self.res / "v" / f"{k:05d}.png", labels)

    def _davis2017(self, name: str, annotation: Callable[[np.ndarray], Image.Image]) -> Path:
        root = self.path(name)
        (root / "JPEGImages" / "480p" / "v").mkdir(parents=True)
        (root / "Annotations" / "480p" / "v").mkdir(parents=True)
        (root / "ImageSets" / "2017").mkdir(parents=True)
        (root / "ImageSets" / "2017" / "train.txt").write_text("v\n")
        for k in range(2):
            (root / "JPEGImages" / "480p" / "v" / f"{k:05d}.jpg").touch()  # index decodes no frame
            annotation(self.labels).save(root / "Annotations" / "480p" / "v" / f"{k:05d}.png")
        return root

    def _index_data(self) -> None:
        colours = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0]], np.uint8)
        self.davis_rgb = self._davis2017("davis_rgb", lambda labels: Image.fromarray(colours[labels]))
        lossy = np.asarray(Image.open(self.mask_jpeg).convert("L"))
        self.davis_lossy = self._davis2017("davis_lossy", lambda labels: Image.fromarray(lossy))
        self.davis_good = self._davis2017("davis_good", lambda labels: Image.fromarray(labels))
        self.davis_bad_val = self._davis2017("davis_bad_val", lambda labels: Image.fromarray(labels))
        (self.davis_bad_val / "ImageSets" / "2017" / "val.txt").write_text("v\nnot-there\n")  # train is fine
        self.empty_root = self.path("no_datasets")
        self.empty_root.mkdir()

    def _leftovers(self) -> None:
        """Issue 26's inputs: a MOSE-layout video without frames, a split whose frames are
        zero-byte JPEGs, and a damaged ONNX cache entry (its segment graph truncated)."""
        mose = self.path("mose_no_frames", "train")
        (mose / "JPEGImages" / "v").mkdir(parents=True)
        write_palette_png(mose / "Annotations" / "v" / "00000.png", self.labels)
        self.mose_no_frames = mose.parent
        empty = self.path("empty_frames", "blackswan")
        empty.mkdir(parents=True)
        entries = davis_entries("blackswan", DAVIS16 / "Annotations" / "480p", [255], frames=3)
        for e in entries:
            (empty / Path(e["image_path"]).name).touch()
        self.split_empty_frames = self._write_split(
            "split_empty_frames.json", [{**e, "image_path": str(empty / Path(e["image_path"]).name)} for e in entries])
        self.onnx_home = self.path("onnx_home")

    def damage_onnx_cache(self, model) -> None:
        """A cache entry for ``model`` at 224×224 whose manifest records the graphs' sha256 and
        whose segment.onnx was cut short afterwards (what a full disk or a killed copy leaves)."""
        import hashlib

        from ssmvos.export.onnx import FORMAT, FORMAT_VERSION, MANIFEST, model_fingerprint

        fingerprint = model_fingerprint(model)
        folder = self.onnx_home / "onnx" / f"{fingerprint[:16]}-224x224"
        folder.mkdir(parents=True)
        whole = {"encode_reference": b"encode graph bytes", "segment": b"segment graph bytes, all of them"}
        (folder / "encode_reference.onnx").write_bytes(whole["encode_reference"])
        (folder / "segment.onnx").write_bytes(whole["segment"][:10])
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": {"fingerprint_sha256": fingerprint},
                    "input_size": [224, 224],
                    "graphs": {k: {"file": f"{k}.onnx", "sha256": hashlib.sha256(v).hexdigest()} for k, v in whole.items()}}
        (folder / MANIFEST).write_text(json.dumps(manifest))

    def _inputs_as_outputs(self) -> None:
        """Inputs a careless output path would destroy: a video file, a copy of a split's
        annotations (a run that wrote its merged masks there would replace them), a split whose
        video_name climbs out of --save-dir, a manifest folder given as batch's --out."""
        self.video = self.path("clip.avi")
        writer = cv2.VideoWriter(str(self.video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
        for frame in sorted(self.frames.glob("*.jpg")):
            writer.write(cv2.imread(str(frame)))
        writer.release()
        ann = self.path("ann_copy")
        (ann / "blackswan").mkdir(parents=True)
        for png in sorted((DAVIS16 / "Annotations" / "480p" / "blackswan").glob("*.png"))[:3]:
            shutil.copy(png, ann / "blackswan")
        self.ann_copy = ann
        entries = davis_entries("blackswan", ann, [255], frames=3)
        self.split_ann_copy = self._write_split("split_ann_copy.json", entries)
        self.split_escape = self._write_split("split_escape.json", [{**e, "video_name": "../../escape"} for e in entries])
        small = self.path("ann_small", "blackswan")
        small.mkdir(parents=True)
        for png in sorted((ann / "blackswan").glob("*.png")):
            write_palette_png(small / png.name, cv2.resize(read_mask(png), (427, 240), interpolation=cv2.INTER_NEAREST))
        self.split_small_ann = self._write_split("split_small_ann.json",
                                                 davis_entries("blackswan", small.parent, [255], frames=3))
        self.manifest = self.path("manifest")
        shutil.copytree(self.frames, self.manifest / "clip")
        shutil.copy(self.mask, self.manifest / "clip.png")

    def _zips(self) -> None:
        self.mirror = self.path("mirror")
        self.mirror.mkdir()
        archive = self.mirror / "DAVIS-data.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for folder in ("JPEGImages", "Annotations", "ImageSets"):
                zf.writestr(f"DAVIS/{folder}/readme.txt", "some text that deflates " * 100)
        data = bytearray(archive.read_bytes())
        at = data.find(b"readme.txt") + len(b"readme.txt") + 10
        data[at:at + 8] = b"\xff" * 8  # damage the first member's deflate stream (its header stays intact)
        archive.write_bytes(bytes(data))


# --------------------------------------------------------------------------- the table
SEG = ("--input-size", 224, "--device", "cpu", "--no-progress")
EVAL = ("--input-size", 224, "--device", "cpu", "--no-progress")
TRAIN = ("--input-size", 224, 64, "--keep-topk", 8, "--batch-size", 2, "--no-pretrained", "--device", "cpu",
         "--num-workers", 0, "--max-steps", 1)


def segment(ws: Workspace, out: str, *extra, frames: Path | None = None, mask: Path | None = None) -> list:
    return ["segment", "--frames", frames or ws.frames, "--mask", mask or ws.mask, "--out", ws.path(out),
            "--weights", ws.ckpt, *SEG, *extra]


def with_session(ws: Workspace, session: Path) -> list:
    """``segment --session FILE`` without a --mask."""
    return ["segment", "--frames", ws.frames, "--session", session, "--out", ws.path("s"), "--weights", ws.ckpt, *SEG]


def evaluate(ws: Workspace, out: str, *extra, split: Path | None = None) -> list:
    return ["evaluate", "--split", split or ws.split, "--resume", ws.ckpt, "--save-dir", ws.path(out), *EVAL, *extra]


def train(ws: Workspace, out: str, *extra, split: Path | None = None) -> list:
    return ["train", "--model-dir", ws.path(out), "--split", split or ws.split, *TRAIN, *extra]


def score(ws: Workspace, *extra) -> list:
    return ["score", "--annotations", ws.ann, "--results", ws.res, "--workers", 1, *extra]


def _unchanged(video: Path, frames: Path) -> None:
    """The video still holds the frames it was written from (not replaced by an overlay)."""
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == len(list(frames.glob("*.jpg"))), count


def _absent(path: Path) -> None:
    assert not path.exists(), sorted(path.rglob("*"))


def _no_jsons(folder: Path) -> None:
    assert not folder.exists() or not list(folder.glob("*.json")), sorted(folder.iterdir())


def _no_pngs(folder: Path) -> None:
    assert not list(folder.glob("*.png")), sorted(folder.iterdir())


def _annotations_intact(ann: Path) -> None:
    for png in sorted((ann / "blackswan").glob("*.png")):
        assert png.read_bytes() == (DAVIS16 / "Annotations" / "480p" / "blackswan" / png.name).read_bytes(), png


def _nothing_escaped(ws: Workspace) -> None:
    assert not ws.root.parent.parent.joinpath("escape").exists() and not ws.path("e_escape").exists()


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def _merge_ignored_leftovers(ws: Workspace) -> None:
    out = ws.path("merge_leftovers", "v")
    assert _pngs(out) == ["00000.png", "00001.png", "00002.png"]  # no frame 00003 from the leftover
    assert read_mask(out / "00000.png").max() == 1


def _wrote_frames_before_the_empty_one(folder: Path) -> None:
    assert _pngs(folder) == ["00000.png", "00001.png"]  # the frames before 00002.jpg, complete (outputs)


def _segment_wrote_the_first_frames(ws: Workspace) -> None:
    assert _pngs(ws.path("seg_full")) == ["00000.png"]  # frame 0 written before the disk filled up


def _forward_from_frame_1(ws: Workspace) -> None:
    assert _pngs(ws.path("seg_forward")) == ["00001.png", "00002.png"]  # frame 0 is before the first mask


def _onnx_cache_repaired(ws: Workspace) -> None:
    assert _pngs(ws.path("seg_onnx")) == ["00000.png", "00001.png", "00002.png"]
    (segment_graph,) = ws.onnx_home.glob("onnx/*/segment.onnx")
    assert segment_graph.stat().st_size > 1000  # exported again, whole


TABLE: dict[str, Callable[[Workspace], Case]] = {
    # ---- segment: flag values (argparse, before anything is read)
    "segment --max-batch 0": lambda ws: Case(segment(ws, "s", "--max-batch", 0), 2, ("--max-batch", "at least 1")),
    "segment --max-batch -1": lambda ws: Case(segment(ws, "s", "--max-batch", -1), 2, ("--max-batch", "got -1")),
    "segment --fix-margin inf": lambda ws: Case(segment(ws, "s", "--fix-margin", "inf"), 2, ("--fix-margin", "finite")),
    "segment --fix-margin nan": lambda ws: Case(segment(ws, "s", "--fix-margin", "nan"), 2, ("--fix-margin", "finite")),
    "segment --fix-margin -0.5": lambda ws: Case(segment(ws, "s", "--fix-margin", "-0.5"), 2,
                                                 ("--fix-margin", "between 0 and 10")),
    "segment --input-size abc": lambda ws: Case(segment(ws, "s", "--input-size", "abc"), 2,
                                                ("--input-size", "not a whole number")),
    "segment --input-size 3 values": lambda ws: Case(segment(ws, "s", "--input-size", 224, 224, 224), 2,
                                                     ("--input-size", "N (a square) or H W")),
    "segment --input-size 100000": lambda ws: Case(segment(ws, "s", "--input-size", 100000), 1,
                                                   ("100000x100000", "would need about", "TiB", "--input-size")),
    "segment --input-size 160": lambda ws: Case(segment(ws, "s", "--input-size", 160), 1, ("160x160", "193")),
    "segment unknown flag": lambda ws: Case(segment(ws, "s", "--input-szie", 3), 2,
                                            ("unrecognized arguments: --input-szie",)),
    # ---- segment: inputs that are not what they claim
    "segment --frames FILE.jpg": lambda ws: Case(segment(ws, "s", frames=ws.frames / "00000.jpg"), 2,
                                                 ("--frames", "00000.jpg is a file, not a folder")),
    "segment --video FRAME.jpg": lambda ws: Case(
        ["segment", "--video", ws.frames / "00000.jpg", "--mask", ws.mask, "--out", ws.path("s"), "--weights", ws.ckpt,
         *SEG], 1, ("00000.jpg is an image, not a video file",)),
    "segment --video TEXT.mp4": lambda ws: Case(
        ["segment", "--video", ws.fake_video, "--mask", ws.mask, "--out", ws.path("s"), "--weights", ws.ckpt, *SEG],
        1, ("fake.mp4", "not a video file")),
    "segment truncated JPEG frame": lambda ws: Case(segment(ws, "seg_trunc", frames=ws.truncated), 1,
                                                    ("00002.jpg", "cannot be decoded completely"),
                                                    outputs=("seg_trunc",)),
    "segment zero-byte first frame": lambda ws: Case(segment(ws, "seg_empty0", frames=ws.empty_first), 1,
                                                     ("00000.jpg", "empty file (0 bytes)"), outputs=("seg_empty0",)),
    "segment zero-byte middle frame": lambda ws: Case(
        segment(ws, "seg_empty2", frames=ws.empty_middle), 1, ("00002.jpg", "empty file (0 bytes)"),
        outputs=("seg_empty2",), check=lambda: _wrote_frames_before_the_empty_one(ws.path("seg_empty2"))),
    "segment mask saved as JPEG": lambda ws: Case(segment(ws, "s", mask=ws.mask_jpeg), 1, ("mask_as.jpg", "JPEG")),
    "segment mask with JPEG artefacts": lambda ws: Case(segment(ws, "s", mask=ws.mask_lossy), 1,
                                                        ("mask_lossy.png", "looks like a lossy image")),
    "segment RGB colour mask": lambda ws: Case(segment(ws, "s", mask=ws.mask_rgb), 1,
                                               ("mask_rgb.png", "colour", "not a label map", "palette or grayscale")),
    # ---- segment --session: errors name the session file and its field or frame (issue 26.5)
    "segment --session mask beyond the video": lambda ws: Case(
        with_session(ws, ws.session_far), 1,
        ("session_far.json", "mask for frame 40", "the video has 3 frames")),
    "segment --session width true": lambda ws: Case(
        with_session(ws, ws.session_true), 1,
        ("session_true.json", "video.width must be a whole number", "not true")),
    "segment --session 300-digit frame key": lambda ws: Case(
        with_session(ws, ws.session_digits),
        1, ("session_digits.json", "300 digits", "not a frame number")),
    "segment --session and --mask on one frame": lambda ws: Case(
        segment(ws, "s", "--session", ws.session), 1,
        ("two masks for frame 0", "mask.png", "session.json")),
    "segment --session of another video (frames)": lambda ws: Case(
        with_session(ws, ws.session_frames),
        1, ("session_frames.json", "50 frames", "the video has 3 frames", "another video")),
    "segment --session of another video (size)": lambda ws: Case(
        with_session(ws, ws.session_size), 1,
        ("session_size.json", f"{W * 2}x{H * 2}", f"the frames are {W}x{H}", "another video")),
    "segment --overlay is a folder": lambda ws: Case(segment(ws, "s", "--overlay", ws.a_dir), 1,
                                                     ("--overlay", "a_dir is a directory")),
    "segment --out is a file": lambda ws: Case(segment(ws, "s")[:5] + ["--out", ws.a_file] + segment(ws, "s")[7:], 1,
                                               ("a_file.txt", "not a folder")),
    "segment --out on a read-only file system": lambda ws: Case(
        segment(ws, "ro/seg"), 1, ("ro/seg", "read-only file system"), fault={"kind": "erofs", "under": ws.path("ro")}),
    "segment disk full while writing masks": lambda ws: Case(
        segment(ws, "seg_full"), 1, ("cannot write", "seg_full", "no space left on the device"),
        fault={"kind": "enospc", "under": ws.path("seg_full"), "after": 1}, outputs=("seg_full",),
        check=lambda: _segment_wrote_the_first_frames(ws)),
    "segment weights that pickle code": lambda ws: Case(
        ["segment", "--frames", ws.frames, "--mask", ws.mask, "--out", ws.path("s"), "--weights", ws.evil, *SEG], 1,
        ("evil.pt is not a plain checkpoint", "never unpickles")),
    "segment checkpoint implying keep_topk 0": lambda ws: Case(
        ["segment", "--frames", ws.frames, "--mask", ws.mask, "--out", ws.path("s"), "--weights", ws.topk0, *SEG], 1,
        ("topk0.pt", "keep_topk 0 is not a positive divisor")),
    "segment SSMVOS_WEIGHTS_URL=notaurl": lambda ws: Case(
        ["segment", "--frames", ws.frames, "--mask", ws.mask, "--out", ws.path("s"), "--weights", "davis17", *SEG], 1,
        ("SSMVOS_WEIGHTS_URL='notaurl' is not a URL",),
        env={"SSMVOS_WEIGHTS_URL": "notaurl", "SSMVOS_HOME": str(ws.path("home"))}),
    "segment --mask with a superscript frame number": lambda ws: Case(
        segment(ws, "s", mask=f"\u00b2:{ws.mask}"), 1, ("\u00b2", "not a frame number")),
    "segment --mask -1:PATH": lambda ws: Case(segment(ws, "s", mask=f"-1:{ws.mask}"), 1,
                                              ("frame numbers start at 0, not -1",)),
    "segment --mask=-1:PATH": lambda ws: Case([a if a != "--mask" else f"--mask=-1:{ws.mask}"
                                               for a in segment(ws, "s") if a != ws.mask], 1,
                                              ("frame numbers start at 0, not -1",)),
    "segment --direction forward from frame 1": lambda ws: Case(
        segment(ws, "seg_forward", "--direction", "forward", mask=f"1:{ws.mask}"), 0, outputs=("seg_forward",),
        notes=("frame 0 comes before the first mask", "no PNG"), check=lambda: _forward_from_frame_1(ws)),
    "segment --backend onnxruntime with a damaged ONNX cache": lambda ws: Case(
        segment(ws, "seg_onnx", "--backend", "onnxruntime"), 0, env={"SSMVOS_HOME": str(ws.onnx_home)},
        outputs=("seg_onnx",), notes=("segment.onnx is damaged", "exporting it again"),
        check=lambda: _onnx_cache_repaired(ws)),
    # ---- evaluate
    "evaluate --max-batch 0": lambda ws: Case(evaluate(ws, "e", "--max-batch", 0), 2, ("--max-batch",)),
    "evaluate --num-workers 0": lambda ws: Case(evaluate(ws, "e", "--num-workers", 0), 2, ("--num-workers",)),
    "evaluate --keep-topk 0": lambda ws: Case(evaluate(ws, "e", "--keep-topk", 0), 2, ("--keep-topk", "between 1 and 1024, got 0")),
    "evaluate --keep-topk 7": lambda ws: Case(evaluate(ws, "e", "--keep-topk", 7), 1,
                                              ("keep_topk 7 is not a positive divisor of 1024", "--keep-topk")),
    "evaluate --fix-margin nan": lambda ws: Case(evaluate(ws, "e", "--fix-margin", "nan"), 2, ("--fix-margin",)),
    "evaluate --input-height 100": lambda ws: Case(evaluate(ws, "e", "--input-height", 100), 1,
                                                   ("100x224", "too small", "--input-height")),
    "evaluate --input-size 100000 1": lambda ws: Case(evaluate(ws, "e", "--input-size", 100000, 100000), 1,
                                                      ("would need about",)),
    "evaluate unknown flag": lambda ws: Case(evaluate(ws, "e", "--no-such-flag"), 2,
                                             ("unrecognized arguments: --no-such-flag",)),
    "evaluate --zip is a folder": lambda ws: Case(evaluate(ws, "e", "--zip", ws.a_dir), 1, ("--zip", "is a directory")),
    "evaluate --score-json is a folder": lambda ws: Case(evaluate(ws, "e", "--score", "--score-json", ws.a_dir), 1,
                                                         ("--score-json", "is a directory")),
    "evaluate --save-dir is a file": lambda ws: Case(
        ["evaluate", "--split", ws.split, "--resume", ws.ckpt, "--save-dir", ws.a_file, *EVAL], 1,
        ("--save-dir", "not a folder")),
    "evaluate split frame_index 'one'": lambda ws: Case(evaluate(ws, "e", split=ws.split_type), 1,
                                                        ("entry 1", "frame_index must be an integer", "'one'")),
    "evaluate split null image_path": lambda ws: Case(evaluate(ws, "e", split=ws.split_null), 1,
                                                      ("entry 0", "image_path must be a non-empty string", "None")),
    "evaluate zero-byte first frame": lambda ws: Case(evaluate(ws, "eval_empty0", split=ws.split_empty_first), 1,
                                                      ("00000.jpg", "empty file (0 bytes)"), outputs=("eval_empty0",)),
    "evaluate zero-byte middle frame": lambda ws: Case(
        evaluate(ws, "eval_empty2", "--merged-dir", ws.path("eval_empty2", "merged"), split=ws.split_empty_middle), 1,
        ("00002.jpg", "empty file (0 bytes)"), outputs=("eval_empty2",),
        check=lambda: (_wrote_frames_before_the_empty_one(ws.path("eval_empty2", "blackswan", "255")),
                       _wrote_frames_before_the_empty_one(ws.path("eval_empty2", "merged", "blackswan")))),
    "evaluate split is an object": lambda ws: Case(evaluate(ws, "e", split=ws.split_dict), 1,
                                                   ("split_dict.json", "JSON list")),
    "evaluate RGB colour annotation": lambda ws: Case(evaluate(ws, "eval_rgb", split=ws.split_rgb), 1,
                                                      ("00000.png", "colour", "not a label map"),
                                                      outputs=("eval_rgb",)),
    "evaluate disk full while writing masks": lambda ws: Case(
        evaluate(ws, "eval_full", "--merged-dir", ws.path("eval_full", "merged")), 1,
        ("cannot write", "eval_full", "no space left on the device"),
        fault={"kind": "enospc", "under": ws.path("eval_full"), "after": 2}, outputs=("eval_full",)),
    # ---- merge
    "segment --overlay is the video": lambda ws: Case(
        ["segment", "--video", ws.video, "--mask", ws.mask, "--out", ws.path("s_ov"), "--overlay", ws.video,
         "--weights", ws.ckpt, *SEG], 1, ("the overlay", "is the video", "destroy"),
        check=lambda: _unchanged(ws.video, ws.frames)),
    "segment --weights ''": lambda ws: Case([*segment(ws, "s")[:-len(SEG) - 2], "--weights", "", *SEG], 1,
                                            ("empty name", "davis17")),
    "segment --overlay is a PNG": lambda ws: Case(segment(ws, "s", "--overlay", ws.mask), 1,
                                                  ("--overlay", "must be a video file", ".png")),
    "segment --out is the --frames folder": lambda ws: Case(segment(ws, "s")[:5] + ["--out", ws.frames]
                                                            + segment(ws, "s")[7:], 1,
                                                            ("output folder", "is the frame folder"),
                                                            check=lambda: _no_pngs(ws.frames)),
    "evaluate --merged-dir is the annotations": lambda ws: Case(
        evaluate(ws, "e_ann", "--merged-dir", ws.ann_copy, split=ws.split_ann_copy), 1,
        ("merged masks' folder of blackswan", "is the annotation folder of blackswan"),
        check=lambda: _annotations_intact(ws.ann_copy)),
    "evaluate annotations smaller than their frames": lambda ws: Case(
        evaluate(ws, "e_small", split=ws.split_small_ann), 1, ("00000.png is 427×240, but its frame", "854×480")),
    "evaluate video_name ../../escape": lambda ws: Case(evaluate(ws, "e_escape", split=ws.split_escape), 1,
                                                        ("video_name", "not a plain folder name"),
                                                        check=lambda: _nothing_escaped(ws)),
    "batch --out is the manifest folder": lambda ws: Case(
        ["batch", "--manifest", ws.manifest, "--out", ws.manifest, "--weights", ws.ckpt, *SEG], 1,
        ("output folder of video 'clip'", "is its frame folder")),
    "merge missing input": lambda ws: Case(["merge", "-i", ws.path("nowhere"), "-o", ws.path("m")], 1,
                                           ("nowhere", "not found")),
    "merge output is a file": lambda ws: Case(["merge", "-i", ws.soft, "-o", ws.a_file], 1, ("a_file.txt", "not a folder")),
    "merge RGB colour soft mask": lambda ws: Case(["merge", "-i", ws.soft_rgb, "-o", ws.path("m_rgb")], 1,
                                                  ("00000.png", "colour")),
    "merge disk full": lambda ws: Case(["merge", "-i", ws.soft, "-o", ws.path("merge_full")], 1,
                                       ("merge_full", "no space left on the device"),
                                       fault={"kind": "enospc", "under": ws.path("merge_full"), "after": 1},
                                       outputs=("merge_full",)),
    "merge read-only output": lambda ws: Case(["merge", "-i", ws.soft, "-o", ws.path("ro", "merged")], 1,
                                              ("read-only file system",),
                                              fault={"kind": "erofs", "under": ws.path("ro")}),
    "merge skips a killed writer's leftovers": lambda ws: Case(
        ["merge", "-i", ws.soft, "-o", ws.path("merge_leftovers")], 0, outputs=("merge_leftovers",),
        check=lambda: _merge_ignored_leftovers(ws)),
    # ---- score
    "score --json is a folder": lambda ws: Case(score(ws, "--json", ws.a_dir), 1, ("--json", "is a directory")),
    "score --csv in a read-only folder": lambda ws: Case(score(ws, "--csv", ws.path("ro", "s.csv")), 1,
                                                         ("ro/s.csv", "read-only file system"),
                                                         fault={"kind": "erofs", "under": ws.path("ro")}),
    "score --json disk full": lambda ws: Case(score(ws, "--json", ws.path("score_full", "s.json")), 1,
                                              ("s.json", "no space left on the device"),
                                              fault={"kind": "enospc", "under": ws.path("score_full"), "after": 0},
                                              outputs=("score_full",)),
    "score --workers 0": lambda ws: Case(score(ws) + ["--workers", 0], 2, ("--workers", "at least 1")),
    "score unknown flag": lambda ws: Case(score(ws, "--jsn", "x"), 2, ("unrecognized arguments: --jsn",)),
    "score missing results": lambda ws: Case(["score", "--annotations", ws.ann, "--results", ws.path("nowhere")], 1,
                                             ("nowhere", "not found")),
    # ---- index
    "index --out-dir is a file": lambda ws: Case(["index", "--davis2017", ws.davis_good, "--out-dir", ws.a_file], 1,
                                                 ("--out-dir", "not a folder")),
    "index --out-dir read-only": lambda ws: Case(["index", "--davis2017", ws.davis_good, "--out-dir", ws.path("ro", "sp")],
                                                 1, ("read-only file system",),
                                                 fault={"kind": "erofs", "under": ws.path("ro")}),
    "index disk full": lambda ws: Case(["index", "--davis2017", ws.davis_good, "--out-dir", ws.path("index_full")], 1,
                                       ("davis2017_train.json", "no space left on the device"),
                                       fault={"kind": "enospc", "under": ws.path("index_full"), "after": 0},
                                       outputs=("index_full",)),
    "index with one bad split writes none": lambda ws: Case(
        ["index", "--davis2017", ws.davis_bad_val, "--out-dir", ws.path("i_bad_val")], 1, ("not-there",),
        check=lambda: _no_jsons(ws.path("i_bad_val"))),
    "index finds nothing": lambda ws: Case(["index", "--datasets-root", ws.empty_root, "--out-dir", ws.path("i")], 1,
                                           ("ssmvos download-data",)),
    "index RGB colour annotations": lambda ws: Case(["index", "--davis2017", ws.davis_rgb, "--out-dir", ws.path("i")], 1,
                                                    ("00000.png", "colour", "not a label map")),
    "index annotations with JPEG artefacts": lambda ws: Case(
        ["index", "--davis2017", ws.davis_lossy, "--out-dir", ws.path("i")], 1, ("00000.png", "looks like a lossy image")),
    "index --mose video without frames": lambda ws: Case(
        ["index", "--mose", ws.mose_no_frames, "--out-dir", ws.path("i")], 1,
        ("video 'v' has no frames", "JPEGImages/v holds no .jpg file", "Annotations/v")),
    # ---- train
    "train --batch-size 0": lambda ws: Case(train(ws, "t", "--batch-size", 0), 2, ("--batch-size", "at least 1")),
    "train --max-steps 0": lambda ws: Case(train(ws, "t", "--max-steps", 0), 2, ("--max-steps",)),
    "train --seed -1": lambda ws: Case(train(ws, "t", "--seed", -1), 2, ("--seed",)),
    "train --flip-rate 2": lambda ws: Case(train(ws, "t", "--flip-rate", 2), 2, ("--flip-rate", "between 0 and 1")),
    "train --base-lr nan": lambda ws: Case(train(ws, "t", "--base-lr", "nan"), 2, ("--base-lr", "finite")),
    "train --lr-decay-rate 0": lambda ws: Case(train(ws, "t", "--lr-decay-rate", 0), 2,
                                               ("--lr-decay-rate", "greater than 0")),
    "train --rotation 400": lambda ws: Case(train(ws, "t", "--rotation", 400), 2, ("--rotation",)),
    "train --keep-topk 7": lambda ws: Case(train(ws, "t", "--keep-topk", 7), 1, ("keep_topk 7", "--keep-topk")),
    "train --keep-topk 0": lambda ws: Case(train(ws, "t", "--keep-topk", 0), 2, ("--keep-topk",)),
    "train batch needing absurd memory": lambda ws: Case(train(ws, "t", "--batch-size", 10 ** 9), 1,
                                                         ("would need about", "--batch-size")),
    "train --min-margin above --max-margin": lambda ws: Case(train(ws, "t", "--min-margin", 2, "--max-margin", 1), 1,
                                                             ("--min-margin 2.0 exceeds --max-margin 1.0",)),
    "train unknown flag": lambda ws: Case(train(ws, "t", "--learning-rate", 1), 2,
                                          ("unrecognized arguments: --learning-rate",)),
    "train into a finished run": lambda ws: Case(train(ws, "finished_run"), 1,
                                                 ("already holds a run", "--resume-step", "another --model-dir")),
    "train split frame_index 'one'": lambda ws: Case(train(ws, "t", split=ws.split_type), 1, ("frame_index",)),
    "train error inside a DataLoader worker": lambda ws: Case(
        train(ws, "train_worker", "--num-workers", 1, split=ws.split_rgb), 1, ("colour", "not a label map"),
        outputs=("train_worker",)),
    "train zero-byte frames read by a DataLoader worker": lambda ws: Case(
        train(ws, "train_empty", "--num-workers", 1, split=ws.split_empty_frames), 1,
        ("video 'blackswan'", "empty_frames/blackswan/0000"), outputs=("train_empty",)),
    # ---- download, download-data
    "download SSMVOS_WEIGHTS_URL=notaurl": lambda ws: Case(
        ["download", "davis16"], 1, ("SSMVOS_WEIGHTS_URL", "not a URL"),
        env={"SSMVOS_WEIGHTS_URL": "notaurl", "SSMVOS_HOME": str(ws.path("home"))}),
    "download unknown name": lambda ws: Case(["download", "davis18"], 2, ("invalid choice",)),
    "download-data SSMVOS_DATA_URL=notaurl": lambda ws: Case(
        ["download-data", "davis2016", "--root", ws.path("dl1")], 1, ("SSMVOS_DATA_URL", "not a URL"),
        env={"SSMVOS_DATA_URL": "notaurl"}, check=lambda: _absent(ws.path("dl1"))),  # no empty --root left
    "download-data damaged deflate stream": lambda ws: Case(
        ["download-data", "davis2016", "--root", ws.path("dl2")], 1, ("damaged", "deleted"),
        env={"SSMVOS_DATA_URL": ws.mirror.as_uri()}, outputs=("dl2",)),
    "download-data --root is a file": lambda ws: Case(["download-data", "davis2016", "--root", ws.a_file], 1,
                                                      ("a_file.txt",)),
}


# --------------------------------------------------------------------------- running it
@pytest.fixture(scope="module")
def table(tmp_path_factory, reference_checkpoint, model) -> tuple[Workspace, dict[str, Case], dict[str, dict]]:
    ws = Workspace(tmp_path_factory.mktemp("bad_inputs"), reference_checkpoint)
    ws.damage_onnx_cache(model)  # the checkpoint holds these weights
    cases = {name: build(ws) for name, build in TABLE.items()}
    spec = ws.path("cases.json")
    spec.write_text(json.dumps([{"argv": [str(a) for a in c.argv], "env": c.env, "fault": c.fault}
                                for c in cases.values()], default=str))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cli_batch.py"), spec, ws.path("results.json")],
                          cwd=ws.root, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(ws.path("results.json").read_text())
    return ws, cases, dict(zip(cases, results))


def test_the_table_is_large_enough():
    assert len(TABLE) >= 60
    assert {name.split()[0] for name in TABLE} >= {"segment", "evaluate", "merge", "score", "index", "train",
                                                   "download", "download-data"}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error:" in line]


@pytest.mark.parametrize("name", list(TABLE))
def test_bad_input_or_fault(name, table):
    ws, cases, results = table
    case, result = cases[name], results[name]
    everything = result["stdout"] + result["stderr"]
    assert result["status"] == case.status, everything
    assert "Traceback" not in everything, everything
    assert not re.search(r"^\[[\w,]+ @ 0x", result["stderr"], re.M), result["stderr"]  # FFmpeg's own lines
    if case.status:
        lines = error_lines(result["stderr"])
        assert len(lines) == 1, result["stderr"]
        last = result["stderr"].strip().splitlines()[-1]
        assert lines[0] == last, result["stderr"]
        command = case.argv[0]
        assert last.startswith(f"ssmvos {command}: error: "), last
        for needle in case.needles:
            assert needle in last, f"{needle!r} not in {last!r}"
        if case.status == 2:  # argument errors come with the subcommand's usage, not the top level's
            assert result["stderr"].startswith(f"usage: ssmvos {command} "), result["stderr"]
    for note in case.notes:
        assert note in result["stderr"], f"{note!r} not in {result['stderr']!r}"
    for output in case.outputs:
        if ws.path(output).exists():
            assert_complete(ws.path(output))
    if case.check is not None:
        case.check()

"""Dataset folders -> split files (the original make_index.py), without decoding frames.

A split file is a JSON list of frame entries (see :mod:`ssmvos.data.splits`), ordered video
by video, object by object, frame by frame, so that the frames of the object of entry ``i``
are entries ``i - frame_index ... i - frame_index + num_frames - 1``. Only the first
annotation of each DAVIS video is decoded (to find its objects).

Paths are absolute: the video folders are resolved (symlinked folders followed), file names
are kept as they are.

Layouts:
* DAVIS 2016: ``ImageSets/480p/{train,val}.txt`` (lines ``image mask``; the video is the
  image's parent folder), ``JPEGImages/480p/<video>/*.jpg``, ``Annotations/480p/<video>/*.png``;
* DAVIS 2017: ``ImageSets/2017/{train,val}.txt`` (video names); test-dev: a separate root
  with ``ImageSets/2017/test-dev.txt`` and only the first annotation of each video, which
  every entry of that video points to;
* YouTube-VOS 2018: ``train/`` and ``valid/`` with ``JPEGImages/<video>/<frame>.jpg``,
  ``Annotations/<video>/<frame>.png`` and ``meta.json``; each object over its own frame
  list; in ``valid`` every entry of an object points to its first annotation.
* Other YouTube-VOS-layout datasets (YouTube-VOS 2019, MOSE): the same layout; without a
  ``meta.json`` (MOSE) the object lists are derived from the annotation PNGs
  (:mod:`ssmvos.data.vos_meta`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import SSMVOSError
from ..io.frames.files import sort_frames
from ..io.labels import read_label_map
from .splits import FrameEntry

def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SSMVOSError(f"cannot read list file {path}: {exc}") from None


def _entry(image: Path, mask: Path, video: str, num_frames: int, frame_index: int, obj: int) -> FrameEntry:
    return FrameEntry(str(image), str(mask), video, num_frames, frame_index, obj)


def _resolved_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise SSMVOSError(f"{what} folder not found: {path}")
    return path.resolve()


def first_frame_objects(mask_path: Path, notes: Callable[[str], None] | None = None) -> list[int]:
    """The nonzero labels of a first-frame annotation (sorted); raises if there are none."""
    labels = np.unique(read_label_map(mask_path, "first-frame annotation"))
    objects = [int(v) for v in labels if v != 0]
    if not objects:
        raise SSMVOSError(f"first-frame annotation {mask_path} is empty: no object to index")
    if notes and 255 in objects and len(objects) > 1:
        notes(f"note: {mask_path} has label 255 (void in DAVIS 2017) beside other labels; "
              "it is indexed as an object, as the original make_index.py does")
    return objects


def index_davis_videos(video_root: Path, label_root: Path, videos: Iterable[str], first_annotation_only: bool = False,
                       notes: Callable[[str], None] | None = None) -> list[FrameEntry]:
    """Entries for DAVIS-layout videos: ``<video_root>/<v>/*.jpg`` with ``<label_root>/<v>/*.png``.

    ``first_annotation_only`` (test-dev): each video has exactly one annotation, used for
    all its entries. Otherwise images and annotations must pair up by file stem.
    """
    entries: list[FrameEntry] = []
    for video in videos:
        image_dir = _resolved_dir(video_root / video, f"video {video!r} frame")
        label_dir = _resolved_dir(label_root / video, f"video {video!r} annotation")
        # hidden files (a leading dot: our temporaries, macOS's ._00000.jpg) are not frames
        images = sort_frames(p for p in image_dir.iterdir() if p.suffix == ".jpg" and not p.name.startswith("."))
        masks = sort_frames(p for p in label_dir.iterdir() if p.suffix == ".png" and not p.name.startswith("."))
        if not images:
            raise SSMVOSError(f"no .jpg frames in {image_dir}")
        if first_annotation_only:
            if len(masks) != 1:
                raise SSMVOSError(f"{label_dir} holds {len(masks)} .png annotations; a test-dev video "
                                  "must have only its first-frame annotation")
            masks = masks * len(images)
        elif [p.stem for p in images] != [p.stem for p in masks]:
            unpaired = sorted({p.stem for p in images} ^ {p.stem for p in masks})
            raise SSMVOSError(f"frames in {image_dir} ({len(images)} .jpg) and annotations in {label_dir} "
                              f"({len(masks)} .png) do not pair up"
                              + (f": unpaired {', '.join(unpaired[:5])}" if unpaired else ""))
        for obj in first_frame_objects(masks[0], notes):
            entries += [_entry(i, m, video, len(images), k, obj) for k, (i, m) in enumerate(zip(images, masks))]
    return entries


def davis2016_videos(list_path: Path) -> list[str]:
    """Video names of a DAVIS 2016 list (lines ``image mask``), sorted."""
    videos = set()
    for number, line in enumerate(_read_text(list_path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise SSMVOSError(f"{list_path} line {number}: expected 'image mask', got {line.strip()!r}")
        videos.add(Path(fields[0]).parent.name)
    if not videos:
        raise SSMVOSError(f"list file {list_path} names no videos")
    return sorted(videos)


def davis2017_videos(list_path: Path) -> list[str]:
    """Video names of a DAVIS 2017 list (whitespace-separated), in file order."""
    videos = _read_text(list_path).split()
    if not videos:
        raise SSMVOSError(f"list file {list_path} names no videos")
    return videos


def index_davis2016(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[FrameEntry]:
    """Entries of DAVIS 2016 ``split`` ('train' or 'val') under ``root``."""
    root = Path(root)
    videos = davis2016_videos(root / "ImageSets" / "480p" / f"{split}.txt")
    return index_davis_videos(root / "JPEGImages" / "480p", root / "Annotations" / "480p", videos, notes=notes)


def index_davis2017(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[FrameEntry]:
    """Entries of DAVIS 2017 ``split``: 'train' or 'val' (train/val root) or 'test' (test-dev root)."""
    root = Path(root)
    list_name = {"train": "train.txt", "val": "val.txt", "test": "test-dev.txt"}[split]
    videos = davis2017_videos(root / "ImageSets" / "2017" / list_name)
    return index_davis_videos(root / "JPEGImages" / "480p", root / "Annotations" / "480p", videos,
                              first_annotation_only=split == "test", notes=notes)


def _load_meta(path: Path) -> dict:
    try:
        meta = json.loads(_read_text(path))
        videos = meta["videos"]
        for video, info in videos.items():
            for obj, o in info["objects"].items():
                int(obj)
                if not isinstance(o["frames"], list) or not o["frames"]:
                    raise ValueError(f"video {video} object {obj} has no frames")
    except json.JSONDecodeError as exc:
        raise SSMVOSError(f"{path} is not valid JSON ({exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SSMVOSError(f"{path} is not a YouTube-VOS meta.json "
                          f"({{'videos': {{video: {{'objects': {{id: {{'frames': [...]}}}}}}}}}}): {exc}") from None
    return videos


def _names(folder: Path) -> set[str]:
    return {entry.name for entry in os.scandir(folder)}


def index_youtube(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[FrameEntry]:
    """Entries of a YouTube-VOS-layout ``split``: 'train' (``train/``) or 'test' (``valid/``).

    Objects come from ``meta.json``, or, when there is none (MOSE), from the annotation PNGs.
    """
    base = Path(root) / {"train": "train", "test": "valid"}[split]
    test = split == "test"
    if (base / "meta.json").is_file():
        videos = _load_meta(base / "meta.json")
        source = f"listed in {base / 'meta.json'}"
    else:  # a YouTube-VOS-layout dataset without meta.json
        from .vos_meta import derive_meta

        if notes:
            notes(f"note: no meta.json in {base}: objects derived from the annotation PNGs")
        videos = derive_meta(base, test)
        source = None  # the frames come from the annotation PNGs (and, for test, the frame folder)
    entries: list[FrameEntry] = []
    for video, info in videos.items():
        image_dir = _resolved_dir(base / "JPEGImages" / video, f"video {video!r} frame")
        label_dir = _resolved_dir(base / "Annotations" / video, f"video {video!r} annotation")
        have_images, have_masks = _names(image_dir), _names(label_dir)
        for obj, o in info["objects"].items():
            frames = [str(f) for f in o["frames"]]
            needed_masks = frames[:1] if test else frames
            missing = [f"{f}.jpg" for f in frames if f"{f}.jpg" not in have_images]
            missing += [f"{f}.png" for f in needed_masks if f"{f}.png" not in have_masks]
            if missing:
                if not any(name.endswith(".jpg") for name in have_images):
                    raise SSMVOSError(f"video {video!r} has no frames: {image_dir} holds no .jpg file, but "
                                      f"{label_dir} has its annotations (remove the video or restore its frames)")
                folder = image_dir if missing[0].endswith(".jpg") else label_dir
                why = source or f"annotated in {label_dir}"
                raise SSMVOSError(f"frames and annotations of video {video!r} object {obj} do not pair up: "
                                  f"{folder} lacks {missing[0]} ({why})")
            first_mask = label_dir / f"{frames[0]}.png"
            for k, frame in enumerate(frames):
                mask = first_mask if test else label_dir / f"{frame}.png"
                entries.append(_entry(image_dir / f"{frame}.jpg", mask, video, len(frames), k, int(obj)))
    return entries

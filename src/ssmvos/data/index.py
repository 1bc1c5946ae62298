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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..errors import SSMVOSError
from .io import read_mask

#: Dataset key -> folder name of the default layout under ``datasets/``.
DEFAULT_FOLDERS = {"davis2016": "DAVIS2016", "davis2017": "DAVIS2017", "davis2017_test": "DAVIS2017_test",
                   "youtube": "YouTubeVOS",
                   # YouTube-VOS-layout datasets besides YouTube-VOS 2018 (issue 15)
                   "youtube2019": "YouTubeVOS2019", "mose": "MOSE"}


@dataclass(frozen=True)
class SplitSpec:
    """One output split: its file name, the dataset root key it needs and its list file."""

    name: str
    root_key: str
    list_file: str  # relative to the root


SPLITS = (
    SplitSpec("davis2016_train", "davis2016", "ImageSets/480p/train.txt"),
    SplitSpec("davis2016_val", "davis2016", "ImageSets/480p/val.txt"),
    SplitSpec("davis2017_train", "davis2017", "ImageSets/2017/train.txt"),
    SplitSpec("davis2017_val", "davis2017", "ImageSets/2017/val.txt"),
    SplitSpec("davis2017_test", "davis2017_test", "ImageSets/2017/test-dev.txt"),
    SplitSpec("youtube_train", "youtube", "train/meta.json"),
    SplitSpec("youtube_test", "youtube", "valid/meta.json"),
    # YouTube-VOS-layout datasets besides YouTube-VOS 2018 (issue 15); MOSE has no meta.json
    SplitSpec("youtube2019_train", "youtube2019", "train/meta.json"),
    SplitSpec("youtube2019_test", "youtube2019", "valid/meta.json"),
    SplitSpec("mose_train", "mose", "train/Annotations"),
    SplitSpec("mose_test", "mose", "valid/Annotations"),
)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SSMVOSError(f"cannot read list file {path}: {exc}") from None


def _entry(image: Path, mask: Path, video: str, num_frames: int, frame_index: int, obj: int) -> dict:
    return dict(image_path=str(image), mask_path=str(mask), video_name=video, num_frames=num_frames,
                frame_index=frame_index, object_index=obj)


def _resolved_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise SSMVOSError(f"{what} folder not found: {path}")
    return path.resolve()


def first_frame_objects(mask_path: Path, notes: Callable[[str], None] | None = None) -> list[int]:
    """The nonzero labels of a first-frame annotation (sorted); raises if there are none."""
    labels = np.unique(read_mask(mask_path))
    objects = [int(v) for v in labels if v != 0]
    if not objects:
        raise SSMVOSError(f"first-frame annotation {mask_path} is empty: no object to index")
    if notes and 255 in objects and len(objects) > 1:
        notes(f"note: {mask_path} has label 255 (void in DAVIS 2017) beside other labels; "
              "it is indexed as an object, as the original make_index.py does")
    return objects


def index_davis_videos(video_root: Path, label_root: Path, videos: Iterable[str], first_annotation_only: bool = False,
                       notes: Callable[[str], None] | None = None) -> list[dict]:
    """Entries for DAVIS-layout videos: ``<video_root>/<v>/*.jpg`` with ``<label_root>/<v>/*.png``.

    ``first_annotation_only`` (test-dev): each video has exactly one annotation, used for
    all its entries. Otherwise images and annotations must pair up by file stem.
    """
    entries: list[dict] = []
    for video in videos:
        image_dir = _resolved_dir(video_root / video, f"video {video!r} frame")
        label_dir = _resolved_dir(label_root / video, f"video {video!r} annotation")
        images = sorted(p for p in image_dir.iterdir() if p.suffix == ".jpg")
        masks = sorted(p for p in label_dir.iterdir() if p.suffix == ".png")
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


def index_davis2016(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[dict]:
    """Entries of DAVIS 2016 ``split`` ('train' or 'val') under ``root``."""
    root = Path(root)
    videos = davis2016_videos(root / "ImageSets" / "480p" / f"{split}.txt")
    return index_davis_videos(root / "JPEGImages" / "480p", root / "Annotations" / "480p", videos, notes=notes)


def index_davis2017(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[dict]:
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


def index_youtube(root: str | os.PathLike, split: str, notes: Callable[[str], None] | None = None) -> list[dict]:
    """Entries of a YouTube-VOS-layout ``split``: 'train' (``train/``) or 'test' (``valid/``).

    Objects come from ``meta.json``, or, when there is none (MOSE), from the annotation PNGs.
    """
    base = Path(root) / {"train": "train", "test": "valid"}[split]
    test = split == "test"
    if (base / "meta.json").is_file():
        videos = _load_meta(base / "meta.json")
    else:  # a YouTube-VOS-layout dataset without meta.json (issue 15)
        from .vos_meta import derive_meta

        if notes:
            notes(f"note: no meta.json in {base}: objects derived from the annotation PNGs")
        videos = derive_meta(base, test)
    entries: list[dict] = []
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
                folder = image_dir if missing[0].endswith(".jpg") else label_dir
                raise SSMVOSError(f"frames and annotations of video {video!r} object {obj} do not pair up: "
                                  f"{folder} lacks {missing[0]} (listed in {base / 'meta.json'})")
            first_mask = label_dir / f"{frames[0]}.png"
            for k, frame in enumerate(frames):
                mask = first_mask if test else label_dir / f"{frame}.png"
                entries.append(_entry(image_dir / f"{frame}.jpg", mask, video, len(frames), k, int(obj)))
    return entries


def index_split(spec: SplitSpec, root: str | os.PathLike, notes: Callable[[str], None] | None = None) -> list[dict]:
    """Entries of one split (see :data:`SPLITS`) of the dataset at ``root``."""
    dataset, split = spec.name.rsplit("_", 1)
    if dataset == "davis2016":
        return index_davis2016(root, split, notes)
    if dataset == "davis2017":
        return index_davis2017(root, split, notes)
    return index_youtube(root, split, notes)


def write_split(path: str | os.PathLike, entries: list[dict]) -> None:
    """Write a split file atomically (temporary file + rename), indented like the original."""
    write_json_atomic(path, entries, indent=4)


def default_roots(datasets_root: str | os.PathLike) -> dict[str, Path]:
    """The dataset folders of the default layout that exist under ``datasets_root``."""
    base = Path(datasets_root)
    return {key: base / folder for key, folder in DEFAULT_FOLDERS.items() if (base / folder).is_dir()}


def index_datasets(roots: dict[str, str | os.PathLike], out_dir: str | os.PathLike,
                   report: Callable[[str], None] = print) -> list[Path]:
    """Index every split whose dataset root is in ``roots`` and whose list file exists.

    ``roots`` maps 'davis2016', 'davis2017', 'davis2017_test', 'youtube' to folders. Writes
    ``<out_dir>/<split>.json``; a missing list file is reported in one line and skipped.
    Returns the files written; raises SSMVOSError if a root is missing or nothing was found.
    """
    unknown = set(roots) - set(DEFAULT_FOLDERS)
    if unknown:
        raise ValueError(f"unknown dataset keys {sorted(unknown)}")
    for key, root in roots.items():
        if not Path(root).is_dir():
            raise SSMVOSError(f"{key} root folder not found: {root}")
    written = []
    for spec in SPLITS:
        if spec.root_key not in roots:
            continue
        root = Path(roots[spec.root_key])
        list_path = root / spec.list_file
        if not list_path.exists():  # a file, or MOSE's Annotations folder
            report(f"{spec.name}: skipped, no list file {list_path}")
            continue
        entries = index_split(spec, root, report)
        out = Path(out_dir) / f"{spec.name}.json"
        write_split(out, entries)
        videos = len({e["video_name"] for e in entries})
        report(f"{spec.name}: {len(entries)} entries, {videos} videos -> {out}")
        written.append(out)
    if not written:
        raise SSMVOSError("no split list found in the given dataset roots "
                          f"({', '.join(str(r) for r in roots.values())}); nothing written")
    return written

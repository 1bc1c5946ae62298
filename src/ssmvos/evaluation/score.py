"""Folders of masks -> DAVIS J&F figures, as the official semi-supervised evaluation.

Layout: ``<annotations>/<video>/<frame>.png`` and ``<results>/<video>/<frame>.png`` with the
same frame names (the folder ``Annotations/480p`` of a DAVIS root is such a folder; a DAVIS
root itself is accepted too). Semantics of the official code
(github.com/davisvideochallenge/davis2017-evaluation, semi-supervised task):

* frames: the annotation PNGs in name order; the first and the last are not evaluated (and
  their result PNGs are not read).
* objects: ``1..N`` with N the largest label of the first annotation frame (void 255 not
  counted); object k of a frame is the pixels equal to k. Labels above N in later
  annotation frames belong to no object.
* results: indexed PNGs (palette or grayscale); object k = pixels equal to k. A result with
  fewer objects is zero-padded (missing objects score as empty masks); a label above N in an
  evaluated frame is an error (the official code stops there too).
* void (255 in a davis2017 annotation): the official semi-supervised evaluation passes no void
  mask to the metrics, and its loader has already turned 255 into background, so void pixels
  count as background (a prediction there is a false positive). That is the default here;
  ``exclude_void=True`` leaves them out of J and F instead (not the official figures).
* ``fmt="davis2016"``: any nonzero annotation pixel and any nonzero result pixel is object 1.
* figures: per object mean/recall/decay of its per-frame J and F (:func:`db_statistics`);
  global figures are means over all objects of all videos; ``JF_mean = (J_mean + F_mean) / 2``.

Each video is scored frame by frame (one annotation and one result PNG in memory at a time);
videos run in parallel in a process pool.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from PIL import Image

from ..errors import SSMVOSError
from .metrics import BOUND_TH, db_statistics, frame_scores

FORMATS = ("davis2017", "davis2016")
VOID_LABEL = 255
#: Names of the figures of one object, in table order.
OBJECT_KEYS = ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")
#: Names of the global figures (``JF_mean`` first, as DAVIS leaderboards).
GLOBAL_KEYS = ("JF_mean",) + OBJECT_KEYS

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_label_png(path: Path) -> np.ndarray:
    """The (H, W) integer label map of an indexed (palette) or grayscale PNG.

    Palette PNGs give their palette indices (never colours). 8-bit grayscale PNGs are
    decoded by OpenCV (faster, same values), the rest by Pillow. Raises SSMVOSError naming
    the file when it is missing, unreadable or not single-channel.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SSMVOSError(f"missing PNG {path}") from None
    except OSError as exc:
        raise SSMVOSError(f"cannot read {path}: {exc.strerror or exc}") from None
    array = None
    # IHDR: bit depth at byte 24, colour type at byte 25 (0 = grayscale, 3 = palette).
    if len(data) > 26 and data[:8] == _PNG_SIGNATURE and data[24] == 8 and data[25] == 0:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    raise SSMVOSError(f"{path} is not a PNG (it is {image.format})")
                array = np.array(image)
        except SSMVOSError:
            raise
        except Exception as exc:  # PIL raises many types for damaged files
            raise SSMVOSError(f"cannot read PNG {path}: {exc}") from None
    if array.ndim != 2:
        raise SSMVOSError(f"{path} is not an indexed or grayscale PNG (it has {array.shape[2]} channels)")
    return array


def _has_pngs(folder: Path) -> bool:
    return any(p.suffix == ".png" for p in folder.iterdir())


def resolve_annotations(annotations_dir: str | os.PathLike) -> Path:
    """The folder of video folders: ``annotations_dir`` itself, or ``Annotations/480p`` of a DAVIS root."""
    root = Path(annotations_dir)
    if not root.is_dir():
        raise SSMVOSError(f"annotations folder not found: {root}")
    davis = root / "Annotations" / "480p"
    if davis.is_dir() and not any(d.is_dir() and _has_pngs(d) for d in root.iterdir()):
        return davis
    return root


def list_videos(annotations_dir: str | os.PathLike) -> list[str]:
    """Names of the sub-folders of ``annotations_dir`` that hold PNGs, sorted."""
    root = Path(annotations_dir)
    return sorted(d.name for d in root.iterdir() if d.is_dir() and _has_pngs(d))


@dataclass(frozen=True)
class VideoJob:
    """Everything a worker needs to score one video."""
    name: str
    annotations: Path
    results: Path
    fmt: str
    exclude_void: bool
    bound_th: float


@dataclass
class VideoScores:
    """Per-frame J and F of one video's objects: arrays (n_objects, n_evaluated_frames)."""
    name: str
    frames: list[str]
    j: np.ndarray
    f: np.ndarray


def _annotation(path: Path, fmt: str, exclude_void: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Label map (H, W) and optional void mask of an annotation PNG in format ``fmt``."""
    labels = read_label_png(path)
    if fmt == "davis2016":
        return (labels != 0).astype(np.uint8), None
    void = labels == VOID_LABEL
    if not void.any():
        return labels, None
    labels = np.where(void, 0, labels)  # the official loader: void -> background
    return labels, (void if exclude_void else None)


def score_video(job: VideoJob) -> VideoScores:
    """Per-frame J and F of every object of one video (first and last frames left out)."""
    frames = sorted(p.stem for p in job.annotations.iterdir() if p.suffix == ".png")
    if len(frames) < 3:
        raise SSMVOSError(f"{job.annotations} has {len(frames)} annotation frame(s); the evaluation "
                          "leaves out the first and last, so it needs at least 3")
    if not job.results.is_dir():
        raise SSMVOSError(f"missing results folder for video {job.name}: {job.results}")
    first, _ = _annotation(job.annotations / f"{frames[0]}.png", job.fmt, job.exclude_void)
    n_objects = int(first.max()) if first.size else 0
    evaluated = frames[1:-1]
    j = np.zeros((n_objects, len(evaluated)))
    f = np.zeros((n_objects, len(evaluated)))
    for t, frame in enumerate(evaluated):
        ann_path = job.annotations / f"{frame}.png"
        res_path = job.results / f"{frame}.png"
        gt, void = _annotation(ann_path, job.fmt, job.exclude_void)
        if not res_path.is_file():
            raise SSMVOSError(f"missing result frame {res_path} (annotated in {ann_path})")
        pred = read_label_png(res_path)
        if pred.shape != gt.shape:
            raise SSMVOSError(f"result {res_path} is {pred.shape[1]}x{pred.shape[0]} but its annotation "
                              f"{ann_path} is {gt.shape[1]}x{gt.shape[0]}")
        if job.fmt == "davis2016":
            pred = (pred != 0).astype(np.uint8)
        else:
            top = int(pred.max()) if pred.size else 0
            if top > n_objects:
                raise SSMVOSError(f"result {res_path} contains object id {top} but video {job.name} has "
                                  f"{n_objects} object(s) in its first annotation frame")
        j[:, t], f[:, t] = frame_scores(gt, pred, n_objects, void, job.bound_th)
    return VideoScores(job.name, evaluated, j, f)


def _object_figures(j: np.ndarray, f: np.ndarray) -> dict[str, float]:
    jm, jr, jd = db_statistics(j)
    fm, fr, fd = db_statistics(f)
    return {"J_mean": jm, "J_recall": jr, "J_decay": jd, "F_mean": fm, "F_recall": fr, "F_decay": fd}


def summarize(videos: Iterable[VideoScores]) -> dict:
    """Figures from per-frame scores: global means over objects and ``per_object``."""
    per_object: dict[str, dict[str, float]] = {}
    for video in videos:
        for k in range(video.j.shape[0]):
            per_object[f"{video.name}_{k + 1}"] = _object_figures(video.j[k], video.f[k])
    if not per_object:
        raise SSMVOSError("no objects to score: every first annotation frame is empty")
    out: dict = {key: float(np.mean([o[key] for o in per_object.values()])) for key in OBJECT_KEYS}
    out = {"JF_mean": (out["J_mean"] + out["F_mean"]) / 2, **out}
    out["per_object"] = per_object
    return out


def default_workers(n_videos: int) -> int:
    """min(CPUs available to this process, number of videos), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n_videos))


def _ignore_interrupts() -> None:
    """Pool workers leave Ctrl-C to the main process, which stops the pool (no worker tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def score_folder(annotations_dir: str | os.PathLike, results_dir: str | os.PathLike, fmt: str = "davis2017",
                 sequences: Iterable[str] | None = None, workers: int | None = None,
                 exclude_void: bool = False, bound_th: float = BOUND_TH) -> dict:
    """J&F of the result PNGs in ``results_dir`` against the annotations in ``annotations_dir``.

    Returns ``{"JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay",
    "per_object": {"<video>_<id>": {"J_mean", ..., "F_decay"}}}`` with values in [0, 1]
    (decays may be negative). ``sequences``: restrict to these videos (default: every video
    folder of the annotations). ``workers``: processes (default min(CPUs, videos); 1 = in this
    process). Raises SSMVOSError naming the file for any bad input.
    """
    if fmt not in FORMATS:
        raise SSMVOSError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    annotations = resolve_annotations(annotations_dir)
    results = Path(results_dir)
    if not results.is_dir():
        raise SSMVOSError(f"results folder not found: {results}")
    if sequences is None:
        names = list_videos(annotations)
        if not names:
            raise SSMVOSError(f"no video folders with PNG annotations in {annotations}")
    else:
        names = list(dict.fromkeys(str(name).rstrip("/\\") for name in sequences))
        for name in names:
            if not (annotations / name).is_dir():
                raise SSMVOSError(f"no annotations for sequence {name!r}: {annotations / name} not found")
    jobs = [VideoJob(n, annotations / n, results / n, fmt, exclude_void, bound_th) for n in names]
    workers = default_workers(len(jobs)) if workers is None else max(1, int(workers))
    if workers == 1 or len(jobs) == 1:
        scored = [score_video(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=_ignore_interrupts) as pool:
            try:
                scored = list(pool.map(score_video, jobs))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return summarize(scored)


def split_scoring_plan(entries: list) -> tuple[Path, str, list[str]] | None:
    """How to score a split's merged results: (annotations folder, format, videos), or None
    when the split has no per-frame annotations (test-dev, YouTube-VOS valid).

    Format: 'davis2016' when every object index is 255 (DAVIS 2016's binary masks), else
    'davis2017'.
    """
    per_video: dict[str, set[str]] = {}
    frames: dict[str, int] = {}
    for e in entries:  # data.splits.FrameEntry
        per_video.setdefault(e.video_name, set()).add(e.mask_path)
        frames[e.video_name] = max(frames.get(e.video_name, 0), e.frame_index + 1)
    if any(len(masks) < frames[v] for v, masks in per_video.items()):
        return None
    folders = {Path(next(iter(m))).parent.parent for m in per_video.values()}
    if len(folders) != 1:
        return None
    fmt = "davis2016" if {e.object_index for e in entries} == {255} else "davis2017"
    return folders.pop(), fmt, list(per_video)


__all__ = ["split_scoring_plan", "FORMATS", "OBJECT_KEYS", "GLOBAL_KEYS", "read_label_png", "resolve_annotations", "list_videos",
           "VideoJob", "VideoScores", "score_video", "summarize", "default_workers", "score_folder"]

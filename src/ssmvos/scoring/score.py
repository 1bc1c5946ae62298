"""Folders of masks -> J&F figures: the official DAVIS rules, or the generic ones for any dataset.

Layout: ``<annotations>/<video>/<frame>.png`` and ``<results>/<video>/<frame>.png`` with the
same frame names (the folder ``Annotations/480p`` of a DAVIS root is such a folder; a DAVIS
root itself is accepted too). Frames are the annotation PNGs in natural order (2.png before
10.png); only they are read from the results (a result folder may hold more frames, e.g.
every frame of a video annotated every 5th). A result missing for an annotated frame is an error.

``fmt="davis2017"`` and ``"davis2016"``: the official semi-supervised evaluation
(github.com/davisvideochallenge/davis2017-evaluation), whose figures these equal:

* frames: the first and the last are not evaluated (and their result PNGs are not read).
* objects: ``1..N`` with N the largest label of the first annotation frame (void 255 not
  counted); object k of a frame is the pixels equal to k. Labels above N in later
  annotation frames belong to no object (a note says so: ``generic`` scores them).
* results: indexed PNGs (palette or grayscale); object k = pixels equal to k. A result with
  fewer objects is zero-padded (missing objects score as empty masks); a label above N in an
  evaluated frame is an error (the official code stops there too).
* void (255 in a davis2017 annotation): the official semi-supervised evaluation passes no void
  mask to the metrics, and its loader has already turned 255 into background, so void pixels
  count as background (a prediction there is a false positive). That is the default here;
  ``exclude_void=True`` leaves them out of J and F instead (not the official figures).
* ``davis2016``: any nonzero annotation pixel and any nonzero result pixel is object 1.

``fmt="generic"``: the rules of vos-benchmark (:mod:`.generic`), for any dataset: objects are
the ids of the ground truth (gaps allowed; 255 is an id like any other unless
``exclude_void``), counted from the first scored frame where they occur in the ground truth
or the result; ids only a result has are not reported (a note names them). By default the
first and last annotated frames are not scored (``keep_first_last=True`` scores them);
``exclude_given=True`` also leaves out each object's given mask (its first annotated frame).
A video with no scored frame, or no ground-truth object on them, adds no object (a note).

``fmt="auto"``: :func:`detect_format` picks one of the three from the annotations.

Figures: per object mean/recall/decay of its per-frame J and F (:func:`db_statistics`);
per video and global figures are means over objects; ``JF_mean = (J_mean + F_mean) / 2``.

Each video is scored frame by frame (one annotation and one result PNG in memory at a time);
videos run in parallel in a process pool.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..cpus import available_cpus
from ..errors import SSMVOSError
from ..io.labels import VOID_LABEL
from ..numbers import is_number
from .generic import GenericVideo
from .labels import annotation_frames, label_ids, read_label_png, result_png
from .metrics import BOUND_TH, db_statistics, frame_scores

FORMATS = ("davis2017", "davis2016", "generic")
#: ``fmt`` value that lets :func:`detect_format` choose.
AUTO = "auto"
#: Names of the figures of one object, in table order.
OBJECT_KEYS = ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")
#: Names of the global figures (``JF_mean`` first, as DAVIS leaderboards).
GLOBAL_KEYS = ("JF_mean",) + OBJECT_KEYS


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
    keep_first_last: bool = False
    exclude_given: bool = False


@dataclass
class VideoScores:
    """Per-frame J and F of one video's reported objects: ``ids[i]`` has the series ``j[i]``,
    ``f[i]`` (float64, one value per frame it is scored on)."""
    name: str
    frames: list[str]
    ids: list[int]
    j: list[np.ndarray]
    f: list[np.ndarray]
    notes: list[str] = field(default_factory=list)
    #: davis2017: annotation ids of evaluated frames that are not objects of the first frame.
    late_ids: list[int] = field(default_factory=list)


def _annotation(path: Path, fmt: str, exclude_void: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Label map (H, W) and optional void mask of an annotation PNG under format ``fmt``."""
    labels = read_label_png(path)
    if fmt == "davis2016":
        return (labels != 0).astype(np.uint8), None
    if fmt == "generic" and not exclude_void:
        return labels, None  # 255 is an id like any other
    void = labels == VOID_LABEL
    if not void.any():
        return labels, None
    labels = np.where(void, 0, labels)  # the official loader: void -> background
    return labels, (void if exclude_void else None)


def _format_hint(first_ids: list[int]) -> str:
    """What to do when a result has ids the davis2017 rules do not know."""
    if first_ids == [VOID_LABEL]:
        return "binary 0/255 annotations are DAVIS 2016's: use --format davis2016"
    return "--format generic scores every id of the ground truth, late objects included"


def _score_davis_video(job: VideoJob) -> VideoScores:
    """Per-frame J and F of objects 1..N of one video (first and last frames left out)."""
    frames = annotation_frames(job.annotations)
    if len(frames) < 3:
        raise SSMVOSError(f"{job.annotations} has {len(frames)} annotation frame(s); the evaluation "
                          "leaves out the first and last, so it needs at least 3 (--format generic "
                          "--keep-first-last scores shorter videos)")
    if not job.results.is_dir():
        raise SSMVOSError(f"missing results folder for video {job.name}: {job.results}")
    first, _ = _annotation(job.annotations / frames[0], job.fmt, job.exclude_void)
    n_objects = int(first.max()) if first.size else 0
    evaluated = frames[1:-1]
    j = np.zeros((n_objects, len(evaluated)))
    f = np.zeros((n_objects, len(evaluated)))
    late: set[int] = set()
    for t, frame in enumerate(evaluated):
        ann_path = job.annotations / frame
        gt, void = _annotation(ann_path, job.fmt, job.exclude_void)
        pred = result_png(job.results, frame, ann_path, gt.shape)
        if job.fmt == "davis2016":
            pred = (pred != 0).astype(np.uint8)
        else:
            top = int(pred.max()) if pred.size else 0
            if top > n_objects:
                first_ids = label_ids(read_label_png(job.annotations / frames[0]))
                raise SSMVOSError(f"result {job.results / frame} contains object id {top} but video {job.name} has "
                                  f"{n_objects} object(s) in its first annotation frame; {_format_hint(first_ids)}")
            if gt.size and int(gt.max()) > n_objects:
                late.update(k for k in label_ids(gt) if k > n_objects)
        j[:, t], f[:, t] = frame_scores(gt, pred, n_objects, void, job.bound_th)
    notes = []
    if late:
        notes.append(f"video {job.name}: annotation id(s) {', '.join(map(str, sorted(late)))} first occur after "
                     f"its first frame; {job.fmt} leaves them out (--format generic scores them)")
    return VideoScores(job.name, evaluated, list(range(1, n_objects + 1)), list(j), list(f), notes, sorted(late))


def _score_generic_video(job: VideoJob) -> VideoScores:
    """Per-frame J and F of one video's ground-truth objects under the generic rules."""
    frames = annotation_frames(job.annotations)
    scored = frames if job.keep_first_last else frames[1:-1]
    if not scored:
        return VideoScores(job.name, [], [], [], [], [
            f"video {job.name}: {len(frames)} annotated frame(s), none scored once the first and last are "
            "left out; it adds no object (--keep-first-last scores them)"])
    if not job.results.is_dir():
        raise SSMVOSError(f"missing results folder for video {job.name}: {job.results}")
    video = GenericVideo(job.exclude_given, job.bound_th)
    if job.exclude_given and not job.keep_first_last:
        video.mark_given(_annotation(job.annotations / frames[0], job.fmt, job.exclude_void)[0])
    for frame in scored:
        ann_path = job.annotations / frame
        gt, void = _annotation(ann_path, job.fmt, job.exclude_void)
        video.add_frame(gt, result_png(job.results, frame, ann_path, gt.shape), void)
    series = video.series()
    notes = []
    if not series and not video.unscored_ids():
        notes.append(f"video {job.name}: no ground-truth object in its {len(scored)} scored frame(s); "
                     "it adds no object")
    if video.result_only_ids():
        notes.append(f"video {job.name}: result id(s) {', '.join(map(str, video.result_only_ids()))} occur in no "
                     "scored ground truth: not reported, and their pixels are background for every object")
    if video.unscored_ids():
        notes.append(f"video {job.name}: object(s) {', '.join(map(str, video.unscored_ids()))} occur only on "
                     "their given frame: nothing left to score")
    ids = list(series)
    return VideoScores(job.name, scored, ids, [series[k][0] for k in ids], [series[k][1] for k in ids], notes)


def score_video(job: VideoJob) -> VideoScores:
    """Per-frame J and F of every reported object of one video, under ``job.fmt``'s rules."""
    if job.fmt == "generic":
        return _score_generic_video(job)
    return _score_davis_video(job)


def _frame_gap(frames: list[str]) -> tuple[str, str] | None:
    """Two consecutive annotation frames whose numeric names are not consecutive numbers, if any."""
    stems = [name[:-len(".png")] for name in frames]
    if not all(is_number(s) for s in stems):
        return None
    for a, b in zip(stems, stems[1:]):
        if int(b) != int(a) + 1:
            return a, b
    return None


def detect_format(annotations: Path, names: list[str]) -> tuple[str, str]:
    """The format that fits the annotations of videos ``names``, and why (one phrase).

    Reads at most the first and the last annotation PNG of each video:
    * ``generic`` when annotations are sparse (numeric frame names with gaps, as YouTube-VOS's
      every 5th frame), when a first frame's ids have gaps (1, 3), or when a last frame has
      an id its first frame lacks (a late object);
    * else ``davis2016`` when every first frame holds only 0 and 255 (binary masks);
    * else ``davis2017``. (Late objects that vanish before the last frame are found while
      scoring: :func:`score_folder` then scores generically, with a note.)
    """
    frames = {name: annotation_frames(annotations / name) for name in names}
    for name, listed in frames.items():
        gap = _frame_gap(listed)
        if gap:
            return "generic", f"sparse annotations: video {name} has frame {gap[0]} then {gap[1]}"
    binary = True
    for name, listed in frames.items():
        if not listed:
            continue
        first = set(label_ids(read_label_png(annotations / name / listed[0])))
        objects = first - {VOID_LABEL}
        binary = binary and not objects
        if objects and objects != set(range(1, max(objects) + 1)):
            return "generic", f"ids with gaps: {annotations / name / listed[0]} has ids {sorted(objects)}"
        late = set(label_ids(read_label_png(annotations / name / listed[-1]))) - first - {VOID_LABEL}
        if late:
            return "generic", (f"late objects: {annotations / name / listed[-1]} has id(s) {sorted(late)} "
                               f"that {listed[0]} lacks")
    if binary:
        return "davis2016", "every first annotation holds only 0 and 255"
    return "davis2017", "indexed annotations with objects 1..N in every first frame"


def _object_figures(j: np.ndarray, f: np.ndarray) -> dict[str, float]:
    jm, jr, jd = db_statistics(j)
    fm, fr, fd = db_statistics(f)
    return {"J_mean": jm, "J_recall": jr, "J_decay": jd, "F_mean": fm, "F_recall": fr, "F_decay": fd}


def _means(objects: list[dict[str, float]]) -> dict[str, float]:
    """Means over objects of their figures, with ``JF_mean`` first."""
    out = {key: float(np.mean([o[key] for o in objects])) for key in OBJECT_KEYS}
    return {"JF_mean": (out["J_mean"] + out["F_mean"]) / 2, **out}


def summarize(videos: Iterable[VideoScores]) -> dict:
    """Figures from per-frame scores: global means over objects, ``per_object`` (keys
    ``<video>_<id>``), ``per_video`` (means over each video's objects) and ``notes``."""
    per_object: dict[str, dict[str, float]] = {}
    per_video: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    for video in videos:
        objects = [_object_figures(j, f) for j, f in zip(video.j, video.f)]
        per_object.update((f"{video.name}_{k}", o) for k, o in zip(video.ids, objects))
        if objects:
            per_video[video.name] = _means(objects)
        notes += video.notes
    if not per_object:
        raise SSMVOSError("no objects to score: " + (notes[0] if notes else "every first annotation frame is empty"))
    return {**_means(list(per_object.values())), "per_object": per_object, "per_video": per_video, "notes": notes}


def ignore_interrupts() -> None:
    """Pool workers leave Ctrl-C to the main process, which stops the pool (no worker tracebacks)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers(n_videos: int) -> int:
    """min(CPUs available to this process, number of videos), at least 1."""
    return max(1, min(available_cpus(), n_videos))


def _run(jobs: list[VideoJob], workers: int) -> list[VideoScores]:
    if workers == 1 or len(jobs) == 1:
        return [score_video(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=ignore_interrupts) as pool:
        try:
            return list(pool.map(score_video, jobs))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def score_folder(annotations_dir: str | os.PathLike, results_dir: str | os.PathLike, fmt: str = "davis2017",
                 sequences: Iterable[str] | None = None, workers: int | None = None,
                 exclude_void: bool = False, bound_th: float = BOUND_TH,
                 keep_first_last: bool = False, exclude_given: bool = False) -> dict:
    """J&F of the result PNGs in ``results_dir`` against the annotations in ``annotations_dir``.

    ``fmt``: 'davis2017', 'davis2016', 'generic' or 'auto' (see the module docstring).
    Returns ``{"JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay",
    "per_object": {"<video>_<id>": {"J_mean", ..., "F_decay"}}, "per_video": {"<video>":
    {"JF_mean", ...}}, "format": the format used, "notes": [one-line notes]}`` with values
    in [0, 1] (decays may be negative). ``sequences``: restrict to these videos (default:
    every video folder of the annotations). ``workers``: processes (default min(CPUs,
    videos); 1 = in this process). ``keep_first_last``, ``exclude_given``: generic rules only
    (with 'auto' they choose 'generic'). Raises SSMVOSError naming the file for any bad input.
    """
    if fmt not in FORMATS + (AUTO,):
        raise SSMVOSError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS + (AUTO,))})")
    generic_only = [flag for flag, on in (("--keep-first-last", keep_first_last),
                                          ("--exclude-given", exclude_given)) if on]
    if generic_only and fmt not in ("generic", AUTO):
        raise SSMVOSError(f"{' and '.join(generic_only)} apply to --format generic only, not {fmt}")
    annotations = resolve_annotations(annotations_dir)
    results = Path(results_dir)
    if not results.is_dir():
        raise SSMVOSError(f"results folder not found: {results}")
    notes: list[str] = []
    if sequences is None:
        names = list_videos(annotations)
        if not names:
            raise SSMVOSError(f"no video folders with PNG annotations in {annotations}")
        empty = sorted(d.name for d in annotations.iterdir() if d.is_dir() and d.name not in names)
        if empty:
            notes.append(f"{len(empty)} folder(s) of {annotations} hold no PNG and are not scored: "
                         f"{', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}")
    else:
        names = list(dict.fromkeys(str(name).rstrip("/\\") for name in sequences))
        for name in names:
            if not (annotations / name).is_dir():
                raise SSMVOSError(f"no annotations for sequence {name!r}: {annotations / name} not found")
    chosen = fmt
    if fmt == AUTO:
        if generic_only:
            chosen, why = "generic", f"{' and '.join(generic_only)} given"
        else:
            chosen, why = detect_format(annotations, names)
        notes.append(f"format {chosen} ({why}); --format chooses another")
    workers = default_workers(len(names)) if workers is None else max(1, int(workers))

    def jobs(format_: str) -> list[VideoJob]:
        return [VideoJob(n, annotations / n, results / n, format_, exclude_void, bound_th,
                         keep_first_last, exclude_given) for n in names]

    scored = _run(jobs(chosen), workers)
    late = [v for v in scored if v.late_ids]
    if fmt == AUTO and late:
        notes[-1] = (f"format generic (late objects: video {late[0].name} has annotation id(s) "
                     f"{', '.join(map(str, late[0].late_ids))} after its first frame); --format chooses another")
        chosen = "generic"
        scored = _run(jobs(chosen), workers)
    out = summarize(scored)
    out["format"] = chosen
    out["notes"] = notes + out["notes"]
    return out


def split_annotations(entries: list) -> tuple[Path, list[str]] | None:
    """The annotation folder and videos of a split's ground truth (``data.splits.FrameEntry``
    list), or None when the split has no per-frame annotations (test-dev, YouTube-VOS or
    MOSE valid). Which rules score them is the dataset registry's
    (``ssmvos.data.datasets.split_score_format``)."""
    per_video: dict[str, set[str]] = {}
    frames: dict[str, int] = {}
    for e in entries:
        per_video.setdefault(e.video_name, set()).add(e.mask_path)
        frames[e.video_name] = max(frames.get(e.video_name, 0), e.frame_index + 1)
    if any(len(masks) < frames[v] for v, masks in per_video.items()):
        return None
    folders = {Path(next(iter(m))).parent.parent for m in per_video.values()}
    if len(folders) != 1:
        return None
    return folders.pop(), list(per_video)


__all__ = ["split_annotations", "FORMATS", "AUTO", "OBJECT_KEYS", "GLOBAL_KEYS", "read_label_png",
           "resolve_annotations", "list_videos", "detect_format", "VideoJob", "VideoScores", "score_video",
           "summarize", "default_workers", "score_folder"]

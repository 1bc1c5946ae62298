"""Segmenting many videos from a manifest: resumable, across processes (torchrun) and machines (Ray).

The manifest is a CSV file with the header ``name,video,masks``: ``video`` a video file or a
folder of frames, ``masks`` one or more ``FRAME:PATH`` items joined by ``;`` (a plain
``PATH`` is frame 0); relative paths are relative to the manifest. Or a folder laid out as
DAVIS is: ``<name>/`` frames (or a ``<name>.mp4``...) with ``<name>.png``, the frame-0 mask.

Each video is one task, :func:`run_video`: :func:`~ssmvos.inference.segment.segment_video`
(what ``ssmvos segment`` runs, so ``<out>/<name>/<frame>.png`` are byte for byte its files)
into a temporary folder ``<out>/.<name>.XXXXXXXX.tmp`` that is renamed to ``<out>/<name>``
once complete: a video's folder is there complete or not at all, and a rerun skips the
folders that are there. A bad row (missing file, bad mask, duplicate or unsafe name) fails
that video only. ``<out>/summary.json`` (written atomically) lists every video:
``{"videos": [{"name", "status": "done"|"failed"|"skipped", "frames", "seconds", "error"}]}``.

Engines: ``local`` runs the tasks in this process, or, under torchrun, this rank's share
(longest videos first, each to the least loaded rank; rank 0 gathers the summary);
``ray`` runs them on Ray actors (one per GPU, or ``workers`` CPU actors), each building the
predictor once; a video whose worker died is given to a new worker (up to ``retries``
times). Ray's workers write into ``out`` themselves: on several machines it must be a
folder they all see (a shared file system).

``videos_at_once`` K > 1: each process (or Ray worker) segments K videos at once, one thread
each, their objects sharing the network's calls (:class:`Together`): bigger batches for a
GPU. Each video's files are then those ``ssmvos segment`` writes up to float rounding (the
batches differ), not byte for byte.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import (
    check_not_input,
    check_output_folder,
    default_dir_mode,
    make_dirs,
    unsafe_folder_name,
    write_json_atomic,
    writing,
)
from ..errors import SSMVOSError
from ..numbers import is_number

#: The manifest's columns, in this order.
COLUMNS = ("name", "video", "masks")
SUMMARY = "summary.json"
#: The COCO RLE file written next to a video's PNGs with ``format="coco"``.
COCO_FILE = "coco.json"
FORMATS = ("png", "coco")
ENGINES = ("local", "ray")
#: the most videos one process (or Ray worker) segments at once
MAX_VIDEOS_AT_ONCE = 64


@dataclass(frozen=True)
class VideoJob:
    """One manifest row: the video, its masks as (frame, path) pairs, and its length in
    frames (0 when it could not be read: the task reports why). ``error``: what is wrong
    with the row itself (the video then fails without being opened)."""

    name: str
    video: str
    masks: tuple[tuple[int, str], ...] = ()
    frames: int = 0
    error: str | None = None
    row: int = 0  # its place in the manifest (summary.json keeps that order)


@dataclass
class VideoOutcome:
    """One line of summary.json."""

    name: str
    status: str  # done | failed | skipped
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class SegmentOptions:
    """The per-video flags shared with ``ssmvos segment`` (and the output format)."""

    direction: str | None = None
    reference: str = "first"
    overlay_dir: str | None = None
    format: str = "png"


@dataclass(frozen=True)
class PredictorConfig:
    """What each process builds its one predictor from (:func:`ssmvos.build.build_predictor`)."""

    weights: str = "davis17"
    input_size: tuple[int, int] | None = None
    backend: str = "torch"
    device: Any = "auto"
    precision: str = "fp32"
    cuda_graphs: bool = False
    onnx: str | None = None
    margin: float = 0.5
    max_batch: int = 16
    size_source: str = "input_size"

    def build(self, device: Any = None):
        """The predictor, on ``device`` (default: this config's)."""
        from ..build import build_predictor
        from ..runtime import RuntimeSpec

        spec = RuntimeSpec(self.backend, device=self.device if device is None else device, precision=self.precision,
                           cuda_graphs=self.cuda_graphs, onnx=self.onnx)
        return build_predictor(self.weights, self.input_size, spec, size_source=self.size_source,
                               margin=self.margin, max_batch=self.max_batch)


# ---------------------------------------------------------------------------------- manifest
def _unsafe_name(name: str) -> str | None:
    """Why ``name`` cannot be an output folder name (None when it can)."""
    if name == SUMMARY:
        return f"the name {name!r} is the summary file's"
    return unsafe_folder_name(name)


def parse_masks(text: str, base: Path) -> list[tuple[int, str]]:
    """``FRAME:PATH;PATH;...`` -> (frame, path) pairs, paths relative to ``base``; raises
    SSMVOSError for an item that is neither."""
    items = [t.strip() for t in text.split(";") if t.strip()]
    if not items:
        raise SSMVOSError("no mask given (the masks column is empty)")
    out = []
    for item in items:
        frame, sep, path = item.partition(":")
        if sep and is_number(frame.strip()) and not (base / item).exists():
            if not path.strip():
                raise SSMVOSError(f"the mask item {item!r} has no path after the frame number")
            out.append((int(frame), str(base / path.strip())))
        else:
            out.append((0, str(base / item)))
    return out


def read_manifest(path: str | os.PathLike, out: str | os.PathLike | None = None) -> list[VideoJob]:
    """The videos of a CSV manifest or a DAVIS-layout folder, in their order. Problems of
    one row become that job's ``error``; a manifest that cannot be read at all (missing, no
    header, other columns) raises SSMVOSError. ``out``: the output folder, never a video
    of a manifest folder it is in. The jobs' paths are absolute (Ray's workers have their own
    working folders)."""
    path = Path(path)
    if path.is_dir():
        return _folder_manifest(path.absolute(), None if out is None else Path(out))
    if not path.is_file():
        raise SSMVOSError(f"manifest {path}: no such file or folder")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SSMVOSError(f"manifest {path}: cannot be read as CSV ({exc})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SSMVOSError(f"manifest {path} is empty: it needs the header {','.join(COLUMNS)} and a row per video")
    header = tuple(c.strip().lower() for c in rows[0])
    if header != COLUMNS:
        raise SSMVOSError(f"manifest {path}: the first line must be the header {','.join(COLUMNS)}, "
                          f"not {','.join(rows[0])}")
    base, jobs, seen = path.absolute().parent, [], {}
    for line, row in enumerate(rows[1:], start=2):
        name = row[0].strip() if row else ""
        where = f"manifest line {line}"
        if len(row) != len(COLUMNS):
            jobs.append(VideoJob(name or f"line{line}", "", error=f"{where}: {len(row)} fields, not 3 "
                                 f"({','.join(COLUMNS)}; quote a field holding a comma)"))
            continue
        jobs.append(_job(name, base / row[1].strip() if row[1].strip() else None, row[2], base, where, seen))
    return [replace(j, row=k) for k, j in enumerate(jobs)]


def _job(name: str, video: Path | None, masks: str, base: Path, where: str, seen: dict[str, str]) -> VideoJob:
    error = _unsafe_name(name)
    if error is None and name in seen:
        error = f"the name {name!r} is used by {seen[name]} already"
    if error is None and video is None:
        error = "no video given"
    if error is not None:
        return VideoJob(name, str(video or ""), error=f"{where}: {error}")
    seen[name] = where
    try:
        pairs = tuple(parse_masks(masks, base))
    except SSMVOSError as exc:
        return VideoJob(name, str(video), error=f"{where}: {exc}")
    return VideoJob(name, str(video), pairs)


def _folder_manifest(root: Path, out: Path | None = None) -> list[VideoJob]:
    """``<name>/`` frames or ``<name>.<video suffix>`` with ``<name>.png`` (frame 0's mask);
    ``out`` (the output folder) is left out."""
    from ..io.frames.video import VIDEO_SUFFIXES

    videos: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or (out is not None and out.exists() and entry.resolve() == out.resolve()):
            continue
        if entry.is_dir():
            videos[entry.name] = entry
        elif entry.suffix.lower() == ".png":
            masks[entry.stem] = entry
        elif entry.suffix.lower() in VIDEO_SUFFIXES:
            videos[entry.stem] = entry
    if not videos:
        raise SSMVOSError(f"manifest folder {root} holds no video (<name>/ frame folders or video files with "
                          "<name>.png masks)")
    jobs, seen = [], {}
    for name in sorted(set(videos) | set(masks)):
        where = f"manifest folder {root}"
        if name not in videos:
            jobs.append(VideoJob(name, "", error=f"{where}: the mask {masks[name]} has no video {name}/"))
        elif name not in masks:
            jobs.append(VideoJob(name, str(videos[name]), error=f"{where}: the video {videos[name]} has no mask "
                                 f"{root / (name + '.png')}"))
        else:
            jobs.append(_job(name, videos[name], str(masks[name]), root, where, seen))
    return [replace(j, row=k) for k, j in enumerate(jobs)]


def count_frames(jobs: list[VideoJob]) -> list[VideoJob]:
    """The jobs with their lengths in frames (0 where the video cannot be opened)."""
    from ..io.frames.open import open_frames

    out = []
    for job in jobs:
        frames = 0
        if job.error is None:
            try:
                source = open_frames(job.video)
                try:
                    frames = len(source)
                finally:
                    source.close()
            except Exception:  # the task reports it
                frames = 0
        out.append(replace(job, frames=frames))
    return out


def plan(jobs: list[VideoJob], workers: int) -> list[list[VideoJob]]:
    """Share the jobs out over ``workers`` (torchrun ranks): longest first, each to the one
    with the fewest frames so far (ties: the lowest rank), so that they finish together.
    The same on every rank (the jobs' order breaks ties)."""
    shares: list[list[VideoJob]] = [[] for _ in range(max(1, workers))]
    load = [0] * len(shares)
    order = sorted(range(len(jobs)), key=lambda i: (-jobs[i].frames, i))
    for i in order:
        k = min(range(len(shares)), key=lambda r: (load[r], r))
        shares[k].append(jobs[i])
        load[k] += max(jobs[i].frames, 1)
    return shares


# ---------------------------------------------------------------------------------- one video
def _temporary_name(name: str) -> re.Pattern:
    return re.compile(r"\." + re.escape(name) + r"\.[a-z0-9_]{8}\.(tmp|old)")


def remove_leftovers(out: Path, name: str) -> None:
    """Remove the temporary folders a killed run left for video ``name``."""
    pattern = _temporary_name(name)
    try:
        entries = list(os.scandir(out))
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry.name):
            shutil.rmtree(entry.path, ignore_errors=True)


def _png_count(folder: Path) -> int:
    return sum(1 for p in folder.glob("*.png") if not p.name.startswith("."))


def run_video(predictor, job: VideoJob, out: str | os.PathLike, options: SegmentOptions = SegmentOptions(),
              overwrite: bool = False, on_frame: Callable[[], None] | None = None) -> VideoOutcome:
    """One video: skipped if ``<out>/<name>`` is there (unless ``overwrite``; with the coco
    format, its ``coco.json`` is made from the PNGs if a PNG-only run left none), else segmented
    into a temporary folder renamed into place when complete. Errors of this video (its
    files, its masks, a failed write) become a failed outcome with a one-line error; an
    interrupt (Ctrl-C) removes the temporary folder and propagates."""
    from .segment import segment_video

    out = Path(out)
    final = out / job.name
    if job.error is not None:
        return VideoOutcome(job.name, "failed", error=job.error)
    if final.is_dir() and not overwrite:
        if options.format == "coco" and not (final / COCO_FILE).is_file():  # done before as PNGs only
            try:
                _write_coco(job, final)
            except SSMVOSError as exc:
                return VideoOutcome(job.name, "failed", error=str(exc))
        return VideoOutcome(job.name, "skipped", frames=_png_count(final))
    start = time.perf_counter()
    remove_leftovers(out, job.name)
    tmp: Path | None = None
    try:
        make_dirs(out)
        with writing(out / job.name):
            tmp = Path(tempfile.mkdtemp(prefix=f".{job.name}.", suffix=".tmp", dir=out))
            os.chmod(tmp, default_dir_mode())  # mkdtemp's is 0700; a folder mkdir would make
        overlay = tmp / f"{job.name}.mp4" if options.overlay_dir else None
        stats = segment_video(predictor, job.video, list(job.masks), tmp, overlay, progress=False,
                              direction=options.direction, reference=options.reference, on_frame=on_frame)
        if stats.interrupted:
            raise KeyboardInterrupt
        if options.format == "coco":
            _write_coco(job, tmp)
        if overlay is not None:
            target = make_dirs(options.overlay_dir) / overlay.name
            with writing(target):
                shutil.move(overlay, target)
        _move_into_place(tmp, final)
        tmp = None
        return VideoOutcome(job.name, "done", frames=stats.frames, seconds=round(time.perf_counter() - start, 3))
    except SSMVOSError as exc:
        return VideoOutcome(job.name, "failed", seconds=round(time.perf_counter() - start, 3), error=str(exc))
    except Exception as exc:  # anything else this video met (a decoder, the network): the others go on
        detail = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {detail[0]}" if detail else type(exc).__name__
        return VideoOutcome(job.name, "failed", seconds=round(time.perf_counter() - start, 3), error=error)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, final: Path) -> None:
    """Rename the complete ``tmp`` onto ``final``; an old ``final`` (overwrite) is renamed
    aside first and removed after."""
    old = None
    with writing(final):
        if os.path.lexists(final):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / "previous")
        os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_coco(job: VideoJob, folder: Path) -> None:
    """``folder/coco.json``: the video's PNGs (read back) as COCO RLE (:mod:`ssmvos.io.coco`)."""
    from ..io.coco import video_entry, write_coco_json
    from ..io.frames.open import open_frames
    from ..io.labels import read_label_map

    source = open_frames(job.video)
    try:
        names = [source.name(i) for i in range(len(source))]
        height, width = source.frame_size()
    finally:
        source.close()
    frames = ((i, read_label_map(folder / f"{n}.png")) for i, n in enumerate(names) if (folder / f"{n}.png").is_file())
    write_coco_json(folder / COCO_FILE, [video_entry(job.name, height, width, frames)])


# ---------------------------------------------------------------------------------- summary
def write_summary(out: str | os.PathLike, outcomes: list[VideoOutcome]) -> Path:
    """``<out>/summary.json`` (atomically): every video in the manifest's order."""
    return write_json_atomic(Path(out) / SUMMARY, {"videos": [asdict(o) for o in outcomes]})


@dataclass
class BatchResult:
    """What a batch did: one outcome per video (manifest order), the processes or workers
    that ran them, the wall time of the videos (from every worker ready to the last video
    done) and of the start-up before it (reading the videos' lengths, building the
    predictors, starting Ray)."""

    outcomes: list[VideoOutcome]
    workers: int = 1
    seconds: float = 0.0
    setup_seconds: float = 0.0
    retried: int = 0
    summary: Path | None = None

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[VideoOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


@dataclass
class BatchConfig:
    """A whole ``ssmvos batch`` run."""

    manifest: str
    out: str
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    options: SegmentOptions = field(default_factory=SegmentOptions)
    overwrite: bool = False
    engine: str = "local"
    ray_address: str | None = None
    ray_workers: int | None = None
    retries: int = 2
    progress: bool = True
    videos_at_once: int = 1


def _check(config: BatchConfig) -> list[VideoJob]:
    if not 1 <= config.videos_at_once <= MAX_VIDEOS_AT_ONCE:
        raise SSMVOSError(f"videos at once must be 1 to {MAX_VIDEOS_AT_ONCE}, not {config.videos_at_once}")
    if config.engine not in ENGINES:
        raise SSMVOSError(f"engine must be one of {', '.join(ENGINES)}, not {config.engine!r}")
    if config.options.format not in FORMATS:
        raise SSMVOSError(f"format must be one of {', '.join(FORMATS)}, not {config.options.format!r}")
    jobs = read_manifest(config.manifest, config.out)
    check_output_folder(config.out, "--out")
    if config.options.overlay_dir:
        check_output_folder(config.options.overlay_dir, "--overlay-dir")
    for job in jobs:  # --out the manifest's own folder: each frame folder would pass for its finished output
        check_not_input(Path(config.out) / job.name, f"the output folder of video {job.name!r}",
                        {"its frame folder": job.video})
    return jobs


def batch(config: BatchConfig, on_dispatch: Callable[[str, int], None] | None = None) -> BatchResult | None:
    """Run a batch (``engine`` local: this process or this torchrun rank; ray: Ray actors).
    Returns the result (None on torchrun ranks other than 0). A manifest that cannot be read
    or an output folder that cannot be written raises SSMVOSError before any work.
    ``on_dispatch(name, worker_pid)``: called (Ray) as each video is handed to a worker."""
    jobs = _check(config)
    if config.engine == "ray":
        return run_ray(config, jobs, on_dispatch)
    return run_local(config, jobs)


def progress_bar(jobs: list[VideoJob], enabled: bool):
    from tqdm import tqdm

    return tqdm(total=len(jobs), unit="video", desc="batch", disable=not enabled)


def run_share(predictor, share: list[VideoJob], config: BatchConfig, bar,
              together: "Together | None" = None) -> list[tuple[int, VideoOutcome]]:
    """``share``'s videos, in its order, on ``predictor`` (already built), one at a time or
    ``config.videos_at_once`` at once (through ``together``, default a new :class:`Together`
    with a seat per thread); (manifest row, outcome) pairs. ``bar``: a tqdm bar (one step per
    video)."""
    if config.videos_at_once > 1 and share:
        seats = min(config.videos_at_once, len(share))
        together = together or Together(predictor, config.predictor.max_batch, seats)
        if together.shared.seats != seats:
            raise ValueError(f"{seats} videos at once need a Together with {seats} seats")
        return _run_together(together, share, config, bar)
    outcomes = []
    for job in share:
        done = [0]

        def frame(job: VideoJob = job, done: list[int] = done) -> None:
            done[0] += 1
            bar.set_postfix_str(f"{job.name} {done[0]}/{job.frames or '?'} frames", refresh=False)
            bar.refresh()

        outcomes.append((job.row, run_video(predictor, job, config.out, config.options, config.overwrite, frame)))
        bar.update(1)
    return outcomes


class Together:
    """Several videos at once on one predictor, each in its own thread, their objects sharing
    the network's calls (:class:`~ssmvos.runtime.shared.SharedRunner`: the threads take
    turns, so only the batches change; results equal one video at a time up to float
    rounding). ``seats``: the number of threads, each holding a seat for its whole life (the
    calls then repeat exactly from run to run); None: threads come and go, one video each
    (:meth:`run`, what a Ray actor's concurrent calls do)."""

    def __init__(self, predictor, max_batch: int, seats: int | None = None):
        from ..runtime import SharedRunner

        self.engine = predictor.engine
        self.shared = SharedRunner(self.engine.runner, max_batch, seats)

    @contextlib.contextmanager
    def predictor(self, seat: int | None = None) -> Iterator:
        """A predictor for this thread, on a member of the shared runner, for the block (the
        thread's turns: see :class:`~ssmvos.runtime.shared.SharedRunner`)."""
        from .predictor import VideoPredictor

        with self.shared.turn(seat) as runner:
            yield VideoPredictor(engine=self.engine.on_runner(runner))

    def run(self, job: VideoJob, out: str | os.PathLike, options: SegmentOptions, overwrite: bool,
            on_frame: Callable[[], None] | None = None) -> VideoOutcome:
        """One video, joining the group for it."""
        with self.predictor() as predictor:
            return run_video(predictor, job, out, options, overwrite, on_frame)


def _run_together(together: Together, share: list[VideoJob], config: BatchConfig,
                  bar) -> list[tuple[int, VideoOutcome]]:
    """The share, one thread per seat of ``together``, each taking the next video (in the
    share's order: longest first, as planned) during its turn. On Ctrl-C every thread stops
    after its current frame, its video's temporary folder removed, and the interrupt
    propagates once all have stopped."""
    queue = list(reversed(share))
    outcomes: list[tuple[int, VideoOutcome]] = []
    lock, stop = threading.Lock(), threading.Event()
    under_way: dict[str, int] = {}  # video -> frames done

    def frame_done(name: str) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        with lock:
            under_way[name] = under_way.get(name, 0) + 1
            bar.set_postfix_str(", ".join(f"{job} {n}" for job, n in sorted(under_way.items())), refresh=False)
            bar.refresh()

    def work(seat: int) -> None:
        with together.predictor(seat) as predictor:
            while not stop.is_set():
                with lock:
                    if not queue:
                        return
                    job = queue.pop()
                try:
                    outcome = run_video(predictor, job, config.out, config.options, config.overwrite,
                                        functools.partial(frame_done, job.name))
                except KeyboardInterrupt:
                    return
                with lock:
                    under_way.pop(job.name, None)
                    outcomes.append((job.row, outcome))
                    bar.update(1)

    threads = [threading.Thread(target=work, args=(seat,), daemon=True) for seat in range(together.shared.seats)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
        raise
    return outcomes


def run_local(config: BatchConfig, jobs: list[VideoJob]) -> BatchResult | None:
    """This process's videos (all, or this torchrun rank's share) with one predictor; under
    torchrun every rank's outcomes are gathered to rank 0, which writes the summary."""
    from ..distributed import (
        all_gather_objects,
        init_process_group,
        planned_context,
        raise_if_any_failed,
        shutdown,
    )

    start = time.perf_counter()
    ctx = planned_context(config.predictor.device)
    jobs = count_frames(jobs)
    share = plan(jobs, ctx.world_size)[ctx.rank]
    error, predictor = None, None
    try:
        predictor = config.predictor.build(ctx.device)
    except SSMVOSError as exc:
        if ctx.world_size == 1:
            raise
        error = f"rank {ctx.rank}: {exc}"
    init_process_group(ctx)
    try:
        raise_if_any_failed(ctx, error)  # every rank is ready here
        started_videos = time.perf_counter()
        bar = progress_bar(share, config.progress and ctx.is_main)
        try:
            outcomes = run_share(predictor, share, config, bar)
        except KeyboardInterrupt:
            bar.close()
            if ctx.world_size == 1:  # what was finished is recorded
                _record(config, jobs)
            raise
        bar.close()
        parts = all_gather_objects(ctx, outcomes)
        if not ctx.is_main:
            return None
        result = BatchResult(_in_manifest_order([o for p in parts for o in p]), ctx.world_size)
        result.seconds, result.setup_seconds = time.perf_counter() - started_videos, started_videos - start
        result.summary = write_summary(config.out, result.outcomes)
        return result
    finally:
        shutdown()


def _record(config: BatchConfig, jobs: list[VideoJob]) -> None:
    """After an interrupt: the summary of the videos whose folders are complete (as skipped:
    what a rerun does with them)."""
    done = [VideoOutcome(j.name, "skipped", _png_count(Path(config.out) / j.name)) for j in jobs
            if j.error is None and (Path(config.out) / j.name).is_dir()]
    try:
        write_summary(config.out, done)
    except SSMVOSError:
        pass


def _in_manifest_order(outcomes: list[tuple[int, VideoOutcome]]) -> list[VideoOutcome]:
    return [o for _, o in sorted(outcomes, key=lambda x: x[0])]


# ---------------------------------------------------------------------------------- Ray
class BatchWorker:
    """A Ray actor's state: one predictor, built when the actor starts, reused for every video.
    ``threads``: torch's CPU threads (a CPU actor: the CPUs Ray gave it). ``videos_at_once``
    > 1: the actor is threaded (Ray's ``max_concurrency``) and its videos share the network's
    calls (:class:`Together`)."""

    def __init__(self, predictor: PredictorConfig, device: str, threads: int | None = None, videos_at_once: int = 1):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.predictor = predictor.build(device)
        self.together = Together(self.predictor, predictor.max_batch) if videos_at_once > 1 else None

    def pid(self) -> int:
        return os.getpid()

    def run(self, job: VideoJob, out: str, options: SegmentOptions, overwrite: bool) -> VideoOutcome:
        if self.together is not None:
            return self.together.run(job, out, options, overwrite)
        return run_video(self.predictor, job, out, options, overwrite)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SSMVOSError("--engine ray needs Ray: pip install 'ssmvos[ray]'") from None
    return ray


def run_ray(config: BatchConfig, jobs: list[VideoJob],
            on_dispatch: Callable[[str, int], None] | None = None) -> BatchResult:
    """The videos on Ray actors: one per GPU of the cluster when the device allows CUDA,
    else ``ray_workers`` CPU actors (default 1). Connects to ``ray_address`` (or a Ray
    already started in this process), else starts a local Ray. A video whose worker died is
    given to a new worker, up to ``retries`` times."""
    import logging

    from ..weights import resolve_weights

    ray = _import_ray()
    start = time.perf_counter()
    started = False
    if not config.ray_address:  # a bad --weights is said before Ray starts; a published model is fetched once
        config = replace(config, predictor=replace(config.predictor,
                                                   weights=str(resolve_weights(config.predictor.weights).resolve())))
    if not ray.is_initialized():
        try:
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if config.ray_address:
                ray.init(address=config.ray_address, **quiet)
            else:
                ray.init(include_dashboard=False, **quiet)
        except Exception as exc:
            raise SSMVOSError(f"--ray-address {config.ray_address or '(local)'}: cannot start or join Ray "
                              f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
        started = True
    try:
        return _run_on_ray(ray, config, count_frames(jobs), on_dispatch, start)
    finally:
        if started:
            ray.shutdown()


def _actor_options(ray, config: BatchConfig) -> tuple[int, dict, str]:
    """(workers, Ray resources of each, device)."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and str(config.predictor.device) in ("auto", "cuda"):
        return config.ray_workers or gpus, {"num_gpus": 1, "num_cpus": 1}, "cuda"
    if str(config.predictor.device) == "cuda":
        raise SSMVOSError("--device cuda: the Ray cluster has no GPU")
    workers = config.ray_workers or 1
    cpus = max(1, int(resources.get("CPU", 1)) // workers)
    return workers, {"num_cpus": cpus}, "cpu"


def _run_on_ray(ray, config: BatchConfig, jobs: list[VideoJob], on_dispatch, start: float) -> BatchResult:
    from ray.exceptions import RayActorError, RayTaskError

    count, options, device = _actor_options(ray, config)
    threads = options["num_cpus"] if device == "cpu" else None
    slots = config.videos_at_once  # videos in flight per actor
    remote = ray.remote(**options, max_concurrency=slots)(BatchWorker)
    out = str(Path(config.out).resolve())
    overlay = config.options.overlay_dir
    seg = replace(config.options, overlay_dir=str(Path(overlay).resolve()) if overlay else None)
    outcomes: list[tuple[int, VideoOutcome]] = []
    queue = []  # longest first; bad rows and folders already complete need no worker
    for job in sorted(jobs, key=lambda j: -j.frames):
        if job.error is not None or (Path(out, job.name).is_dir() and not config.overwrite):
            outcomes.append((job.row, run_video(None, job, out, seg, config.overwrite)))
        else:
            queue.append((job, 0))
    retried = 0
    bar = progress_bar(jobs, config.progress)
    bar.update(len(outcomes))
    actors = [remote.remote(config.predictor, device, threads, slots)
              for _ in range(min(count, -(-len(queue) // slots)))]
    idle = [a for _ in range(slots) for a in actors]  # one entry per free slot
    running: dict[Any, tuple[Any, VideoJob, int]] = {}
    pids: dict[Any, int] = {}
    dead: set = set()
    try:
        try:  # every worker has built its predictor (a bad --weights is one error, not one per video)
            pids.update(zip(actors, ray.get([a.pid.remote() for a in actors])))
        except RayActorError as exc:
            raise SSMVOSError(f"a Ray worker could not start: {_creation_error(exc)}") from None
        started_videos = time.perf_counter()
        while queue or running:
            while queue and idle:
                actor = idle.pop()
                job, attempt = queue.pop(0)
                running[actor.run.remote(job, out, seg, config.overwrite)] = (actor, job, attempt)
                if on_dispatch is not None:
                    if actor not in pids:
                        pids[actor] = _actor_pid(ray, actor)
                    if pids[actor] is not None:
                        on_dispatch(job.name, pids[actor])
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, job, attempt = running.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except RayActorError as exc:  # the worker died (killed, lost machine, out of memory)
                if actor not in dead:  # its first lost video: replace it, with all its slots
                    dead.add(actor)
                    ray.kill(actor, no_restart=True)
                    pids.pop(actor, None)
                    idle = [a for a in idle if a is not actor]
                    idle.extend([remote.remote(config.predictor, device, threads, slots)] * slots)
                if attempt < config.retries:
                    retried += 1
                    queue.insert(0, (job, attempt + 1))
                    continue
                outcome = VideoOutcome(job.name, "failed", error=f"its Ray worker was lost {attempt + 1} time(s): "
                                       f"{_first_line(exc)}")
            except RayTaskError as exc:  # an error outside run_video's own handling (e.g. building the predictor)
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                if isinstance(cause, SSMVOSError):
                    raise SSMVOSError(str(cause)) from None
                idle.append(actor)
                outcome = VideoOutcome(job.name, "failed", error=_first_line(cause))
            else:
                idle.append(actor)
            outcomes.append((job.row, outcome))
            bar.update(1)
    finally:
        bar.close()
        for actor in set(idle + [a for a, _, _ in running.values()]) - dead:
            ray.kill(actor, no_restart=True)
        for job in jobs:
            remove_leftovers(Path(out), job.name)
    result = BatchResult(_in_manifest_order(outcomes), count, time.perf_counter() - started_videos,
                         started_videos - start, retried)
    result.summary = write_summary(config.out, result.outcomes)
    return result


def _creation_error(exc: BaseException) -> str:
    """The user's error (e.g. --weights) that ended a worker's construction, else the first line."""
    text = str(exc)
    found = re.findall(r"SSMVOSError: (.+)", text)
    return found[-1].strip() if found else _first_line(exc)


def _actor_pid(ray, actor) -> int | None:
    try:
        return int(ray.get(actor.pid.remote()))
    except Exception:
        return None


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__

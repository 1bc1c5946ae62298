"""Every path on one device timed in one run; prints one table.

    python benchmarks/gpu_check.py                      # on CUDA: the figures of benchmarks/README.md
    python benchmarks/gpu_check.py --smoke              # the same code end to end on the CPU, tiny sizes
    python benchmarks/gpu_check.py --data DIR --out DIR --budget 420 --sections correctness,inference

DAVIS 2016 frames from ``--data`` (a DAVIS 2016 root; default: the first of
``$SSMVOS_TEST_DATA``, ``datasets/DAVIS2016`` and ``../shared/data/DAVIS2016`` that holds the
full set, else, and always with ``--smoke``, the three sequences vendored in
``tests/fixtures/DAVIS2016``: a GPU machine that gets only this repository still runs it all).
Sections:
* correctness: runs ``python -m pytest -m cuda`` in a subprocess (the golden tests' CUDA
  cases: the original's forward and the reference pipeline under reference weights, fp32 with
  TF32 off, on every backend that runs on CUDA, both crop geometries, CUDA graphs; and videos
  sharing the network's calls) and records its counts; a failing test is a FAIL. It collects
  only the test files that hold CUDA cases, so the optional extras (the app, PyAV, Ray,
  pycocotools) need not be installed. On a machine without CUDA those cases skip.
* precision: TF32, bf16 and fp16 against the original's reference pipeline (evaluate on
  blackswan, car-shadow and two-object libby at 256): agreement of the merged masks, reported.
* inference: 854x480 frames, input 512, one object, object-frames/s of (a) the original's
  per-frame loop re-stated (plain fp32 NCHW forward, reference re-encoded every frame)
  and (b) the engine in each precision, plain / CUDA graphs / torch.compile / both, with
  its default geometry (crop, resize, paste-back on the GPU when on CUDA) and, for fp32
  and bf16 + CUDA graphs, the other one (OpenCV on the host; on a CPU: the tensor path); the
  network alone; then 1, 2, 5, 10 objects batched. Peak GPU memory for each.
* evaluate: ``evaluate_split`` end to end (decode, network, paste-back, PNG writing) and
  where its time goes, with PNGs written by threads and by processes (``--png-pools``), merging
  and quantisation on the network's device (device geometry) and on the host.
* videos: ``ssmvos batch``'s local engine over ``--videos`` (20) videos, the set's in turn
  (their first 40 frames, one object, PNGs written), one video at a time and 4, 8, 16 at once
  (their objects sharing the network's calls, ``--videos-at-once``): object-frames/s and rows
  per network call.
* train: samples/s of the original loop re-stated against ``ssmvos train`` in fp32 and
  bf16; ``torchrun --nproc_per_node=1`` (NCCL on CUDA); a stop-then-``--resume-step`` run
  against the uninterrupted one and against a repeat of it.

Anything that fails is marked FAIL and the exit status is 1. Sections past ``--budget``
seconds are skipped (compiled variants, the slowest, come last). Full figures go to
``<out>/gpu_check.json``.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
from collections import Counter
import datetime
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for sub in ("src", "tests", "benchmarks"):
    sys.path.insert(0, str(ROOT / sub))

from conftest import DAVIS16, REFERENCE, fill_reference_weights, find_davis2016  # noqa: E402
from ssmvos import SSM  # noqa: E402
from ssmvos.data import geometry  # noqa: E402
from ssmvos.data.io import object_mask, read_frame, read_mask  # noqa: E402
from ssmvos.data.tensors import image_to_tensor, mask_to_tensor  # noqa: E402
from ssmvos.inference.crops import HostGeometry  # noqa: E402
from ssmvos.inference.engine import Engine, VideoState  # noqa: E402
from ssmvos.inference.evaluate import evaluate_split  # noqa: E402
from ssmvos.inference.frames import FrameFiles  # noqa: E402
from ssmvos.runtime import RuntimeSpec, matmul_scope  # noqa: E402



# --------------------------------------------------------------------------- bookkeeping
class Report:
    """Table rows, JSON record, asserted checks and the time budget."""

    def __init__(self, budget: float):
        self.start = time.perf_counter()
        self.budget = budget
        self.rows: list[tuple[str, str, str, str]] = []
        self.record: dict = {}
        self.failures: list[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, seconds: float) -> bool:
        """True while ``seconds`` more fit in the budget."""
        return self.elapsed() + seconds <= self.budget

    def row(self, section: str, item: str, value: str, note: str = "") -> None:
        self.rows.append((section, item, value, note))
        print(f"  [{self.elapsed():6.1f} s] {section} | {item} | {value}" + (f" | {note}" if note else ""), flush=True)

    def check(self, section: str, item: str, ok: bool, value: str, note: str = "") -> None:
        if not ok:
            self.failures.append(f"{section}: {item} ({value})")
        self.row(section, item, f"{value} {'ok' if ok else 'FAIL'}", note)

    def skip(self, section: str, item: str, why: str) -> None:
        self.row(section, item, "skipped", why)

    def table(self) -> str:
        widths = [max(len(r[i]) for r in self.rows) for i in range(4)] if self.rows else [0] * 4
        widths = [min(w, 60) for w in widths]
        lines = []
        for r in self.rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        return "\n".join(lines)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return (f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB allocated, "
            f"{torch.cuda.max_memory_reserved(device) / 2**30:.2f} GiB reserved")


def environment(device: torch.device) -> dict:
    env = {"date": datetime.date.today().isoformat(), "torch": torch.__version__, "python": platform.python_version(),
           "device": str(device), "cpus": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), multiprocessors=props.multi_processor_count)
    else:
        env.update(gpu=None, cpu=platform.processor() or platform.machine())
    return env


def reference_model() -> SSM:
    model = SSM().eval()
    fill_reference_weights(model)
    return model


def guarded(report: Report, section: str, fn, *args, **kwargs):
    """Run one measurement; an exception becomes a FAIL row instead of ending the run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - report and go on
        traceback.print_exc()
        report.failures.append(f"{section}: {type(exc).__name__}: {exc}")
        report.row(section, "error", f"{type(exc).__name__}: {str(exc)[:200]}", "FAIL")
        return None


def guarded_engine(report: Report, section: str, name: str, fn, *args, **kwargs):
    """:func:`guarded`, except that a non-finite network output outside fp32 is a reported
    outcome (fp16 overflows under the reference weights, whose logits reach ~1e4)."""
    from ssmvos import SSMVOSError

    try:
        return fn(*args, **kwargs)
    except SSMVOSError as exc:
        if "not finite" not in str(exc) or "fp32" in name:
            report.failures.append(f"{section}: {name}: {exc}")
            report.row(section, name, f"error: {exc}", "FAIL")
        else:
            report.row(section, name, "non-finite output", f"reported: {exc}")
        return None
    except Exception as exc:  # noqa: BLE001 - report and go on
        traceback.print_exc()
        report.failures.append(f"{section}: {name}: {type(exc).__name__}: {exc}")
        report.row(section, name, f"{type(exc).__name__}: {str(exc)[:200]}", "FAIL")
        return None


# --------------------------------------------------------------------------- data
class Data:
    """Paths into a DAVIS 2016 root."""

    def __init__(self, davis: Path):
        self.davis = davis
        self.images = self.davis / "JPEGImages" / "480p"
        self.annotations = self.davis / "Annotations" / "480p"

    def videos(self) -> list[str]:
        return sorted(p.name for p in self.images.iterdir() if p.is_dir())

    def clip(self, video: str, frames: int) -> tuple[list[Path], np.ndarray]:
        paths = sorted((self.images / video).glob("*.jpg"))[:frames]
        return paths, object_mask(read_mask(self.annotations / video / "00000.png"), 255)

    def entries(self, video: str, object_ids: list[int], frames: int | None, annotations: Path | None = None) -> list[dict]:
        from conftest import davis_entries

        return davis_entries(video, annotations or self.annotations, object_ids, frames=frames, images=self.images)


# --------------------------------------------------------------------------- correctness
def cuda_test_files() -> list[str]:
    """The test files that hold CUDA cases: collecting only these, pytest needs none of the
    optional extras the other tests import (the app's server, PyAV, Ray, pycocotools)."""
    marks = re.compile(r"on_cuda\(|\bDEVICES\b|CUDA_MARKS|mark\.cuda\b")
    return [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").rglob("test_*.py")) if marks.search(p.read_text())]


def golden_tests(report: Report, device: torch.device, workdir: Path) -> None:
    """``pytest -m cuda`` over :func:`cuda_test_files`: the golden tests' CUDA cases, in a
    subprocess; records the counts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if device.type != "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ""  # checking another device: the CUDA cases skip
    junit = workdir / "pytest-cuda.xml"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "-rs",
                           f"--junitxml={junit}", *cuda_test_files()], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    secs = time.perf_counter() - t
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if junit.is_file():
        import xml.etree.ElementTree as ET

        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    report.record["golden_tests"] = {**counts, "passed": passed, "exit_status": proc.returncode, "seconds": secs,
                                     "summary": proc.stdout.strip().splitlines()[-1:] or [""]}
    ok = proc.returncode in (0, 5) and counts["failures"] == counts["errors"] == 0  # 5: none selected
    if device.type == "cuda":
        ok = ok and passed > 0
    report.check("correctness", "pytest -m cuda (golden tests on CUDA)", ok,
                 f"{passed} passed, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped "
                 f"in {secs:.0f} s", "exit " + str(proc.returncode))
    if not ok:
        print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n", flush=True)



def variant_spec(device: torch.device, opts: dict) -> RuntimeSpec:
    """The runtime spec a variant's options ({precision, compile, cuda_graphs}) name."""
    return RuntimeSpec("compile" if opts.get("compile") else "torch", device, opts.get("precision", "fp32"),
                       opts.get("cuda_graphs", False))


def variant_engine(model: SSM, size: tuple[int, int], device: torch.device, opts: dict, **options) -> Engine:
    """An engine for a variant (``device_geometry`` from its options when given)."""
    if "device_geometry" in opts:
        options["device_geometry"] = opts["device_geometry"]
    return Engine.for_model(copy.deepcopy(model), size, variant_spec(device, opts), margin=0.5, **options)


def compare_dirs(got: Path, want: Path, labels: bool, frames: set[str] | None = None) -> tuple[float, int]:
    """Over the PNGs under ``got`` (only ``<video>/<frame>`` in ``frames`` if given): the mean
    |difference| in grey levels, or the fraction of equal labels; and the file count."""
    files = sorted(f for f in got.rglob("*.png") if frames is None or f"{f.parent.name}/{f.stem}" in frames)
    if not files:
        return float("nan"), 0
    if labels:
        equal = total = 0
        for f in files:
            a, b = read_mask(f), read_mask(want / f.relative_to(got))
            equal += int((a == b).sum())
            total += a.size
        return equal / total, len(files)
    diffs = [np.abs(read_mask(f).astype(np.float64) - read_mask(want / f.relative_to(got))).mean() for f in files]
    return float(np.mean(diffs)), len(files)


def precision_agreement(report: Report, device: torch.device, model: SSM, frames: int | None,
                        variants: list[tuple[str, dict]], workdir: Path) -> None:
    """evaluate at 256 on the reference sequences (vendored: tests/fixtures) in each reduced
    precision of ``variants``: agreement of the merged masks with the original's (fp32), reported."""
    vendored = Data(DAVIS16)
    two = REFERENCE / "davis_two_object" / "Annotations" / "480p"
    jobs = {
        "blackswan+car-shadow": (vendored.entries("blackswan", [255], frames)
                                 + vendored.entries("car-shadow", [255], frames),
                                 REFERENCE / "pipeline_blackswan_car-shadow"),
        "libby (2 objects)": (vendored.entries("libby", [1, 2], frames, two), REFERENCE / "pipeline_two_object_libby"),
    }
    for name, opts in variants:
        engine = variant_engine(model, (256, 256), device, opts)
        for job, (entries, ref_dir) in jobs.items():
            out = workdir / f"precision-{name}-{job}".replace(" ", "_").replace("+", "_")
            t = time.perf_counter()
            stats = guarded_engine(report, "precision", f"{name} pipeline {job}", evaluate_split, entries, engine,
                                   out / "per", out / "merged", progress=False)
            if stats is None:
                continue
            secs = time.perf_counter() - t
            soft, n = compare_dirs(out / "per", ref_dir / "per_object", labels=False)
            # merged folders also hold background frames for the frames of the video folder that
            # a trimmed split leaves out: compare the segmented ones
            segmented = {f"{e['video_name']}/{Path(e['image_path']).stem}" for e in entries}
            agree, _ = compare_dirs(out / "merged", ref_dir / "merged", labels=True, frames=segmented)
            report.record.setdefault("precision", {}).setdefault(name, {})[job] = {
                "soft_difference": soft, "merged_agreement_with_original": agree, "files": n,
                "frames": stats.frames, "seconds": secs}
            report.row("precision", f"pipeline {job}, {name}",
                       f"merged = original (fp32) on {agree:.2%}, soft diff {soft:.2f} levels", "reported")
        del engine
        reset_memory(device)


# --------------------------------------------------------------------------- inference
def original_style_loop(model: SSM, paths: list[Path], mask0: np.ndarray, size: tuple[int, int],
                        device: torch.device) -> float:
    """The original evaluate loop re-stated: per frame, decode, crop the reference AND the
    current frame, plain fp32 forward (NCHW, TF32 off), softmax, paste back, threshold.
    Returns object-frames/s (frame 0 is the annotation)."""
    ref_img0 = read_frame(paths[0])
    h, w = size
    prev = mask0
    start = time.perf_counter()
    with torch.no_grad(), matmul_scope("fp32"):
        for p in paths[1:]:
            img = read_frame(p)
            ri, rm = geometry.crop_resize(ref_img0, mask0, geometry.mask_box(mask0, 0.5), h, w)
            box = geometry.mask_box(prev, 0.5)
            ci, pm = geometry.crop_resize(img, prev, box, h, w)
            logits, _ = model(image_to_tensor(ri)[None].to(device), mask_to_tensor(rm)[None].to(device),
                              image_to_tensor(ci)[None].to(device), mask_to_tensor(pm)[None].to(device))
            prob = geometry.paste_back(torch.softmax(logits, 1), box, *img.shape[:2])[0].cpu()
            prev = (prob[1] > prob[0]).numpy().astype(np.float32)
    sync(device)
    return (len(paths) - 1) / (time.perf_counter() - start)


def engine_rate(model: SSM, device: torch.device, paths: list[Path], mask0: np.ndarray, size: tuple[int, int],
                opts: dict, objects: int = 1, passes: int = 2) -> dict:
    """The engine over the clip (decoding prefetched, no file writing): object-frames/s, the
    warm-up time (compilation, graph capture), the network alone, and peak memory."""
    reset_memory(device)
    engine = variant_engine(model, size, device, opts, max_batch=16)
    h, w = read_frame(paths[0]).shape[:2]

    def run(frame_paths: list[Path]) -> int:
        state = VideoState(FrameFiles(frame_paths), h, w)
        for k in range(objects):
            engine.add_object(state, 0, k + 1, mask0)
        done = 0
        for result in engine.propagate(state):
            done += len(result.object_ids) if result.frame_index > 0 else 0
        sync(device)
        return done

    t = time.perf_counter()
    run(paths[:4])  # warm-up: cuDNN algorithm search, compilation, graph capture
    warm = time.perf_counter() - t
    warm_peak = peak_memory(device)
    reset_memory(device)
    times, done = [], 0
    for _ in range(passes):
        t = time.perf_counter()
        done = run(paths)
        times.append(time.perf_counter() - t)
    engine.stage_seconds.clear()
    t = time.perf_counter()
    run(paths)
    last = time.perf_counter() - t
    stages = {k: v / max(done // objects, 1) * 1000 for k, v in engine.stage_seconds.items()}
    steady_peak = peak_memory(device)
    # the network alone on one fixed batch of crops: throughput (calls queued back to back),
    # and the latency of each part of one call (synchronised)
    img0 = read_frame(paths[0])
    crop = HostGeometry(engine.runner, size, 0.5, Counter()).crop  # the host's crop + resize
    boxes = [geometry.mask_box(mask0, 0.5)] * objects
    images, masks = crop(img0, [mask0] * objects, boxes)
    runner = engine.runner
    ref = runner.encode_reference(images, masks)
    reps = 20 if device.type == "cuda" else 2
    runner.segment(ref, images, masks)
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        runner.segment(ref, images, masks)
    sync(device)
    network = objects * reps / (time.perf_counter() - t)
    cur, prev = runner.images(images), runner.masks(masks)
    latency = {
        "prepare (crop+resize)": lambda: crop(img0, [mask0] * objects, boxes),
        "inputs to device": lambda: (runner.images(images), runner.masks(masks)),
        "network on device inputs": lambda: runner.segment_tensors(ref, cur, prev),
        "whole runner call": lambda: runner.segment(ref, images, masks),
    }
    latency_ms = {}
    for name, fn in latency.items():
        fn()
        sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            fn()
            sync(device)
        latency_ms[name] = (time.perf_counter() - t) / reps * 1000
    out = {"object_frames_per_s": done / min(times + [last]), "warmup_s": warm, "network_alone_per_s": network,
           "stage_ms_per_frame": stages, "call_latency_ms": latency_ms, "peak_memory": steady_peak,
           "warmup_peak_memory": warm_peak}
    engine = runner = ref = cur = prev = None  # free the GPU memory before the next variant
    reset_memory(device)
    return out


def inference(report: Report, device: torch.device, model: SSM, data: Data, args, variants: list[tuple[str, dict]]) -> None:
    size = (args.size, args.size)
    paths, mask0 = data.clip(args.video, args.frames)
    report.row("inference", "clip", f"{args.video}, {len(paths)} frames {read_frame(paths[0]).shape[1]}x"
               f"{read_frame(paths[0]).shape[0]}, input {args.size}, 1 object")
    plain = copy.deepcopy(model).to(device)  # NCHW, as the original
    original = []
    for _ in range(2):
        original.append(original_style_loop(plain, paths[: args.original_frames], mask0, size, device))
    base = max(original)
    del plain
    reset_memory(device)
    report.row("inference", "(a) original-style loop, fp32", f"{base:.1f} object-frames/s",
               f"{args.original_frames - 1} frames, best of 2")
    report.record["inference"] = {"original_loop_fp32": base}
    for name, opts in variants:
        if opts.get("compile") and not report.allows(args.compile_cost):
            report.skip("inference", f"(b) engine, {name}", "time budget")
            continue
        r = guarded_engine(report, "inference", name, engine_rate, model, device, paths, mask0, size, opts)
        if r is None:
            continue
        report.record["inference"][name] = r
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_ms_per_frame"].items())
        calls = ", ".join(f"{k} {v:.2f}" for k, v in r["call_latency_ms"].items())
        report.row("inference", f"(b) engine, {name}",
                   f"{r['object_frames_per_s']:.1f} object-frames/s = {r['object_frames_per_s'] / base:.2f}x (a)",
                   f"network alone {r['network_alone_per_s']:.1f}/s; warm-up {r['warmup_s']:.1f} s (peak "
                   f"{r['warmup_peak_memory']}); ms/frame: {stages}; one call, ms: {calls}; peak {r['peak_memory']}")


def batched(report: Report, device: torch.device, model: SSM, data: Data, args, variants: list[tuple[str, dict]]) -> None:
    size = (args.size, args.size)
    paths, mask0 = data.clip(args.video, args.frames)
    for name, opts in variants:
        for n in args.objects:
            if not report.allows(10):
                report.skip("batched", f"{n} objects, {name}", "time budget")
                continue
            r = guarded_engine(report, "batched", f"{n} objects, {name}", engine_rate, model, device, paths, mask0,
                               size, opts, objects=n, passes=1)
            if r is None:
                continue
            report.record.setdefault("batched", {}).setdefault(name, {})[n] = r
            report.row("batched", f"{n} objects, {name}", f"{r['object_frames_per_s']:.1f} object-frames/s",
                       f"network alone {r['network_alone_per_s']:.1f}/s; peak {r['peak_memory']}")


# --------------------------------------------------------------------------- evaluate
def evaluate_end_to_end(report: Report, device: torch.device, model: SSM, data: Data, args, workdir: Path,
                        variants: list[tuple[str, dict]]) -> None:
    """evaluate_split end to end (PNGs written) per variant, writer count, PNG pool (threads or
    processes) and where merging and quantisation run: 'device merge' (device geometry: the
    label map and uint8 soft masks made where the network runs) or 'host merge' (host geometry)."""
    entries = data.entries(args.video, [255], args.frames)
    for name, opts in variants:
        for device_merge in args.device_merge:
            engine = variant_engine(model, (args.size, args.size), device, {**opts, "device_geometry": device_merge},
                                    max_batch=16)
            where = "device merge" if device_merge else "host merge"
            for pool in args.png_pools:  # warm-up, and the writer processes started (once per process)
                for workers in args.io_workers:
                    evaluate_split(entries[:4], engine, workdir / "warm", workdir / "warm-merged", progress=False,
                                   io_workers=workers, png_pool=pool)
            for pool in args.png_pools:
                for workers in args.io_workers:
                    engine.stage_seconds.clear()
                    label = f"{name}, {where}, {workers} writer {pool}"
                    out = workdir / "eval-{}".format(label.replace(" ", "_").replace("+", "_").replace(",", ""))
                    stats = evaluate_split(entries, engine, out / "per", out / "merged", progress=False,
                                           io_workers=workers, png_pool=pool)
                    per = {k: v / stats.frames * 1000 for k, v in engine.stage_seconds.items()}
                    accounted = sum(per.values())
                    total_ms = stats.seconds / stats.frames * 1000
                    report.record.setdefault("evaluate", {})[label] = {
                        "frames_per_s": stats.fps, "stage_ms_per_frame": per, "ms_per_frame": total_ms}
                    report.row("evaluate", label, f"{stats.fps:.1f} frames/s",
                               f"{total_ms:.2f} ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in per.items())
                               + f", rest (queueing PNGs, waiting for writers) {total_ms - accounted:.2f}")
            del engine
            reset_memory(device)


# --------------------------------------------------------------------------- many videos
def write_clips(data: Data, folder: Path, frames: int, count: int, varied: bool = False) -> Path:
    """A DAVIS-like batch manifest folder of ``count`` videos, the set's in turn (again as
    ``<video>-2``... when the set has fewer): ``<name>/`` the first ``frames`` frames (links;
    ``varied``: 2, 3, 4, ... frames instead, so that a warm-up meets every batch size) and
    ``<name>.png`` the frame-0 mask."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = data.videos()
    for i in range(count):
        video = videos[i % len(videos)]
        name = video if i < len(videos) else f"{video}-{i // len(videos) + 1}"
        (folder / name).mkdir(exist_ok=True)
        for path in sorted((data.images / video).glob("*.jpg"))[:2 + i if varied else frames]:
            link = folder / name / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
        (folder / f"{name}.png").write_bytes((data.annotations / video / "00000.png").read_bytes())
    return folder


def videos_at_once(report: Report, device: torch.device, model: SSM, data: Data, args, workdir: Path,
                   variants: list[tuple[str, dict]]) -> None:
    """``ssmvos batch``'s local engine over the DAVIS 2016 videos (one object each, PNGs
    written), one video at a time and K at once (their objects sharing the network's calls):
    object-frames/s, and the rows per network call."""
    from ssmvos.inference.batch import (BatchConfig, PredictorConfig, Together, count_frames, plan, progress_bar,
                                        read_manifest, run_share)
    from ssmvos.inference.predictor import VideoPredictor

    clips = write_clips(data, workdir / "videos", args.video_frames, args.videos)
    warm = write_clips(data, workdir / "videos-warm", 0, max(args.videos_at_once), varied=True)
    jobs = plan(count_frames(read_manifest(clips)), 1)[0]
    warm_jobs = plan(count_frames(read_manifest(warm)), 1)[0]
    object_frames = sum(j.frames for j in jobs)
    report.row("videos", "set", f"{len(jobs)} videos from {len(data.videos())} of DAVIS 2016, {object_frames} frames "
               "(object-frames/s counts "
               "them all), 1 object each, input "
               f"{args.size}, max batch {args.videos_max_batch}, PNGs written")
    for name, opts in variants:
        predictor = VideoPredictor(engine=variant_engine(model, (args.size, args.size), device, opts,
                                                         max_batch=args.videos_max_batch))
        rates = {}
        for k in args.videos_at_once:
            if not report.allows(15):
                report.skip("videos", f"{k} at once, {name}", "time budget")
                continue
            config = BatchConfig(str(clips), str(workdir / f"videos-out-{k}"), PredictorConfig(
                max_batch=args.videos_max_batch), overwrite=True, progress=False, videos_at_once=k)
            warm_config = dataclasses.replace(config, out=str(workdir / "videos-out-warm"))
            run_share(predictor, warm_jobs, warm_config, progress_bar([], False))  # graphs captured per batch size
            together = Together(predictor, args.videos_max_batch, min(k, len(jobs))) if k > 1 else None
            sync(device)
            start = time.perf_counter()
            outcomes = run_share(predictor, jobs, config, progress_bar([], False), together)
            sync(device)
            seconds = time.perf_counter() - start
            failed = [o for _, o in outcomes if o.status != "done"]
            if failed:
                raise RuntimeError(f"{failed[0].name}: {failed[0].error}")
            rate = object_frames / seconds
            rates[k] = rate
            stats = dict(together.shared.stats) if k > 1 else {}
            per_call = f"{stats['rows'] / stats['calls']:.1f} rows per network call" if stats else "one video's rows"
            report.record.setdefault("videos", {}).setdefault(name, {})[k] = {
                "object_frames_per_s": rate, "seconds": seconds, **stats}
            ratio = f" = {rate / rates[1]:.2f}x one at a time" if 1 in rates and k != 1 else ""
            report.row("videos", f"{k} at once, {name}", f"{rate:.1f} object-frames/s{ratio}",
                       f"{per_call}; peak {peak_memory(device)}")
        del predictor
        reset_memory(device)


# --------------------------------------------------------------------------- training
def write_train_split(data: Data, videos: list[str], path: Path, min_samples: int) -> Path:
    """A training split of ``videos``, repeated (as videos ``<name>~<k>``) until it holds at
    least ``min_samples`` samples: timed steps must not cross an epoch's end (a new DataLoader,
    and a smaller last batch whose new shapes start cuDNN's algorithm search again)."""
    import dataclasses

    from ssmvos.data.index import index_davis_videos
    from ssmvos.data.splits import write_split

    base = index_davis_videos(data.images, data.annotations, videos)
    entries = list(base)
    k = 1
    while len(entries) < min_samples:
        entries += [dataclasses.replace(e, video_name=f"{e.video_name}~{k}") for e in base]
        k += 1
    write_split(path, entries)
    return path


def train_rates(report: Report, device: torch.device, split: Path, args, workdir: Path, original: bool = True,
                runs: list[tuple[str, int]] | None = None) -> None:
    """The original loop re-stated (if ``original``) and ``ssmvos train`` for each (precision,
    batch) of ``runs``."""
    import logging

    from bench_train import original_loop, step_seconds
    from ssmvos.training import TrainConfig, train

    warm, steps, b, size = args.train_warmup, args.train_steps, args.train_batch, args.train_size
    report.record.setdefault("train", {})
    base = None
    if original:
        ends = original_loop(split, size, b, warm + steps, 123, workdir / "orig-board", device=str(device))
        base = b / statistics.mean(step_seconds(ends, warm))
        report.row("train", f"(a) original loop, fp32, batch {b}", f"{base:.2f} samples/s",
                   "num_workers=0, per-parameter Adam, loss.item(), IoU in numpy")
        report.record["train"]["original_fp32"] = base
    reset_memory(device)
    logging.getLogger("ssmvos.train").disabled = True
    if runs is None:
        runs = [("fp32", b), ("bf16", b)] + [("bf16", x) for x in args.train_big_batch]
    for precision, batch in runs:
        if not report.allows(30):
            report.skip("train", f"ssmvos train, {precision}, batch {batch}", "time budget")
            continue
        reset_memory(device)
        config = TrainConfig(model_dir=str(workdir / f"train-{precision}-{batch}"), split=str(split), batch_size=batch,
                             input_height=size, input_width=size, pretrained=False, device=device.type,
                             precision=precision, max_steps=warm + steps, save_step=10**9, log_step=10**9,
                             num_workers=args.train_workers)
        summary = guarded(report, "train", train, config)
        if summary is None:
            continue
        rate = batch / statistics.mean(step_seconds(summary.step_ends, warm))
        report.record["train"][f"ssmvos_{precision}_batch{batch}"] = {"samples_per_s": rate,
                                                                     "peak_memory": peak_memory(device)}
        report.row("train", f"(b) ssmvos train, {precision}, batch {batch}",
                   f"{rate:.2f} samples/s" + (f" = {rate / base:.2f}x (a)" if base else ""),
                   f"peak {peak_memory(device)}")
    logging.getLogger("ssmvos.train").disabled = False


def torchrun_resume(report: Report, device: torch.device, split: Path, args, workdir: Path) -> None:
    """torchrun with one process; an uninterrupted run, a repeat, and a stop-then-resume."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    steps, save = args.resume_steps, args.resume_steps // 2

    def run(model_dir: Path, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "ssmvos",
               "train", "--model-dir", str(model_dir), "--split", str(split), "--batch-size", "2",
               "--input-height", str(args.train_size), "--input-width", str(args.train_size), "--max-steps",
               str(steps), "--save-step", str(save), "--log-step", "1", "--num-workers", "2", "--no-pretrained",
               "--device", device.type, *extra]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)

    runs = {"uninterrupted": workdir / "tr-a", "repeat": workdir / "tr-a2"}
    for name, d in runs.items():
        proc = run(d)
        if proc.returncode != 0:
            report.check("train", f"torchrun {name}", False, f"exit {proc.returncode}", proc.stderr[-300:])
            return
    log = (runs["uninterrupted"] / "logs" / "train.log").read_text()
    backend = "nccl" if "process group: nccl" in log else "gloo" if "process group: gloo" in log else "?"
    report.check("train", "torchrun --nproc_per_node=1", backend == ("nccl" if device.type == "cuda" else "gloo"),
                 f"process group {backend}", "NCCL on CUDA, gloo on CPU")
    first = runs["uninterrupted"] / "checkpoints" / f"{save - 1}.pt"
    resumed = workdir / "tr-b"
    proc = run(resumed, "--resume", str(first), "--resume-step")
    if proc.returncode != 0:
        report.check("train", "torchrun --resume-step", False, f"exit {proc.returncode}", proc.stderr[-300:])
        return
    last = f"{steps - 1}.pt"
    weights = {k: torch.load(d / "checkpoints" / last, map_location="cpu", weights_only=True)["model_dict"]
               for k, d in {**runs, "resumed": resumed}.items()}

    def diff(a: str, b: str) -> tuple[float, float]:
        num = sum(float((weights[a][k].double() - weights[b][k].double()).norm() ** 2) for k in weights[a])
        den = sum(float(weights[a][k].double().norm() ** 2) for k in weights[a])
        mx = max(float((weights[a][k].double() - weights[b][k].double()).abs().max()) for k in weights[a])
        return (num / den) ** 0.5, mx

    rel_resume, max_resume = diff("uninterrupted", "resumed")
    rel_repeat, max_repeat = diff("uninterrupted", "repeat")
    report.record["resume"] = {"resumed_vs_uninterrupted": [rel_resume, max_resume],
                               "repeat_vs_uninterrupted": [rel_repeat, max_repeat]}
    # a resume is exact when it differs from the uninterrupted run no more than a plain repeat does
    exact = max_resume == 0.0 or rel_resume <= max(10 * rel_repeat, 1e-12)
    report.check("train", f"--resume-step at step {save} vs uninterrupted ({steps} steps)", exact,
                 f"weights rel. diff {rel_resume:.2e} (max {max_resume:.1e})",
                 f"a repeat of the uninterrupted run differs by {rel_repeat:.2e} (max {max_repeat:.1e})")


# --------------------------------------------------------------------------- main
def variant_name(precision: str, compile: bool, graphs: bool, host_geometry: bool = False) -> str:
    extras = [x for x, on in (("compile", compile), ("CUDA graphs", graphs)) if on]
    return precision + ("" if not extras else " + " + " + ".join(extras)) + (", host geometry" if host_geometry else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: the whole script in about a minute")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--data", type=Path, default=None,
                    help="a DAVIS 2016 root (default: the first full one of $SSMVOS_TEST_DATA, datasets/DAVIS2016, "
                    "../shared/data/DAVIS2016; without one, and with --smoke: the three sequences vendored in "
                    "tests/fixtures/DAVIS2016)")
    ap.add_argument("--shared", type=Path, default=None, help="the shared folder: --data SHARED/data/DAVIS2016 "
                    "(the former option, still accepted)")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json (default: none written)")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which optional parts are skipped")
    ap.add_argument("--sections", default="correctness,precision,inference,batched,evaluate,videos,train,resume,compile",
                    help="comma-separated, run in this order; also 'trainbig' (ssmvos train in bf16 at batch 32 and "
                    "64 only)")
    ap.add_argument("--batched", default="bf16,fp32", help="precisions of the batched-objects runs (default bf16,fp32)")
    ap.add_argument("--precisions", default=None, help="comma-separated (default fp32,tf32,bf16,fp16; smoke fp32,bf16)")
    ap.add_argument("--video", default=None, help="the sequence the inference, batched and evaluate sections time "
                    "(default car-roundabout where the set has it, else blackswan)")
    ap.add_argument("--videos", type=int, default=20, help="videos section: how many videos (the set's in turn; "
                    "default 20)")
    ap.add_argument("--png-pools", default="threads,processes",
                    help="evaluate section: PNG writer pools to time (default threads,processes)")
    args = ap.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    smoke = args.smoke
    args.size = 224 if smoke else 512
    args.frames = 3 if smoke else 200
    args.original_frames = 3 if smoke else 21
    args.objects = [1, 2] if smoke else [1, 2, 5, 10]
    args.io_workers = [2] if smoke else [2, 4]
    args.video_frames = 3 if smoke else 40  # per video of the videos section
    args.videos = 3 if smoke else args.videos
    args.videos_at_once = [1, 2] if smoke else [1, 4, 8, 16]
    args.videos_max_batch = 4 if smoke else 32
    args.png_pools = args.png_pools.split(",")
    # merging and quantisation on the network's device, or on the host (smoke: the device path only, to stay short)
    args.device_merge = [True] if smoke else [True, False]
    args.compile_cost = 90.0
    args.train_size = 224 if smoke else 512
    args.train_batch = 1 if smoke else 16
    args.train_big_batch = [2] if smoke else [32]
    args.train_warmup, args.train_steps = (1, 1) if smoke else (3, 6)
    args.train_workers = 0 if smoke else 16
    args.resume_steps = 2 if smoke else 6
    precisions = (args.precisions or ("fp32,bf16" if smoke else "fp32,tf32,bf16,fp16")).split(",")
    sections = args.sections.split(",")
    if args.data is None and args.shared is not None:
        args.data = args.shared / "data" / "DAVIS2016"
    if args.data is None:
        args.data = None if smoke else find_davis2016()
        if args.data is None:
            args.data = DAVIS16
            if not smoke:
                print(f"no full DAVIS 2016 found: timing the three sequences vendored in {DAVIS16}", flush=True)
    data = Data(args.data)
    if not data.images.is_dir():
        print(f"needs DAVIS 2016 frames under {data.images} (--data)", file=sys.stderr)
        return 2
    if args.video is None:
        args.video = "blackswan" if smoke or "car-roundabout" not in data.videos() else "car-roundabout"
    if args.video not in data.videos():
        print(f"--video {args.video}: no such sequence under {data.images}", file=sys.stderr)
        return 2
    if smoke:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    import torch._dynamo as dynamo

    dynamo.config.cache_size_limit = 64  # compiled variants recompile per runner and batch size
    report = Report(args.budget)
    env = environment(device)
    report.record["environment"] = env
    print("gpu_check: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)

    graphs = [False, True] if cuda else [False]
    plain = [(variant_name(p, False, g), {"precision": p, "cuda_graphs": g}) for p in precisions for g in graphs]
    # the engine's geometry runs on the device by default on CUDA, on the host elsewhere: the other one too
    host = ([(variant_name(p, False, g, True), {"precision": p, "cuda_graphs": g, "device_geometry": False})
             for p, g in (("fp32", False), ("bf16", True)) if p in precisions] if cuda else
            [("fp32, device geometry", {"precision": "fp32", "device_geometry": True})])
    compiled = [(variant_name(p, True, g), {"precision": p, "compile": True, "cuda_graphs": g})
                for p in (["bf16", "fp32", "fp16", "tf32"] if cuda else ["fp32"]) if p in precisions
                for g in (graphs[::-1])]
    model = reference_model()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        most = max([args.train_batch, *args.train_big_batch, 2 * args.train_big_batch[-1]])
        videos = [v for v in ["blackswan", "car-shadow", "libby"] + ([] if smoke else ["car-roundabout"])
                  if v in data.videos()]
        split = write_train_split(data, videos, work / "train.json",
                                  most * (args.train_warmup + args.train_steps))

        def precision_section() -> None:
            picks = [(n, o) for n, o in plain + host if o["precision"] != "fp32"]
            guarded(report, "precision", precision_agreement, report, device, model, 3 if smoke else None, picks, work)

        def batched_section() -> None:
            picks = [(n, o) for n, o in plain if o["precision"] in args.batched.split(",") and o["cuda_graphs"] == cuda]
            guarded(report, "batched", batched, report, device, model, data, args, picks)

        def evaluate_section() -> None:
            picks = [(n, o) for n, o in plain if (o["precision"], o["cuda_graphs"]) in (("fp32", False), ("bf16", cuda))]
            guarded(report, "evaluate", evaluate_end_to_end, report, device, model, data, args, work, picks)

        def videos_section() -> None:
            picks = [(n, o) for n, o in plain if (o["precision"], o["cuda_graphs"]) in (("bf16", cuda),)]
            guarded(report, "videos", videos_at_once, report, device, model, data, args, work, picks)

        def compile_section() -> None:
            if smoke:
                report.skip("compile", "torch.compile variants", "not in --smoke (minutes of compilation on a CPU)")
                return
            for name, opts in compiled:
                if not report.allows(args.compile_cost):
                    report.skip("compile", name, "time budget")
                    continue
                guarded(report, "inference", inference_one, report, device, model, data, args, name, opts)
                dynamo.reset()

        runs = {
            "correctness": lambda: guarded(report, "correctness", golden_tests, report, device, work),
            "precision": precision_section,
            "inference": lambda: guarded(report, "inference", inference, report, device, model, data, args,
                                         plain + host),
            "batched": batched_section,
            "evaluate": evaluate_section,
            "videos": videos_section,
            "train": lambda: guarded(report, "train", train_rates, report, device, split, args, work),
            "trainbig": lambda: guarded(report, "train", train_rates, report, device, split, args, work,
                                        original=False, runs=[("bf16", x) for x in
                                                              args.train_big_batch + [2 * args.train_big_batch[-1]]]),
            "resume": lambda: guarded(report, "train", torchrun_resume, report, device, split, args, work),
            "compile": compile_section,
        }
        for section in sections:  # in the order given
            if section not in runs:
                print(f"unknown section {section!r}: choose from {', '.join(runs)}", file=sys.stderr)
                return 2
            runs[section]()
    print(f"\ngpu_check finished in {report.elapsed():.0f} s on {env.get('gpu') or env['device']}, torch "
          f"{env['torch']}" + (f", CUDA {env['cuda']}, cuDNN {env['cudnn']}" if cuda else "") + f", {env['date']}")
    print(report.table())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps({**report.record, "rows": report.rows,
                                                               "failures": report.failures}, indent=1, default=str))
    if report.failures:
        print("\nFAILED: " + "; ".join(report.failures))
        return 1
    return 0


def inference_one(report: Report, device: torch.device, model: SSM, data: Data, args, name: str, opts: dict) -> None:
    """One compiled engine variant, against the original-style rate measured earlier."""
    paths, mask0 = data.clip(args.video, args.frames)
    r = guarded_engine(report, "inference", name, engine_rate, model, device, paths, mask0, (args.size, args.size),
                       opts)
    if r is None:
        return
    report.record.setdefault("inference", {})[name] = r
    base = report.record["inference"].get("original_loop_fp32")
    ratio = f" = {r['object_frames_per_s'] / base:.2f}x (a)" if base else ""
    report.row("inference", f"(b) engine, {name}", f"{r['object_frames_per_s']:.1f} object-frames/s{ratio}",
               f"network alone {r['network_alone_per_s']:.1f}/s; compile + warm-up {r['warmup_s']:.1f} s; "
               f"peak {r['peak_memory']}")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: ssmvos generic scoring (``score_folder(fmt="generic")``) against vos-benchmark.

Builds, from the 20 DAVIS 2016 sequences of ../shared/data (1376 frames, 854x480), a dataset
with what the DAVIS rules cannot score, in a temp folder:

* two objects per video with ids that have gaps (2 and 5: the left and right halves of the
  DAVIS object); object 5 appears late, a third into the video;
* results: each object perturbed frame by frame as in bench_score.py (eroded, dilated,
  shifted, opened or lost); in odd videos object 5 is predicted two frames before it appears,
  and every 17th frame of every third video holds a stray id 9 that the truth never has;
* ``dense``: every frame annotated; ``sparse``: every 5th frame annotated (YouTube-VOS
  style), results on every frame.

Then, in the same run and for each variant: vos-benchmark's ``benchmark()`` and ssmvos with
the same number of processes (``--workers``), their times, the speed-up and the largest
difference between their figures (per object J and F means and the global ones); and a
single-process profile of both (cProfile, so slower than the timed runs) saying where the
time goes. Exit status 1 if any figure differs by more than 1e-6.

vos-benchmark is not a dependency of ssmvos (it needs opencv-python, which clashes with the
opencv-python-headless that ssmvos uses, and scikit-image). Install it in a separate venv:

    python -m venv --system-site-packages /tmp/vosb
    /tmp/vosb/bin/pip install --no-deps vos-benchmark==0.1.0 scikit-image imageio tifffile lazy_loader
    /tmp/vosb/bin/python benchmarks/bench_score_generic.py [--davis DIR] [--workers 2] [--repeat 2]
"""
from __future__ import annotations

import argparse
import cProfile
import math
import pstats
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_score import PALETTE, perturb  # noqa: E402
from ssmvos.scoring import score_folder  # noqa: E402

IDS = (2, 5)  # a gap in the ids
STRAY = 9


def save(path: Path, labels: np.ndarray) -> None:
    img = Image.fromarray(labels, mode="P")
    img.putpalette(PALETTE)
    img.save(path)


def make_dataset(davis_annotations: Path, out: Path, videos: list[str]) -> dict[str, int]:
    """Writes out/{gt_dense,gt_sparse,res}/<video>/<frame>.png; returns counts."""
    counts = {"dense": 0, "sparse": 0}
    for vi, video in enumerate(videos):
        for sub in ("gt_dense", "gt_sparse", "res"):
            (out / sub / video).mkdir(parents=True)
        pngs = sorted((davis_annotations / video).glob("*.png"))
        late = len(pngs) // 3
        for t, png in enumerate(pngs):
            fg = np.array(Image.open(png)) != 0
            cols = np.flatnonzero(fg.any(axis=0))
            split = int(np.median(cols)) if cols.size else fg.shape[1] // 2
            halves = {IDS[0]: fg.copy(), IDS[1]: fg.copy()}
            halves[IDS[0]][:, split:] = False
            halves[IDS[1]][:, :split] = False
            gt = np.zeros(fg.shape, np.uint8)
            res = np.zeros(fg.shape, np.uint8)
            for k, mask in halves.items():
                starts = late if k == IDS[1] else 0
                if t >= starts:
                    gt[mask] = k
                if t >= starts - (2 if vi % 2 and k == IDS[1] else 0):
                    res[perturb(mask, 11 * vi + 3 * t + k) != 0] = k
            if vi % 3 == 0 and t % 17 == 5:
                cv2.circle(res, (40, 40), 12, STRAY, -1)
            save(out / "gt_dense" / video / png.name, gt)
            counts["dense"] += 1
            if t % 5 == 0:
                save(out / "gt_sparse" / video / png.name, gt)
                counts["sparse"] += 1
            save(out / "res" / video / png.name, res)
    return counts


def run_vos_benchmark(gt: Path, res: Path, processes: int) -> dict:
    """vos-benchmark's figures, as fractions, in ssmvos's layout (per_object keys <video>_<id>)."""
    from vos_benchmark.benchmark import benchmark

    _, global_j, global_f, objects = benchmark([str(gt)], [str(res)], num_processes=processes, verbose=False)
    per_object = {f"{video}_{k}": {"J_mean": iou[k] / 100, "F_mean": bf[k] / 100}
                  for video, (iou, bf) in objects[0].items() for k in iou}
    return {"J_mean": global_j[0] / 100, "F_mean": global_f[0] / 100, "per_object": per_object}


def max_abs_diff(a: dict, b: dict) -> float:
    if set(a["per_object"]) != set(b["per_object"]):
        return math.inf
    diffs = [abs(a[k] - b[k]) for k in ("J_mean", "F_mean")]
    for name, obj in a["per_object"].items():
        diffs += [abs(obj[k] - b["per_object"][name][k]) for k in ("J_mean", "F_mean")]
    return max(diffs)


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def profile(fn, groups: dict[str, tuple[str, ...]]) -> tuple[float, dict[str, float]]:
    """Run ``fn`` under cProfile; total seconds and cumulative seconds of the named function groups."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(fn)
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    out = {}
    for label, names in groups.items():
        out[label] = sum(ct for (file, _, name), (_, _, _, ct, _) in stats.items()
                         if any(f"{file}:{name}".endswith(n) for n in names))
    return total, out


def profile_vos_benchmark(gt: Path, res: Path, videos: list[str]) -> tuple[float, dict[str, float]]:
    from vos_benchmark.benchmark import VideoEvaluator

    evaluator = VideoEvaluator(str(gt), str(res))
    return profile(lambda: [evaluator(v) for v in videos], {
        "PNG decoding (PIL)": ("Image.py:__array_interface__",),
        "np.unique (objects per frame)": (":unique",),
        "boundary maps (full frame)": ("utils.py:_seg2bmap",),
        "dilations (full frame)": ("dilate>",),
    })


def profile_ssmvos(gt: Path, res: Path) -> tuple[float, dict[str, float]]:
    return profile(lambda: score_folder(gt, res, fmt="generic", workers=1), {
        "PNG decoding": ("labels.py:read_label_png",),
        "new ids per frame (table lookup)": ("labels.py:new_ids",),
        "J and F on the box around each object": ("metrics.py:mask_scores",),
        "  of which dilations": ("dilate>",),
    })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared" / "data" / "DAVIS2016")
    parser.add_argument("--workers", type=int, default=2, help="processes for both tools (default 2)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each, best kept (default 2)")
    parser.add_argument("--no-profile", action="store_true", help="skip the single-process profiles")
    args = parser.parse_args()
    try:
        import vos_benchmark  # noqa: F401
    except ImportError:
        print("vos-benchmark is not importable here; see this script's docstring for a venv", file=sys.stderr)
        return 1
    annotations = args.davis / "Annotations" / "480p"
    if not annotations.is_dir():
        print(f"no DAVIS 2016 annotations at {annotations}", file=sys.stderr)
        return 1
    videos = sorted(d.name for d in annotations.iterdir() if d.is_dir())
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        counts = make_dataset(annotations, data, videos)
        print(f"{len(videos)} videos; annotated frames: dense {counts['dense']}, sparse {counts['sparse']}; "
              f"results on all {counts['dense']} frames; {args.workers} process(es) each, best of {args.repeat}")
        for variant in ("dense", "sparse"):
            gt = data / f"gt_{variant}"
            t_ref, ref = best_time(lambda: run_vos_benchmark(gt, data / "res", args.workers), args.repeat)
            t_got, got = best_time(lambda: score_folder(gt, data / "res", fmt="generic", workers=args.workers),
                                   args.repeat)
            diff = max_abs_diff(got, ref)
            worst = max(worst, diff)
            print(f"\n[{variant}] {len(got['per_object'])} objects")
            print(f"  vos-benchmark 0.1.0 ({args.workers} processes): {t_ref:7.2f} s   J&F {50 * (ref['J_mean'] + ref['F_mean']):.3f}")
            print(f"  ssmvos generic   ({args.workers} processes): {t_got:7.2f} s   J&F {100 * got['JF_mean']:.3f}")
            print(f"  speed-up: {t_ref / t_got:.2f}x   max |difference| of J/F means (fractions): {diff:.3g}")
        if not args.no_profile:
            gt = data / "gt_dense"
            for name, (total, parts) in (("vos-benchmark", profile_vos_benchmark(gt, data / "res", videos)),
                                         ("ssmvos", profile_ssmvos(gt, data / "res"))):
                print(f"\nwhere the time goes, {name}, dense, 1 process under cProfile: {total:.2f} s")
                for label, seconds in parts.items():
                    print(f"  {label:<42} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")
    print(f"\nlargest difference over both variants: {worst:.3g}")
    return 0 if worst <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())

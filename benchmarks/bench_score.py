"""Benchmark: ssmvos J&F scoring vs a plain re-statement of the official DAVIS evaluation.

Builds perturbed results for every DAVIS 2016 sequence of ../shared/data (ground truth
eroded, dilated, shifted or emptied, frame by frame, deterministically) in a temp folder, then
times, in the same run:

  (a) ``official_like``: the official algorithm as the official code runs it (whole sequences
      loaded as float64 stacks, objects separated by broadcasting, per-frame full-image boundary
      maps, a disk kernel rebuilt for every frame, scalar statistics), single process;
  (b) ``ssmvos.scoring.score_folder(..., workers=2)``.

Prints both times, the speed-up and the largest absolute difference between the figures.

    python benchmarks/bench_score.py [--davis ../shared/data/DAVIS2016] [--workers 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ssmvos.scoring import score_folder  # noqa: E402

PALETTE = [0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254


def perturb(mask: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic imperfect prediction (H, W) uint8 {0, 1} from a GT mask (H, W) bool."""
    m = mask.astype(np.uint8)
    kind = seed % 5
    size = 3 + 2 * (seed % 4)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    if kind == 0:
        m = cv2.erode(m, kernel)
    elif kind == 1:
        m = cv2.dilate(m, kernel)
    elif kind == 2:
        m = np.roll(m, (seed % 7) - 3, axis=0)
        m = np.roll(m, (seed % 11) - 5, axis=1)
    elif kind == 3:
        m = cv2.dilate(cv2.erode(m, kernel), kernel)  # opening: loses thin parts
    elif seed % 3 == 0:
        m = np.zeros_like(m)  # a lost frame now and then
    return m


def make_results(annotations: Path, out: Path, videos: list[str]) -> int:
    n = 0
    for vi, video in enumerate(videos):
        (out / video).mkdir(parents=True)
        for fi, png in enumerate(sorted((annotations / video).glob("*.png"))):
            gt = np.array(Image.open(png)) != 0
            img = Image.fromarray(perturb(gt, 7 * vi + fi), mode="P")
            img.putpalette(PALETTE)
            img.save(out / video / png.name)
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# (a) The official algorithm, re-stated plainly (same data flow and per-frame work).
# --------------------------------------------------------------------------------------------

def _stack(folder: Path, names: list[str]) -> np.ndarray:
    first = np.array(Image.open(folder / f"{names[0]}.png"))
    stack = np.zeros((len(names), *first.shape))
    for i, name in enumerate(names):
        stack[i] = np.array(Image.open(folder / f"{name}.png"))
    return stack


def _separate(labels: np.ndarray, n: int) -> np.ndarray:
    ids = np.ones((n, *labels.shape)) * np.arange(1, n + 1)[:, None, None, None]
    return ids == labels[None]


def _disk(radius: float) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(r, r)
    return (x ** 2 + y ** 2 <= radius ** 2).astype(np.uint8)


def _bmap(seg: np.ndarray) -> np.ndarray:
    seg = seg.astype(bool)
    right, down, diag = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    b[-1, :] = seg[-1, :] ^ right[-1, :]
    b[:, -1] = seg[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def _f_frame(pred: np.ndarray, gt: np.ndarray) -> float:
    void = np.zeros_like(pred).astype(bool)
    radius = np.ceil(0.008 * np.linalg.norm(pred.shape))
    pb = _bmap(pred * np.logical_not(void))
    gb = _bmap(gt * np.logical_not(void))
    pd = cv2.dilate(pb.astype(np.uint8), _disk(radius))
    gd = cv2.dilate(gb.astype(np.uint8), _disk(radius))
    n_p, n_g = np.sum(pb), np.sum(gb)
    if n_p == 0 and n_g > 0:
        prec, rec = 1, 0
    elif n_p > 0 and n_g == 0:
        prec, rec = 0, 1
    elif n_p == 0 and n_g == 0:
        prec, rec = 1, 1
    else:
        prec, rec = np.sum(pb * gd) / float(n_p), np.sum(gb * pd) / float(n_g)
    return 0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def _iou_frames(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    gt, pred = gt.astype(bool), pred.astype(bool)
    void = np.zeros_like(pred)
    inter = np.sum((gt & pred) & np.logical_not(void), axis=(-2, -1))
    union = np.sum((gt | pred) & np.logical_not(void), axis=(-2, -1))
    j = inter / union
    j[np.isclose(union, 0)] = 1
    return j


def _stats(x: np.ndarray) -> tuple[float, float, float]:
    m, o = np.nanmean(x), np.nanmean(x > 0.5)
    ids = (np.round(np.linspace(1, len(x), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [x[ids[i]:ids[i + 1] + 1] for i in range(4)]
    return m, o, np.nanmean(bins[0]) - np.nanmean(bins[3])


def official_like(annotations: Path, results: Path, videos: list[str]) -> dict:
    per_object = {}
    for video in videos:
        names = sorted(p.stem for p in (annotations / video).glob("*.png"))
        gt = (_stack(annotations / video, names) != 0).astype(np.float64)  # DAVIS 2016: nonzero = object 1
        gt = _separate(gt, int(np.max(gt[0])))[:, 1:-1]
        names = names[1:-1]
        res = (_stack(results / video, names) != 0).astype(np.float64)
        res = _separate(res, int(np.max(res)))
        if res.shape[0] < gt.shape[0]:
            res = np.concatenate([res, np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]))])
        for k in range(gt.shape[0]):
            j = _iou_frames(gt[k], res[k])
            f = np.array([_f_frame(res[k, t], gt[k, t]) for t in range(gt.shape[1])])
            (jm, jr, jd), (fm, fr, fd) = _stats(j), _stats(f)
            per_object[f"{video}_{k + 1}"] = dict(J_mean=jm, J_recall=jr, J_decay=jd,
                                                  F_mean=fm, F_recall=fr, F_decay=fd)
    out = {k: float(np.mean([o[k] for o in per_object.values()]))
           for k in ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")}
    out["JF_mean"] = (out["J_mean"] + out["F_mean"]) / 2
    out["per_object"] = per_object
    return out


def max_abs_diff(a: dict, b: dict) -> float:
    keys = ("JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")
    diffs = [abs(a[k] - b[k]) for k in keys]
    assert a["per_object"].keys() == b["per_object"].keys()
    for name, obj in a["per_object"].items():
        diffs += [abs(obj[k] - b["per_object"][name][k]) for k in keys[1:]]
    return max(diffs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared" / "data" / "DAVIS2016")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="build the results here and keep them")
    args = parser.parse_args()
    annotations = args.davis / "Annotations" / "480p"
    if not annotations.is_dir():
        print(f"no DAVIS 2016 annotations at {annotations}", file=sys.stderr)
        return 1
    videos = sorted(d.name for d in annotations.iterdir() if d.is_dir())
    with tempfile.TemporaryDirectory() as tmp:
        results = args.keep or Path(tmp) / "results"
        n = make_results(annotations, results, videos)
        print(f"{len(videos)} videos, {n} frames of perturbed results in {results}")

        t0 = time.perf_counter()
        ref = official_like(annotations, results, videos)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = score_folder(annotations, results, fmt="davis2016", workers=args.workers)
        t_got = time.perf_counter() - t0

    print(f"official algorithm (plain re-statement, 1 process): {t_ref:7.2f} s   J&F {100 * ref['JF_mean']:.2f}")
    print(f"ssmvos score_folder (workers={args.workers}):              {t_got:7.2f} s   J&F {100 * got['JF_mean']:.2f}")
    print(f"speed-up: {t_ref / t_got:.1f}x")
    diff = max_abs_diff(got, ref)
    print(f"max |difference| over global and per-object figures: {diff:.3g}")
    return 0 if diff <= 1e-9 and math.isfinite(diff) else 1


if __name__ == "__main__":
    sys.exit(main())

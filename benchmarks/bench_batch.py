"""Throughput of `ssmvos batch` on the CPU, in one run: videos/s and object-frames/s with one
process, with two processes under torchrun, with every video at once in one process
(`--videos-at-once`: their objects share the network's calls), and `--engine ray` (a local
Ray started by the command) against the local engine with the same number of workers.

    python benchmarks/bench_batch.py [--videos 4] [--frames 8] [--input-size 224] [--rounds 1]

The videos are DAVIS 2016 clips (``--shared``, default ../shared) cut to ``--frames`` frames
and downscaled to 320×180; the network has deterministic reference weights (the speed does
not depend on their values). Each configuration is one ``python -m ssmvos batch`` command in
its own output folder; "command" is its whole wall time (Python and torch imports
included), "start-up" and "videos" what the command reports: reading the videos' lengths,
building the predictor(s) and starting Ray, then the videos themselves (every worker ready
to the last video done), from which videos/s and object-frames/s are taken.
Rounds are interleaved, so that a load change on a shared machine hits every configuration
alike; the best round is printed.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import fill_reference_weights  # noqa: E402
from ssmvos.data.io import read_mask, write_palette_png  # noqa: E402

CLIPS = ["blackswan", "car-shadow", "bmx-trees", "libby", "cows", "dog", "breakdance", "camel"]
W, H = 320, 180


def make_inputs(root: Path, shared: Path, videos: int, frames: int) -> tuple[Path, int, int]:
    """Frame folders, masks and a manifest; returns (manifest, frames, object-frames)."""
    davis = shared / "data" / "DAVIS2016"
    rows, total_frames, object_frames = ["name,video,masks"], 0, 0
    for k, name in enumerate(CLIPS[:videos]):
        n = frames + 2 * k  # different lengths, as a real list has
        src = sorted((davis / "JPEGImages" / "480p" / name).glob("*.jpg"))[:n]
        (root / name).mkdir(parents=True)
        for i, f in enumerate(src):
            cv2.imwrite(str(root / name / f"{i:05d}.jpg"), cv2.resize(cv2.imread(str(f)), (W, H), cv2.INTER_AREA))
        labels = cv2.resize(read_mask(davis / "Annotations" / "480p" / name / "00000.png"), (W, H),
                            interpolation=cv2.INTER_NEAREST)
        write_palette_png(root / f"{name}.png", (labels > 0).astype(np.uint8))
        rows.append(f"{name},{name},{name}.png")
        total_frames += len(src)
        object_frames += len(src)  # one object per DAVIS 2016 clip
    manifest = root / "videos.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, total_frames, object_frames


def write_weights(path: Path) -> Path:
    from ssmvos import SSM, save_checkpoint

    model = SSM()
    fill_reference_weights(model)
    return save_checkpoint(path, model.state_dict(), 0)


def run(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """(command wall seconds, seconds of the videos, seconds of the start-up) as the batch reports them."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    found = re.search(r"\) in ([0-9.]+) s on .*start-up ([0-9.]+) s", proc.stdout)
    if not found:
        raise SystemExit(f"no timing in the output of {' '.join(cmd)}:\n{proc.stdout}")
    return wall, float(found.group(1)), float(found.group(2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8, help="frames of the shortest video (the others: +2 each)")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--no-ray", action="store_true", help="leave out the Ray configurations")
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        manifest, frames, object_frames = make_inputs(tmp / "in", args.shared, args.videos, args.frames)
        weights = write_weights(tmp / "weights.pt")
        common = ["--manifest", str(manifest), "--weights", str(weights), "--input-size", str(args.input_size),
                  "--device", "cpu", "--no-progress", "--overwrite"]
        py = [sys.executable]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        batch = py + ["-m", "ssmvos", "batch"]
        torchrun = py + ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "ssmvos", "batch"]
        ray = batch + ["--engine", "ray", "--ray-workers"]
        configs = {  # name -> (command, OMP_NUM_THREADS); a CPU Ray worker uses the CPUs Ray gives it
            "local, 1 process x 1 thread": (batch, 1),
            f"local, 1 process x {cpus} threads": (batch, cpus),
            f"torchrun, 2 processes x {max(1, cpus // 2)} thread(s)": (torchrun, max(1, cpus // 2)),
            f"local, 1 process x {cpus} threads, {args.videos} videos at once":
                (batch + ["--videos-at-once", str(args.videos)], cpus),
        }
        if not args.no_ray:
            configs[f"ray, 1 worker x {cpus} threads"] = (ray + ["1"], cpus)
            configs[f"ray, 2 workers x {max(1, cpus // 2)} thread(s)"] = (ray + ["2"], max(1, cpus // 2))
        best: dict[str, tuple[float, float, float]] = {}
        for r in range(args.rounds):
            for k, (name, (cmd, threads)) in enumerate(configs.items()):
                got = run(cmd + common + ["--out", str(tmp / f"out{k}")], {**env, "OMP_NUM_THREADS": str(threads)})
                if name not in best or got[1] < best[name][1]:
                    best[name] = got
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"commit {commit}; {cpus} CPUs; load average {os.getloadavg()[0]:.2f}; {args.videos} videos, {frames} "
          f"frames ({object_frames} object-frames) at {W}x{H}, input {args.input_size}; best of {args.rounds} round(s)")
    print(f"{'configuration':48s} {'command s':>10s} {'start-up s':>10s} {'videos s':>9s} {'videos/s':>9s} "
          f"{'obj-frames/s':>13s}")
    for name, (wall, inside, setup) in best.items():
        print(f"{name:48s} {wall:10.1f} {setup:10.1f} {inside:9.1f} {args.videos / inside:9.3f} "
              f"{object_frames / inside:13.2f}")
    rays = [n for n in best if n.startswith("ray")]
    if rays:
        names = list(best)
        for local_name, ray_name in zip(names[1:3], rays):  # the 1-process and the torchrun rows
            (lw, li, ls), (rw, ri, rs) = best[local_name], best[ray_name]
            print(f"ray overhead, {ray_name} vs {local_name}: command {rw - lw:+.1f} s, start-up {rs - ls:+.1f} s, "
                  f"videos {ri - li:+.1f} s ({(ri / li - 1) * 100:+.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

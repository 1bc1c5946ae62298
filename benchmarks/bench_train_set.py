"""TrainSet throughput on real DAVIS 2016 frames: samples/s in one process and with DataLoader workers.

    python benchmarks/bench_train_set.py [--davis2016 ROOT] [--size 512] [--samples 200] [--workers 2]

Prints the per-stage cost of one sample (read, augment, heat map, to tensor) measured in
this process (CPU time), then wall-clock samples/s for 1 process (single-threaded, as inside a DataLoader worker)
and for a DataLoader with ``--workers`` workers (worker start-up excluded), with the workers'
CPU time per sample (what the figure would be on otherwise idle cores).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from ssmvos.data import augment as A  # noqa: E402
from ssmvos.data.index import index_davis2016  # noqa: E402
from ssmvos.data.geometry import crop, mask_box, resize_image, resize_mask  # noqa: E402
from ssmvos.data.io import object_mask, read_frame, read_mask  # noqa: E402
from ssmvos.data.tensors import image_to_tensor, mask_to_tensor  # noqa: E402
from ssmvos.data.train_set import TrainSet, worker_init_fn  # noqa: E402


def stage_costs(ds: TrainSet, indices: list[int]) -> dict[str, float]:
    """CPU milliseconds per sample spent in each stage (same work as TrainSet.__getitem__).

    CPU time of this process, so other load on the machine does not inflate it.
    """
    cost = dict.fromkeys(["read", "augment", "heat map", "to tensor"], 0.0)
    for index in indices:
        rng = ds.rng(index)
        e = ds.entries[index]
        t0 = time.process_time()
        start = index - e["frame_index"]
        ref_index = int(rng.integers(start, start + e["num_frames"]))
        cur = read_frame(e["image_path"])
        cur_m = object_mask(read_mask(e["mask_path"]), e["object_index"])
        r = ds.entries[ref_index]
        ref = read_frame(r["image_path"])
        ref_m = object_mask(read_mask(r["mask_path"]), r["object_index"])
        p = ds.entries[index - 1 if e["frame_index"] else index]
        prev_m = object_mask(read_mask(p["mask_path"]), p["object_index"])
        t1 = time.process_time()
        draw = (ds.flip_rate, ds.rotation, ds.min_margin, ds.max_margin)
        a = A.apply_params(ref, ref_m, None, A.draw_params(rng, *draw), ds.height, ds.width)
        b = A.apply_params(cur, cur_m, prev_m, A.draw_params(rng, *draw), ds.height, ds.width)
        t2 = time.process_time()
        rng.random()
        heat = A.heatmap(rng, b.bounding_mask)
        t3 = time.process_time()
        image_to_tensor(a.image), image_to_tensor(b.image)
        mask_to_tensor(a.mask), mask_to_tensor(b.mask), mask_to_tensor(heat)
        t4 = time.process_time()
        for key, dt in zip(cost, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            cost[key] += dt * 1000 / len(indices)
    return cost


def whole_frame_apply(image, mask, bounding, params, height, width):
    """The original's way: rotate whole frames, then crop (the reference for the speed-up)."""
    if params.flip:
        image, mask, bounding = A.hflip(image), A.hflip(mask), A.hflip(bounding)
    image = A.rotate_bound(image, params.angle)
    mask, bounding = A.rotate_mask(mask, params.angle), A.rotate_mask(bounding, params.angle)
    box = mask_box(bounding, params.margins)
    return (resize_image(crop(image, box), height, width), resize_mask(crop(mask, box), height, width),
            resize_mask(crop(bounding, box), height, width))


def meshgrid_heatmap(mask, centre, std):
    """The original's full-grid float64 Gaussian (the reference for the separable map)."""
    ny, nx = np.meshgrid(np.arange(mask.shape[0]), np.arange(mask.shape[1]), indexing="ij")
    coords = np.stack([nx, ny], axis=2)
    return np.clip(np.exp(-np.sum((coords - centre) ** 2 * (0.5 / std ** 2), axis=2)), 0, 1)


def compare_paths(ds: TrainSet, indices: list[int]) -> None:
    """CPU time of this module's fast paths against the straightforward ones, same inputs."""
    fast = slow = heat_fast = heat_slow = 0.0
    for index in indices:
        e = ds.entries[index]
        image = read_frame(e["image_path"])
        mask = object_mask(read_mask(e["mask_path"]), e["object_index"])
        params = A.draw_params(ds.rng(index), ds.flip_rate, ds.rotation, ds.min_margin, ds.max_margin)
        t0 = time.process_time()
        out = A.apply_params(image, mask, mask, params, ds.height, ds.width)
        t1 = time.process_time()
        whole_frame_apply(image, mask, mask, params, ds.height, ds.width)
        moments = A.robust_moments(out.mask)
        if moments is None:
            continue
        t2 = time.process_time()
        A.gaussian_map(out.mask.shape, *moments)
        t3 = time.process_time()
        meshgrid_heatmap(out.mask, *moments)
        t4 = time.process_time()
        fast, slow, heat_fast, heat_slow = fast + t1 - t0, slow + t2 - t1, heat_fast + t3 - t2, heat_slow + t4 - t3
    n = len(indices)
    print(f"augment one frame: crop-aware warp {fast / n * 1000:.1f} ms vs whole-frame warp {slow / n * 1000:.1f} ms "
          f"({slow / fast:.1f}x); Gaussian map: separable {heat_fast / n * 1000:.2f} ms vs meshgrid "
          f"{heat_slow / n * 1000:.2f} ms ({heat_slow / heat_fast:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis2016", type=Path, default=ROOT.parent / "shared" / "data" / "DAVIS2016")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    entries = index_davis2016(args.davis2016, "val")
    ds = TrainSet(entries, height=args.size, width=args.size)
    rng = np.random.default_rng(0)
    indices = [int(i) for i in rng.permutation(len(ds))[:args.samples]]
    print(f"{len(entries)} DAVIS 2016 entries, {args.size}x{args.size}, {os.cpu_count()} CPU cores, "
          f"{args.samples} random samples")

    torch.set_num_threads(1)  # as inside a DataLoader worker
    cv2.setNumThreads(0)
    ds[indices[0]]  # warm up
    costs = stage_costs(ds, indices[: max(20, args.samples // 4)])
    total = sum(costs.values())
    print("CPU per sample: " + ", ".join(f"{k} {v:.1f} ms" for k, v in costs.items())
          + f" (total {total:.1f} ms = {1000 / total:.0f} samples/s per busy core)")
    print(f"load average before timing: {os.getloadavg()[0]:.2f} (other processes slow the wall-clock figures)")

    compare_paths(ds, indices[:40])

    t0 = time.perf_counter()
    for i in indices:
        ds[i]
    single = len(indices) / (time.perf_counter() - t0)
    print(f"1 process:            {single:6.1f} samples/s")

    if args.workers > 0:
        loader = DataLoader(_Timed(ds), batch_size=args.batch_size, num_workers=args.workers, sampler=indices,
                            worker_init_fn=worker_init_fn)
        it = iter(loader)
        next(it)  # worker start-up and first batch excluded
        n, cpu, t0 = 0, [], time.perf_counter()
        for batch in it:
            n += batch[0].shape[0]
            cpu.append(batch[-1])
        multi = n / (time.perf_counter() - t0)
        per_item = float(torch.cat(cpu).mean()) * 1000
        print(f"DataLoader, {args.workers} workers: {multi:6.1f} samples/s (batch {args.batch_size}; "
              f"load average {os.getloadavg()[0]:.2f})")
        print(f"  workers' CPU per sample {per_item:.1f} ms: with {args.workers} free cores "
              f"~{args.workers * 1000 / per_item:.0f} samples/s")


class _Timed(torch.utils.data.Dataset):
    """A TrainSet whose items also carry the worker's CPU seconds spent on them."""

    def __init__(self, ds: TrainSet) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int):
        t0 = time.process_time()
        item = self.ds[index]
        return (*item, torch.tensor(time.process_time() - t0, dtype=torch.float64))

if __name__ == "__main__":
    main()

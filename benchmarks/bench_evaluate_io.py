"""evaluate end to end (frames decoded, segmented, merged, every PNG written): frames/s with
PNGs encoded by threads or by processes (``--png-pool``), and with merging and soft-mask
quantisation where the network runs (device geometry: only uint8 maps reach the host) or on
the host (host geometry: float maps, merged with numpy).

    python benchmarks/bench_evaluate_io.py [--video blackswan] [--frames 40] [--objects 2]
        [--network stub|reference] [--size 224] [--workers 2] [--rounds 2]

``--network stub`` (default) replaces the network by a cheap stand-in (tests/stub_network.py),
so that the figures are the host side's ceiling: decoding, geometry, merging and PNG
encoding of full-resolution DAVIS frames (854×480). ``--network reference`` runs the real
network (deterministic reference weights) at ``--size``. Each configuration runs ``--rounds``
times in turn and the best round counts (the machine is shared). The writer processes are
started once per process (by the warm-up here); starting them costs about 0.6 s, or seconds
when the main module imports torch (forkserver imports it once per pool start).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import DAVIS16, REFERENCE, davis_entries, fill_reference_weights  # noqa: E402
from ssmvos import SSM  # noqa: E402
from ssmvos.inference.engine import Engine  # noqa: E402
from ssmvos.inference.evaluate import evaluate_split  # noqa: E402
from stub_network import StubRunner  # noqa: E402


def entries_for(video: str, frames: int, objects: int) -> list[dict]:
    """Split entries of a DAVIS 2016 video (one object) or of the two-object libby variant."""
    if objects == 1:
        return davis_entries(video, DAVIS16 / "Annotations" / "480p", [255], frames=frames)
    return davis_entries("libby", REFERENCE / "davis_two_object" / "Annotations" / "480p", [1, 2], frames=frames)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default="blackswan", help="DAVIS 2016 video for one object (default blackswan)")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--objects", type=int, choices=[1, 2], default=1, help="2: the two-object libby variant")
    ap.add_argument("--network", choices=["stub", "reference"], default="stub")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=2, help="PNG writers (threads or processes)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not DAVIS16.is_dir():
        print(f"needs DAVIS 2016 under {DAVIS16}", file=sys.stderr)
        return 2
    entries = entries_for(args.video, args.frames, args.objects)
    model = None
    if args.network == "reference":
        model = SSM().eval()
        fill_reference_weights(model)

    def engine(device_merge: bool) -> Engine:
        if model is None:
            return Engine(StubRunner(), (args.size, args.size), device_geometry=device_merge)
        return Engine.for_model(model, (args.size, args.size), device_geometry=device_merge)

    configs = [(merge, pool) for merge in (True, False) for pool in ("threads", "processes")]
    engines = {merge: engine(merge) for merge in (True, False)}
    best: dict[tuple[bool, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-io-") as tmp:
        for merge, pool in configs:  # warm-up: first calls and the writer processes' start out of the figures
            evaluate_split(entries[:3], engines[merge], Path(tmp) / "warm", Path(tmp) / "warm-m", progress=False,
                           io_workers=args.workers, png_pool=pool)
        for r in range(args.rounds):
            for merge, pool in configs:
                out = Path(tmp) / f"r{r}-{merge}-{pool}"
                t = time.perf_counter()
                stats = evaluate_split(entries, engines[merge], out / "per", out / "merged", progress=False,
                                       io_workers=args.workers, png_pool=pool)
                fps = stats.frames / (time.perf_counter() - t)  # the pool's start and shutdown included
                best[merge, pool] = max(best.get((merge, pool), 0.0), fps)
    h, w = 480, 854
    print(f"evaluate end to end: {len(entries) // args.objects} frames of {w}x{h}, {args.objects} object(s), "
          f"network {args.network} at {args.size}, {args.workers} PNG writers, torch threads "
          f"{torch.get_num_threads()}, best of {args.rounds}")
    print(f"{'merge and quantisation':<24} {'PNG pool':<10} {'frames/s':>9}")
    for merge, pool in configs:
        print(f"{'on the device' if merge else 'on the host':<24} {pool:<10} {best[merge, pool]:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

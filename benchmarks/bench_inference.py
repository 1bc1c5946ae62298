"""Inference speed on this machine: per object-frame time of every backend × precision,
per-stage times, GFLOP/s, and the ratios to the plain fp32 forward and to measured peaks —
all measured in one run.

    python benchmarks/bench_inference.py [--size 512] [--frames 8] [--device cpu]
        [--backends torch,compile,onnxruntime] [--precisions fp32,bf16] [--rounds 3]

The network runs with deterministic reference weights (the speed does not depend on the
values) on real DAVIS 2016 frames (../shared/data, or the bundled demo clip). Compiling
(compile) and exporting (onnxruntime, into a temporary cache) happen before the timing and
are reported apart. The machine is shared: every figure (the engine over the clip, the
network alone, the plain forward, the peaks) is measured once per round, the rounds visit
every backend × precision in turn, and the best of each is used.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import fill_reference_weights  # noqa: E402
from ssmvos import SSM  # noqa: E402
from ssmvos.data import geometry  # noqa: E402
from ssmvos.data.io import list_frames, object_mask, read_frame, read_mask, write_gray_png  # noqa: E402
from ssmvos.data.tensors import image_to_tensor, mask_to_tensor  # noqa: E402
from ssmvos.inference.engine import Engine, VideoState  # noqa: E402
from ssmvos.io.frames import FrameFiles  # noqa: E402
from ssmvos.options import BACKENDS  # noqa: E402
from ssmvos.runtime import RuntimeSpec, autocast  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peaks(device: torch.device) -> dict[str, float]:
    """GFLOP/s of channels-last 3×3 convs (the decoder's main op, at two sizes; the better
    one counts) and of 2048² matmuls, in fp32 and bf16."""
    out = {"fp32 conv": 0.0, "bf16 conv": 0.0}
    with torch.inference_mode():
        for channels, side in ((256, 128), (512, 64)):
            x = torch.randn(1, channels, side, side, device=device).contiguous(memory_format=torch.channels_last)
            conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, memory_format=torch.channels_last)
            flops = 2 * channels * channels * 9 * side * side
            out["fp32 conv"] = max(out["fp32 conv"], flops / timed(lambda: conv(x), device, 5) / 1e9)
            with autocast(device, "bf16"):
                out["bf16 conv"] = max(out["bf16 conv"], flops / timed(lambda: conv(x), device, 5) / 1e9)
        a = torch.randn(2048, 2048, device=device, dtype=torch.bfloat16)
        out["bf16 matmul"] = 2 * 2048**3 / timed(lambda: a @ a, device, 5) / 1e9
        a = a.float()
        out["fp32 matmul"] = 2 * 2048**3 / timed(lambda: a @ a, device, 5) / 1e9
    return out


def clip(frames: int) -> tuple[list[Path], np.ndarray]:
    davis = ROOT.parent / "shared" / "data" / "DAVIS2016"
    if (davis / "JPEGImages" / "480p" / "blackswan").is_dir():
        paths = sorted((davis / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:frames]
        mask = read_mask(davis / "Annotations" / "480p" / "blackswan" / "00000.png")
    else:
        demo = ROOT / "src" / "ssmvos" / "assets" / "demo"
        paths, mask = list_frames(demo / "frames")[:frames], read_mask(demo / "mask.png")
    return paths, object_mask(mask, 255)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=8, help="frames of the clip run through the engine")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all configurations (best of each)")
    args = ap.parse_args()
    device = torch.device(args.device)
    size = (args.size, args.size)
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}, input {args.size}×{args.size}")

    # This machine is shared: peaks and the plain forward are measured in every round next to
    # the configurations, and the best of each is used, so a load change cannot flatter the ratios.
    pk = peaks(device)

    model = SSM().eval()
    fill_reference_weights(model)
    model.to(device)
    paths, mask0 = clip(args.frames)
    img0, img1 = read_frame(paths[0]), read_frame(paths[1])
    box = geometry.mask_box(mask0, 0.5)
    ri, rm = geometry.crop_resize(img0, mask0, box, *size)
    ci, pm = geometry.crop_resize(img1, mask0, box, *size)
    ref_img, ref_mask = image_to_tensor(ri)[None].to(device), mask_to_tensor(rm)[None].to(device)
    cur_img, prev_mask = image_to_tensor(ci)[None].to(device), mask_to_tensor(pm)[None].to(device)

    with torch.inference_mode():
        with FlopCounterMode(display=False) as fc:
            model(ref_img, ref_mask, cur_img, prev_mask)
        full_flops = fc.get_total_flops()
        ref = model.encode_reference(ref_img, ref_mask)
        with FlopCounterMode(display=False) as fc:
            model.segment(ref, cur_img, prev_mask)
        cached_flops = fc.get_total_flops()
        plain = timed(lambda: model(ref_img, ref_mask, cur_img, prev_mask), device, args.repeat)
    print(f"network: {full_flops / 1e9:.0f} GFLOP per object-frame, {cached_flops / 1e9:.0f} with the reference cached")

    configs = [(b, p) for b in args.backends.split(",") for p in args.precisions.split(",")]
    unknown = [b for b, _ in configs if b not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown backend(s) {unknown}; choose from {BACKENDS}")
    home = tempfile.TemporaryDirectory(prefix="ssmvos-bench-")  # the onnxruntime export goes here
    os.environ["SSMVOS_HOME"] = home.name
    img_u8, mask_u8 = torch.from_numpy(ci[None].copy()), torch.from_numpy(pm[None].astype(np.uint8))
    ref_u8, refm_u8 = torch.from_numpy(ri[None].copy()), torch.from_numpy(rm[None].astype(np.uint8))
    engines, setup = {}, {}
    for backend, precision in configs:
        if backend == "onnxruntime" and precision in ("bf16", "fp16"):
            print(f"[{backend} {precision}] skipped: the onnxruntime backend runs fp32 only")
            continue
        t = time.perf_counter()
        engine = Engine.for_model(copy.deepcopy(model), size, RuntimeSpec(backend, device, precision))  # own weights: the plain
        # forward below keeps the original NCHW layout
        runner = engine.runner
        reference = runner.encode_reference(ref_u8, refm_u8)
        runner.segment(reference, img_u8, mask_u8)  # compiles (compile) / first run
        sync(device)
        setup[backend, precision] = time.perf_counter() - t
        engines[backend, precision] = (engine, reference)

    # every configuration, the plain forward and the peaks once per round; best of each
    network = {key: float("inf") for key in engines}
    clip_time = {key: (float("inf"), 0) for key in engines}
    for _ in range(args.rounds):
        pk = {k: max(v, w) for (k, v), w in zip(pk.items(), peaks(device).values())}
        with torch.inference_mode():
            plain = min(plain, timed(lambda: model(ref_img, ref_mask, cur_img, prev_mask), device, args.repeat))
        for key, (engine, reference) in engines.items():
            with torch.inference_mode():
                network[key] = min(network[key], timed(lambda: engine.runner.segment(reference, img_u8, mask_u8),
                                                       device, args.repeat))
            clip_time[key] = min(clip_time[key], _run_clip(engine, paths, img0, mask0))

    reports = []
    for (backend, precision), (engine, _) in engines.items():
        stages = _stages(engine, model, precision, paths, img1, mask0, box, size, ci, ref_img, ref_mask, cur_img,
                         prev_mask, device, args.repeat) if backend == "torch" else {}
        reports.append((backend, precision, *clip_time[backend, precision], stages))

    print(f"measured peaks (best of {args.rounds} rounds): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in pk.items()))
    print(f"plain fp32 forward (original style: NCHW, reference re-encoded; best of {args.rounds} rounds): "
          f"{plain:.3f} s "
          f"= {full_flops / plain / 1e9:.0f} GFLOP/s")
    print(f"\n{'backend':<12} {'precision':<9} {'engine s/obj-frame':>18} {'vs plain':>9} {'network alone s':>16} "
          f"{'vs plain':>9} {'% of conv peak':>15} {'setup s':>8}")
    for backend, precision, per_frame, n, stages in reports:
        net = network[backend, precision]
        peak = pk["bf16 conv"] if precision in ("bf16", "fp16") else pk["fp32 conv"]
        print(f"{backend:<12} {precision:<9} {per_frame:>18.3f} {plain / per_frame:>8.2f}x {net:>16.3f} "
              f"{plain / net:>8.2f}x {cached_flops / net / 1e9 / peak:>14.0%} {setup[backend, precision]:>8.1f}")
    print(f"(engine: over {reports[0][3] if reports else 0} frames incl. reference encoding and I/O; network "
          f"alone: runner.segment on one crop; both best of {args.rounds} rounds; setup: building the runner, "
          "exporting or compiling, first call)")
    for backend, precision, per_frame, n, stages in reports:
        if stages:
            print(f"\n[{backend} {precision}] stages: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items()))
    home.cleanup()


def _run_clip(engine: Engine, paths: list[Path], img0: np.ndarray, mask0: np.ndarray) -> tuple[float, int]:
    """The whole engine over the clip (decoding prefetched, PNGs written): (seconds per
    object-frame, frames). Frame 0 is the annotation (reference encoding only)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = VideoState(FrameFiles(paths), *img0.shape[:2])
        engine.add_object(state, 0, 1, mask0)
        t = time.perf_counter()
        n = 0
        for result in engine.propagate(state):
            write_gray_png(Path(tmp) / f"{result.frame_index}.png", result.soft[0])
            n += 1
        return (time.perf_counter() - t) / max(n - 1, 1), n


def _stages(engine, model, precision, paths, img1, mask0, box, size, ci, ref_img, ref_mask, cur_img, prev_mask,
            device, repeat) -> dict[str, float]:
    """Per-stage times of the torch backend (encoder, matching, decoder, I/O around them)."""
    runner = engine.runner  # the torch backend's runner: its model and memory layout
    m, layout = runner.model, runner.memory_format
    cur_cl = cur_img.contiguous(memory_format=layout)
    with torch.inference_mode(), autocast(device, precision):
        ref = m.encode_reference(ref_img.contiguous(memory_format=layout), ref_mask)
        feats = m.encode_current(cur_cl, prev_mask)
        pixel_map, _ = m.match(ref, feats[1])
        stages = {
            "decode frame": timed(lambda: read_frame(paths[1]), device, repeat),
            "crop+resize": timed(lambda: (geometry.crop_resize(img1, mask0, box, *size), image_to_tensor(ci)),
                                 device, repeat),
            "encoder": timed(lambda: m.encode_current(cur_cl, prev_mask), device, repeat),
            "matching": timed(lambda: m.match(ref, feats[1]), device, repeat),
            "decoder": timed(lambda: m.decode(ref, feats, pixel_map), device, repeat),
        }
        logits = torch.nn.functional.interpolate(m.decode(ref, feats, pixel_map).float(), size, mode="bilinear")
    probs = torch.softmax(logits, 1)
    stages["paste-back"] = timed(lambda: geometry.paste_back(probs, box, *img1.shape[:2]).cpu(), device, repeat)
    soft = (probs[0, 1].cpu().numpy() * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        stages["PNG write"] = timed(lambda: write_gray_png(Path(tmp) / "x.png", soft), device, repeat)
    return stages


if __name__ == "__main__":
    main()

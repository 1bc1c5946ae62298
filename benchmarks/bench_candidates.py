"""Candidates for a faster faithful fp32 path on the CPU, measured in one run: the network's
per-frame step (one object, reference cached) through each, against the plain fp32 forward.

    python benchmarks/bench_candidates.py [--size 512] [--rounds 3]

Candidates: eager PyTorch channels-last (the torch backend) and NCHW; torch.compile with and
without inductor's weight freezing; ONNX Runtime with all graph optimisations (NCHWc
layout), with extended ones only, without thread spinning, and on one thread. Each one's
logits are compared with the torch backend's (relative error). Last, the matrix products a
Winograd F(2×2,3×3) / F(4×4,3×3) convolution would need for a stride-4 decoder convolution
(256 channels, 128×128 at 512) against the direct convolution: a lower bound on its time.
The rounds visit every candidate in turn (the machine is shared); best of each.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_inference import clip  # noqa: E402
from conftest import fill_reference_weights, relative_error  # noqa: E402
from ssmvos import SSM  # noqa: E402
from ssmvos.data import geometry  # noqa: E402
from ssmvos.data.io import read_frame  # noqa: E402
from ssmvos.data.tensors import image_to_tensor, mask_to_tensor  # noqa: E402
from ssmvos.runtime import NetworkRunner, make_runner  # noqa: E402


def best(fn, repeat: int = 2) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def onnxruntime_variant(model: SSM, size: tuple[int, int], level: str, threads: int, spinning: bool):
    """The onnxruntime backend's runner with other session options."""
    import onnxruntime as ort

    from ssmvos.export.onnx import open_session

    runner = make_runner(copy.deepcopy(model), "onnxruntime", input_size=size)
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    runner.sessions = {role: open_session(runner.export.folder / f"{role}.onnx", runner.export, options)
                       for role in runner.sessions}
    return runner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = (args.size, args.size)
    home = tempfile.TemporaryDirectory(prefix="ssmvos-candidates-")  # the onnxruntime export goes here
    os.environ["SSMVOS_HOME"] = home.name
    print(f"cpu, threads {torch.get_num_threads()}, torch {torch.__version__}, input {args.size}x{args.size}")

    paths, mask0 = clip(2)
    box = geometry.mask_box(mask0, 0.5)
    ri, rm = geometry.crop_resize(read_frame(paths[0]), mask0, box, *size)
    ci, pm = geometry.crop_resize(read_frame(paths[1]), mask0, box, *size)
    u8 = [torch.from_numpy(np.ascontiguousarray(a)[None]) for a in (ri, rm.astype(np.uint8), ci, pm.astype(np.uint8))]
    plain_inputs = [image_to_tensor(ri)[None], mask_to_tensor(rm)[None], image_to_tensor(ci)[None],
                    mask_to_tensor(pm)[None]]
    model = SSM().eval()
    fill_reference_weights(model)

    candidates: dict[str, object] = {}
    setup: dict[str, float] = {}

    def add(name: str, build) -> None:
        t = time.perf_counter()
        runner = build()
        reference = runner.encode_reference(u8[0], u8[1])
        logits = runner.segment(reference, u8[2], u8[3])
        setup[name] = time.perf_counter() - t
        candidates[name] = (runner, reference, logits)

    def frozen() -> NetworkRunner:
        runner = NetworkRunner(copy.deepcopy(model), compile=True)
        runner._step = torch.compile(runner._segment_step, dynamic=False, options={"freezing": True})
        return runner

    add("torch, channels-last (torch backend)", lambda: NetworkRunner(copy.deepcopy(model)))
    add("torch, NCHW", lambda: NetworkRunner(copy.deepcopy(model), channels_last=False))
    add("torch.compile (compile backend)", lambda: NetworkRunner(copy.deepcopy(model), compile=True))
    add("torch.compile + weight freezing", frozen)
    add("onnxruntime, all optimisations (backend)", lambda: make_runner(copy.deepcopy(model), "onnxruntime",
                                                                          input_size=size))
    add("onnxruntime, no thread spinning", lambda: onnxruntime_variant(model, size, "ORT_ENABLE_ALL", 2, False))
    add("onnxruntime, extended optimisations", lambda: onnxruntime_variant(model, size, "ORT_ENABLE_EXTENDED", 2,
                                                                           True))
    add("onnxruntime, 1 thread", lambda: onnxruntime_variant(model, size, "ORT_ENABLE_ALL", 1, True))

    side = args.size // 4
    tiles2, tiles4 = ((side + 1) // 2) ** 2, ((side + 3) // 4) ** 2
    x = torch.randn(1, 256, side, side).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(memory_format=torch.channels_last)
    gemms = {"F(2x2,3x3)": (torch.randn(16, tiles2, 256), torch.randn(16, 256, 256)),
             "F(4x4,3x3)": (torch.randn(36, tiles4, 256), torch.randn(36, 256, 256))}

    times = {name: float("inf") for name in ["plain fp32 forward", *candidates, "direct 3x3 conv", *gemms]}
    with torch.inference_mode():
        for _ in range(args.rounds):
            times["plain fp32 forward"] = min(times["plain fp32 forward"], best(lambda: model(*plain_inputs)))
            for name, (runner, reference, _) in candidates.items():
                times[name] = min(times[name], best(lambda: runner.segment(reference, u8[2], u8[3])))
            times["direct 3x3 conv"] = min(times["direct 3x3 conv"], best(lambda: conv(x), 5))
            for name, (v, w) in gemms.items():
                times[name] = min(times[name], best(lambda: torch.bmm(v, w), 5))

    base = candidates["torch, channels-last (torch backend)"][2]
    plain = times["plain fp32 forward"]
    print(f"\nplain fp32 forward (original style, reference re-encoded): {plain:.3f} s; best of {args.rounds} rounds")
    print(f"{'candidate (segment step, one object)':<42} {'s':>7} {'vs plain':>9} {'rel. error':>11} {'setup s':>8}")
    for name, (_, _, logits) in candidates.items():
        print(f"{name:<42} {times[name]:>7.3f} {plain / times[name]:>8.2f}x {relative_error(logits, base):>11.1e} "
              f"{setup[name]:>8.1f}")
    direct = times["direct 3x3 conv"]
    print(f"\nstride-4 decoder conv (256->256, 3x3, {side}x{side}): direct {direct * 1000:.1f} ms; "
          + ", ".join(f"Winograd {name} matrix products alone {times[name] * 1000:.1f} ms ({times[name] / direct:.2f}x)"
                      for name in gemms))
    home.cleanup()


if __name__ == "__main__":
    main()

"""Training throughput on this machine's CPU: the original loop vs. the ssmvos trainer.

(a) a re-statement of the original train.py's per-step work: plain model in fp32, a
    DataLoader with num_workers=0 (single-threaded data loading, shuffle=True), Adam,
    pixel-flattened cross-entropy, ``loss.item()``, the IoU computed in numpy on the CPU,
    two TensorBoard scalars, StepLR stepped every iteration;
(b) ``ssmvos.training.train`` with the trainer's fast settings: bf16 autocast,
    channels-last tensors, fused Adam, DataLoader workers (default 16, capped at the CPUs).

Both train the same network (random init, DAVIS 2016 frames through the same TrainSet
augmentations) at the same size and batch; the speed-up is measured in one run. Per-step
times are wall-clock from the end of one step to the end of the next (data loading included),
after warm-up steps.

    python benchmarks/bench_train.py                # 512x512, batch 2, 2 warm-up + 5 timed steps
    python benchmarks/bench_train.py --rounds 2     # A B A B, steadier on a busy machine
    python benchmarks/bench_train.py --threads 0    # torch's default thread count
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import Adam
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ssmvos import SSM  # noqa: E402
from ssmvos.data.index import index_davis2016  # noqa: E402
from ssmvos.data.splits import write_split  # noqa: E402
from ssmvos.data.train_set import TrainSet  # noqa: E402
from ssmvos.training import TrainConfig, train  # noqa: E402

DAVIS16 = ROOT.parent / "shared" / "data" / "DAVIS2016"


def original_loop(split: Path, size: int, batch: int, steps: int, seed: int, board: Path,
                  device: str = "cpu") -> list[float]:
    """The original's loop, restated (no DataParallel: one process, one device; IEEE fp32, no
    TF32). Returns step end times."""
    from torch.utils.tensorboard import SummaryWriter

    from ssmvos.data.splits import load_split
    from ssmvos.runtime import matmul_scope

    torch.manual_seed(seed)
    np.random.seed(seed)
    model = SSM(encoder="resnet50", matching="conv", keep_topk=32).to(device)
    model.train()
    # the per-parameter Adam of the PyTorch the original was written for
    optimizer = Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=5e-4, foreach=False)
    scheduler = StepLR(optimizer, step_size=9501, gamma=0.9)
    criterion = nn.CrossEntropyLoss()
    dataset = TrainSet(load_split(split), size, size, seed=seed)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0)
    ends: list[float] = []
    with SummaryWriter(str(board)) as writer, matmul_scope("fp32"):
        for step, batch_tensors in enumerate(loader):
            ref_img, ref_mask, cur_img, cur_mask, prev_mask = (t.to(device) for t in batch_tensors)
            pred, struct = model(ref_img, ref_mask, cur_img, prev_mask)
            pred = pred.permute(0, 2, 3, 1).contiguous().view(-1, 2)
            struct = struct.permute(0, 2, 3, 1).contiguous().view(-1, 2)
            target = cur_mask.view(-1).long()
            loss = criterion(pred, target) + 0.1 * criterion(struct, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = loss.item()
            gt = target.cpu().numpy().astype(bool)
            fg = torch.argmax(pred, dim=1).cpu().numpy().astype(bool)
            union = np.sum(gt | fg)
            iou = float(np.sum(gt & fg) / union) if union else 1.0
            writer.add_scalar("train/loss", value, global_step=step)
            writer.add_scalar("train/iou", iou, global_step=step)
            scheduler.step()
            ends.append(time.perf_counter())
            if len(ends) == steps:
                break
    return ends


def ssmvos_trainer(split: Path, size: int, batch: int, steps: int, seed: int, model_dir: Path,
                   precision: str) -> tuple[list[float], int]:
    """The ssmvos trainer (single process). Returns step end times and its loader workers."""
    config = TrainConfig(model_dir=str(model_dir), split=str(split), batch_size=batch, input_height=size,
                         input_width=size, seed=seed, pretrained=False, device="cpu", precision=precision,
                         max_steps=steps, save_step=10**9, log_step=10**9)
    import logging

    logging.getLogger("ssmvos.train").disabled = True
    try:
        summary = train(config)
    finally:
        logging.getLogger("ssmvos.train").disabled = False
    from ssmvos.training.trainer import capped_workers

    return summary.step_ends, capped_workers(config.num_workers, 1)


def step_seconds(ends: list[float], warmup: int) -> list[float]:
    return [b - a for a, b in zip(ends[warmup - 1:], ends[warmup:])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="input height and width (default 512)")
    parser.add_argument("--batch", type=int, default=2, help="batch size (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2, at least 1)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the (a) (b) pair, interleaved (default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both variants (default 1; 0 = torch's choice). On a shared "
                        "2-core machine multi-threaded steps stall on other processes and swing several-fold")
    parser.add_argument("--also-fp32", action="store_true", help="also time the trainer in fp32 (no autocast)")
    args = parser.parse_args()
    if not DAVIS16.is_dir():
        print(f"needs the DAVIS 2016 frames at {DAVIS16}", file=sys.stderr)
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = max(1, args.warmup)
    total = warmup + args.steps

    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"input {args.size}x{args.size}, batch {args.batch}, {warmup} warm-up + {args.steps} timed steps, "
          f"resnet50/conv/keep_topk 32, DAVIS 2016 val frames")
    variants = [("a", "original loop (fp32, num_workers=0, plain model)")]
    variants.append(("b", "ssmvos trainer (bf16 autocast, channels-last, fused Adam, loader workers)"))
    if args.also_fp32:
        variants.append(("c", "ssmvos trainer in fp32 (channels-last, fused Adam, loader workers)"))
    times: dict[str, list[float]] = {k: [] for k, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        split = tmp / "davis2016_val.json"
        write_split(split, index_davis2016(DAVIS16, "val"))
        for r in range(args.rounds):
            for key, label in variants:
                out = tmp / f"{key}{r}"
                if key == "a":
                    ends = original_loop(split, args.size, args.batch, total, 123 + r, out)
                    extra = ""
                else:
                    ends, workers = ssmvos_trainer(split, args.size, args.batch, total, 123 + r, out,
                                                   "bf16" if key == "b" else "fp32")
                    extra = f", {workers} loader workers"
                secs = step_seconds(ends, warmup)
                times[key] += secs
                print(f"({key}) {label}, round {r + 1}: per-step s " + " ".join(f"{s:.2f}" for s in secs) + extra,
                      flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    rate = {k: args.batch / statistics.mean(v) for k, v in times.items()}
    for key, label in variants:
        print(f"({key}) {statistics.mean(times[key]):6.2f} s/step  {rate[key]:.3f} samples/s  {label}")
    print(f"speed-up (b)/(a): {rate['b'] / rate['a']:.2f}x")
    if "c" in rate:
        print(f"speed-up (c)/(a): {rate['c'] / rate['a']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

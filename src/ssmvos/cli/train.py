"""``ssmvos train``: the original train.py flags; under torchrun it trains with DDP."""
from __future__ import annotations

import argparse
from dataclasses import fields


def add_parser(subparsers) -> None:
    from ..options import DEVICE_HELP, DEVICES, PRECISIONS

    p = subparsers.add_parser(
        "train", help="train SSM-VOS (DDP under torchrun)",
        description="Train the SSM network on a split file, as the original train.py. Writes "
        "<model-dir>/args.json, logs/train.log, board/ (TensorBoard) and checkpoints/<step>.pt. "
        "Multi-GPU / multi-node: python -m torch.distributed.run --nproc_per_node=N -m ssmvos train ...")
    a = p.add_argument
    a("--model-dir", required=True, help="run folder (created if missing)")
    a("--split", required=True, help="training split file (JSON frame entries, see `ssmvos index`)")
    # training
    a("--batch-size", type=int, default=16, help="GLOBAL batch size, split evenly over the processes (default 16)")
    a("--max-epoch", type=int, default=20)
    a("--max-steps", type=int, default=None,
      help="stop once this many global steps are done (counting those before a resume)")
    a("--num-workers", type=int, default=16, help="DataLoader workers per process, capped at its CPUs (default 16)")
    a("--resume", default=None, metavar="CKPT", help="start from this checkpoint's weights (strict)")
    a("--resume-step", action="store_true",
      help="with --resume: continue that run exactly (step, optimizer, LR schedule, RNG, epoch position)")
    a("--seed", type=int, default=123)
    a("--encoder", choices=["resnet50", "resnet101"], default="resnet50")
    a("--log-step", type=int, default=10)
    a("--save-step", type=int, default=4750, help="save checkpoints/<step>.pt when (step + 1) %% save_step == 0")
    a("--matching", choices=["conv", "cosine"], default="conv")
    a("--keep-topk", type=int, default=32)
    a("--input-height", type=int, default=512)
    a("--input-width", type=int, default=512)
    # optimizer
    a("--base-lr", type=float, default=1e-5)
    a("--encoder-lr-weight", type=float, default=1.0, help="encoder lr = base lr x this (default 1.0)")
    a("--lr-decay-step", type=int, default=9501, help="StepLR step size in iterations (default 9501)")
    a("--lr-decay-rate", type=float, default=0.9)
    a("--weight-decay", type=float, default=5e-4)
    # augmentation
    a("--flip-rate", type=float, default=0.5)
    a("--blur-rate", type=float, default=1.0)
    a("--rotation", type=float, default=45.0)
    a("--min-margin", type=float, default=0.0)
    a("--max-margin", type=float, default=1.0)
    # ours
    a("--device", choices=DEVICES, default="auto", help=DEVICE_HELP)
    a("--precision", choices=PRECISIONS, default="fp32",
      help="fp32 (IEEE float32 as the original, default), tf32 (TF32 matrix units on NVIDIA GPUs), or autocast: "
      "bf16 (about 3.5x faster on CPUs with AVX-512 BF16/AMX, see benchmarks/README.md) or fp16 with a gradient "
      "scaler (for GPUs; slow on CPUs)")
    a("--no-pretrained", dest="pretrained", action="store_false",
      help="start from random weights instead of the ImageNet-initialised encoder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})
    train(config)
    return 0

"""``ssmvos train``: the original train.py flags; under torchrun it trains with DDP."""
from __future__ import annotations

import argparse
from dataclasses import fields


def add_parser(subparsers) -> None:
    from ..options import DEVICE_HELP, DEVICES, PRECISIONS
    from .types import add_input_size_flags, float_range, int_range

    p = subparsers.add_parser(
        "train", help="train SSM-VOS (DDP under torchrun)",
        description="Train the SSM network on a split file, as the original train.py. Writes "
        "<model-dir>/args.json, logs/train.log, board/ (TensorBoard) and checkpoints/<step>.pt. "
        "Multi-GPU / multi-node: python -m torch.distributed.run --nproc_per_node=N -m ssmvos train ...",
        epilog="A --model-dir that already holds checkpoints is refused, so a finished run is never overwritten; "
        "continue an interrupted run (Ctrl-C leaves every checkpoint complete) with --resume "
        "<model-dir>/checkpoints/<last step>.pt --resume-step into the same --model-dir.")
    a = p.add_argument
    count = int_range(1)
    a("--model-dir", required=True, help="run folder (created if missing; refused if it holds checkpoints, "
      "unless --resume-step continues from its last one)")
    a("--split", required=True, help="training split file (JSON frame entries, see `ssmvos index`)")
    # training
    a("--batch-size", type=count, default=16, help="GLOBAL batch size, split evenly over the processes (default 16)")
    a("--max-epoch", type=int_range(0), default=20, help="epochs to train (default 20)")
    a("--max-steps", type=count, default=None,
      help="stop once this many global steps are done, counting those before a resume (default: no limit)")
    a("--num-workers", type=int_range(0), default=16,
      help="DataLoader workers per process, capped at its CPUs; 0 loads in the training process (default 16)")
    a("--resume", default=None, metavar="CKPT", help="start from this checkpoint's weights, strictly (default: none)")
    a("--resume-step", action="store_true",
      help="with --resume: continue that run exactly (step, optimizer, LR schedule, RNG, epoch position)")
    a("--seed", type=int_range(0, 2**32 - 1), default=123, help="random seed of the run (default 123)")
    a("--encoder", choices=["resnet50", "resnet101"], default="resnet50", help="encoder (default resnet50)")
    a("--log-step", type=count, default=10, help="log the loss every this many steps (default 10)")
    a("--save-step", type=count, default=4750, help="save checkpoints/<step>.pt when (step + 1) %% save_step == 0 "
      "(default 4750)")
    a("--matching", choices=["conv", "cosine"], default="conv", help="pixel matching (default conv)")
    a("--keep-topk", type=int_range(1, 1024), default=32,
      help="top-k of the matching, a divisor of 1024 (default 32)")
    add_input_size_flags(p)
    # optimizer
    rate = float_range(0)
    a("--base-lr", type=rate, default=1e-5, help="learning rate (default 1e-05)")
    a("--encoder-lr-weight", type=rate, default=1.0, help="encoder lr = base lr x this (default 1.0)")
    a("--lr-decay-step", type=count, default=9501, help="StepLR step size in iterations (default 9501)")
    a("--lr-decay-rate", type=float_range(0, 1, above=True), default=0.9,
      help="StepLR factor, in (0, 1] (default 0.9)")
    a("--weight-decay", type=rate, default=5e-4, help="Adam weight decay (default 0.0005)")
    # augmentation
    probability = float_range(0, 1)
    a("--flip-rate", type=probability, default=0.5, help="probability of a horizontal flip, 0 to 1 (default 0.5)")
    a("--blur-rate", type=probability, default=1.0,
      help="probability that the previous mask is a blurred heat map, 0 to 1 (default 1.0)")
    a("--rotation", type=float_range(0, 180), default=45.0, help="largest rotation in degrees, 0 to 180 (default 45.0)")
    a("--min-margin", type=float_range(0, 10), default=0.0, help="smallest crop margin, a fraction of the box "
      "(default 0.0)")
    a("--max-margin", type=float_range(0, 10), default=1.0, help="largest crop margin, a fraction of the box "
      "(default 1.0)")
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

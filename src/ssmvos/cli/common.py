"""Flags shared by several subcommands (model, device, precision)."""
from __future__ import annotations

import argparse


def add_model_flags(p: argparse.ArgumentParser, *, encoder_default: str | None = None) -> None:
    """--encoder --matching --keep-topk as the original scripts spell them."""
    p.add_argument("--encoder", choices=["resnet50", "resnet101"], default=encoder_default,
                   help="encoder (default: what the checkpoint's shapes imply)" if encoder_default is None
                   else f"encoder (default {encoder_default})")
    p.add_argument("--matching", choices=["conv", "cosine"], default="conv", help="pixel matching (default conv)")
    p.add_argument("--keep-topk", type=int, default=None,
                   help="top-k of the matching (default: what the checkpoint implies, 32 for the published models)")


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """--device --precision."""
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to run (default auto: CUDA when available)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="fp32 (faithful to the original, default) or bf16/fp16 autocast: about 3x faster on CPUs with "
                   "AMX/AVX-512 BF16 and on GPUs, but not faithful (see benchmarks/README.md)")


def model_config(args: argparse.Namespace) -> dict:
    """The SSM constructor arguments given on the command line (None = infer)."""
    config = {"matching": args.matching}
    if args.encoder is not None:
        config["encoder"] = args.encoder
    if args.keep_topk is not None:
        config["keep_topk"] = args.keep_topk
    return config

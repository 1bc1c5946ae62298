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
    """--device --precision (inference and training)."""
    from ..runtime import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS

    p.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)


def add_inference_flags(p: argparse.ArgumentParser) -> None:
    """--device --precision --backend --onnx --compile --cuda-graphs."""
    from ..runtime import BACKEND_HELP, BACKENDS

    add_runtime_flags(p)
    p.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    p.add_argument("--onnx", metavar="DIR",
                   help="with --backend onnxruntime: a folder written by 'ssmvos export --format onnx' for these "
                   "weights and this input size (default: the weights are exported once into $SSMVOS_HOME/onnx)")
    p.add_argument("--compile", action="store_true", help="the same as --backend compile")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay the network as CUDA graphs (captured once per batch size; CUDA only): removes the "
                   "kernel-launch overhead that bounds small batches on fast GPUs")


def runner_options(args: argparse.Namespace) -> dict:
    """Engine/VideoPredictor keyword arguments from add_inference_flags' flags."""
    return {"device": args.device, "precision": args.precision, **backend_options(args)}


def backend_options(args: argparse.Namespace) -> dict:
    """backend (--compile is --backend compile), onnx and cuda_graphs from add_inference_flags' flags."""
    from ..runtime import resolve_backend

    return {"backend": resolve_backend(args.backend, args.compile), "onnx": args.onnx, "cuda_graphs": args.cuda_graphs}


def model_config(args: argparse.Namespace) -> dict:
    """The SSM constructor arguments given on the command line (None = infer)."""
    config = {"matching": args.matching}
    if args.encoder is not None:
        config["encoder"] = args.encoder
    if args.keep_topk is not None:
        config["keep_topk"] = args.keep_topk
    return config

"""Flags shared by several subcommands (model, device, precision)."""
from __future__ import annotations

import argparse

from .types import float_range, int_range


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """--encoder --matching --keep-topk as the original scripts spell them (default: the checkpoint's)."""
    p.add_argument("--encoder", choices=["resnet50", "resnet101"], default=None,
                   help="encoder (default: what the checkpoint records, or what its shapes imply)")
    p.add_argument("--matching", choices=["conv", "cosine"], default=None,
                   help="pixel matching (default: what the checkpoint records; conv for the original's checkpoints)")
    p.add_argument("--keep-topk", type=int_range(1, 1024), default=None,
                   help="top-k of the matching (default: what the checkpoint records or implies, 32 for the "
                   "published models)")


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    """--device --precision (inference and training)."""
    from ..options import DEVICE_HELP, DEVICES, PRECISION_HELP, PRECISIONS

    p.add_argument("--device", choices=DEVICES, default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)


def add_inference_flags(p: argparse.ArgumentParser) -> None:
    """--device --precision --backend --onnx --compile --cuda-graphs."""
    from ..options import BACKEND_HELP, BACKENDS

    add_runtime_flags(p)
    p.add_argument("--backend", choices=BACKENDS, default="torch", help=BACKEND_HELP)
    p.add_argument("--onnx", metavar="DIR",
                   help="with --backend onnxruntime: a folder written by 'ssmvos export --format onnx' for these "
                   "weights and this input size (default: the weights are exported once into $SSMVOS_HOME/onnx)")
    p.add_argument("--compile", action="store_true", help="the same as --backend compile")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay the network and the crop geometry as CUDA graphs (captured once per number of "
                   "objects; CUDA only): removes the kernel-launch overhead that bounds small batches on fast GPUs")


def add_propagation_flags(p: argparse.ArgumentParser) -> None:
    """--fix-margin --max-batch (segment, evaluate)."""
    p.add_argument("--fix-margin", type=float_range(0, 10), default=0.5,
                   help="crop margin around the previous mask, a fraction of its box (default 0.5; 0 to 10)")
    p.add_argument("--max-batch", type=int_range(1), default=16,
                   help="objects per forward pass (default 16; at least 1)")


def add_segment_flags(p: argparse.ArgumentParser) -> None:
    """The flags of segmenting a user's video (segment, batch): --direction --reference --weights,
    the input size, add_propagation_flags' and add_inference_flags'."""
    from ..options import DIRECTIONS
    from .types import add_input_size_flags

    p.add_argument("--direction", choices=DIRECTIONS, default=None,
                   help="forward from the first mask, backward from the last, or both: every object backward and "
                   "forward from its first mask (default both; live sources: forward only). Frames that forward "
                   "(before the first mask) or backward (after the last) does not reach get no PNG, with a note on "
                   "stderr")
    p.add_argument("--reference", choices=["first", "latest"], default="first",
                   help="after a correction, match frames against the object's first mask (default, as the "
                   "original) or the latest mask given")
    p.add_argument("--weights", default="davis17", help="published model name or checkpoint path (default davis17)")
    add_input_size_flags(p)
    add_propagation_flags(p)
    add_inference_flags(p)


def runtime_spec(args: argparse.Namespace):
    """The :class:`~ssmvos.runtime.RuntimeSpec` of add_inference_flags' flags (checked: a
    conflict is one error naming the flags, before any model is loaded)."""
    from ..runtime import RuntimeSpec

    return RuntimeSpec.of(args.backend, args.compile, device=args.device, precision=args.precision,
                          cuda_graphs=args.cuda_graphs, onnx=args.onnx)

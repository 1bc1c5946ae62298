"""ssmvos export: the network as ONNX graphs plus a manifest, for other runtimes."""
from __future__ import annotations

import argparse

from .common import add_model_flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export the network to ONNX (needs pip install -e \".[onnx]\")",
        description="Export the network split the way inference runs it: encode_reference.onnx (once per object) "
        "and segment.onnx (once per frame, any number of objects), for one input size, plus ssmvos-onnx.json "
        "describing inputs, outputs, normalisation and the crop rule. ONNX Runtime's outputs are checked against "
        "PyTorch's on fixed inputs (relative error at most 1e-4) before anything is written.",
        epilog="Run an export with 'ssmvos segment/evaluate --backend onnxruntime --onnx DIR' (the same weights and "
        "input size), or from any ONNX runtime following the manifest.")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx, the only one)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--weights", default="davis17", help="published model name or checkpoint path (default davis17)")
    p.add_argument("--input-size", type=int, nargs="+", default=[512], metavar=("H", "W"),
                   help="network input size: H W, or one value for a square (default 512; height >= 193)")
    add_model_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..errors import SSMVOSError
    from ..inputs import check_input_size
    from ..onnx_backend import export_onnx, read_export
    from ..weights import resolve_weights
    from .common import model_config

    if len(args.input_size) > 2:
        raise SSMVOSError("--input-size takes H W or one value for a square")
    height, width = args.input_size if len(args.input_size) == 2 else args.input_size * 2
    model = load_checkpoint(resolve_weights(args.weights), **model_config(args))
    check_input_size(height, width, model.config["keep_topk"])
    manifest = export_onnx(model, args.out, (height, width))
    errors = read_export(args.out).manifest["verification"]["relative_error"]
    print(f"exported {height}x{width} to {args.out}: encode_reference.onnx, segment.onnx, {manifest.name}; "
          f"ONNX Runtime vs PyTorch: largest relative error {max(errors.values()):.2g}")
    return 0

"""ssmvos export: the network as ONNX graphs plus a manifest, for other runtimes."""
from __future__ import annotations

import argparse

from .common import add_model_flags
from .types import INPUT_SIZE_FLAGS, add_input_size_flags


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
    add_input_size_flags(p)
    add_model_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.onnx import export_onnx, read_export
    from ..weights import load_model

    height, width = args.input_height, args.input_width
    flags = f"{INPUT_SIZE_FLAGS} / --keep-topk"
    model = load_model(args.weights, input_size=(height, width), encoder=args.encoder, matching=args.matching,
                       keep_topk=args.keep_topk, size_source=flags)
    manifest = export_onnx(model, args.out, (height, width), size_source=flags)
    errors = read_export(args.out).manifest["verification"]["relative_error"]
    print(f"exported {height}x{width} to {args.out}: encode_reference.onnx, segment.onnx, {manifest.name}; "
          f"ONNX Runtime vs PyTorch: largest relative error {max(errors.values()):.2g}")
    return 0

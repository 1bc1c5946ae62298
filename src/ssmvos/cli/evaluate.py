"""ssmvos evaluate: segment every object of a split file (the original evaluate.py)."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .common import add_model_flags, add_runtime_flags, model_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="segment the objects of a split file",
        description="Segment every object of a split file and write per-object soft masks to "
        "<save-dir>/<video>/<object>/<frame>.png exactly like the original evaluate.py (frame 0 = the "
        "annotation). Optionally merge them (--merged-dir), zip a submission (--zip) and score J&F (--score).")
    p.add_argument("--split", required=True, help="split file written by 'ssmvos index'")
    p.add_argument("--resume", required=True,
                   help="checkpoint path, or a published model name (davis16, davis17, youtube)")
    p.add_argument("--save-dir", required=True, help="output folder for the per-object soft masks")
    p.add_argument("--input-height", type=int, default=512, help="network input height (default 512; at least 193)")
    p.add_argument("--input-width", type=int, default=512, help="network input width (default 512)")
    p.add_argument("--fix-margin", type=float, default=0.5, help="crop margin around the previous mask (default 0.5)")
    add_model_flags(p)
    add_runtime_flags(p)
    p.add_argument("--merged-dir", help="also write merged palette masks here (one command instead of two)")
    p.add_argument("--merge-mode", choices=["soft", "hard"], default="soft", help="merging rule (default soft)")
    p.add_argument("--zip", help="write a submission archive Annotations/<video>/<frame>.png of the merged masks")
    p.add_argument("--score", action="store_true",
                   help="score J&F of the merged masks against the split's annotations after merging")
    p.add_argument("--max-batch", type=int, default=16, help="objects per forward pass (default 16)")
    p.add_argument("--num-workers", type=int, default=2, help="threads writing PNGs (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..data.splits import load_split
    from ..inference.engine import Engine
    from ..inference.evaluate import evaluate_split, write_submission_zip
    from ..weights import resolve_weights

    entries = load_split(args.split)
    model = load_checkpoint(resolve_weights(args.resume), **model_config(args))
    engine = Engine(model, (args.input_height, args.input_width), args.fix_margin, args.device, args.precision,
                    args.max_batch)
    with tempfile.TemporaryDirectory(prefix="ssmvos-merged-") as tmp:
        merged = args.merged_dir or (tmp if (args.zip or args.score) else None)
        stats = evaluate_split(entries, engine, args.save_dir, merged, args.merge_mode,
                               progress=not args.no_progress, io_workers=args.num_workers)
        print(f"{stats.videos} videos, {stats.objects} objects, {stats.frames} frames "
              f"({stats.object_frames} object-frames) in {stats.seconds:.1f} s: {stats.fps:.2f} frames/s "
              f"on {engine.device.type} ({args.precision}) -> {args.save_dir}")
        if args.zip:
            print(f"submission archive: {write_submission_zip(merged, args.zip)}")
        if args.score:
            from ..evaluation.score import score_split

            score_split(entries, merged)
    return 0

"""ssmvos evaluate: segment every object of a split file (the original evaluate.py)."""
from __future__ import annotations

import argparse
import tempfile

from .common import add_inference_flags, add_model_flags, backend_options, model_config


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
    add_inference_flags(p)
    p.add_argument("--merged-dir", help="also write merged palette masks here (one command instead of two)")
    p.add_argument("--merge-mode", choices=["soft", "hard"], default="soft", help="merging rule (default soft)")
    p.add_argument("--zip", help="write a submission archive Annotations/<video>/<frame>.png of the merged masks")
    p.add_argument("--score", action="store_true",
                   help="score J&F of the merged masks against the split's annotations after merging "
                   "(skipped, with a note, for splits without per-frame annotations)")
    p.add_argument("--score-json", metavar="FILE", help="with --score: also write the figures as JSON")
    p.add_argument("--max-batch", type=int, default=16, help="objects per forward pass (default 16)")
    p.add_argument("--num-workers", type=int, default=2, help="threads writing PNGs (default 2)")
    p.epilog = ("Under torchrun (python -m torch.distributed.run --nproc_per_node=N -m ssmvos evaluate ...) the "
                "videos are split across the processes (one GPU each); the outputs equal a single process's.")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..data.splits import load_split
    from ..distributed import all_gather_objects, init_process_group, planned_context, raise_if_any_failed, shutdown
    from ..errors import SSMVOSError
    from ..inference.engine import Engine
    from ..inference.evaluate import EvaluationStats, evaluate_split, write_submission_zip
    from ..inputs import check_input_size
    from ..weights import resolve_weights

    ctx = planned_context(args.device)
    if ctx.world_size > 1 and (args.zip or args.score) and not args.merged_dir:
        raise SSMVOSError("under torchrun, --zip and --score need --merged-dir (one folder all processes write)")
    entries = load_split(args.split)
    model = load_checkpoint(resolve_weights(args.resume), **model_config(args))
    check_input_size(args.input_height, args.input_width, model.config["keep_topk"])
    engine = Engine(model, (args.input_height, args.input_width), args.fix_margin, ctx.device, args.precision,
                    args.max_batch, **backend_options(args))
    init_process_group(ctx)
    try:
        with tempfile.TemporaryDirectory(prefix="ssmvos-merged-") as tmp:
            merged = args.merged_dir or (tmp if (args.zip or args.score) else None)
            error, stats = None, EvaluationStats()
            try:
                stats = evaluate_split(entries, engine, args.save_dir, merged, args.merge_mode,
                                       progress=not args.no_progress and ctx.is_main, io_workers=args.num_workers,
                                       shard=(ctx.rank, ctx.world_size))
            except SSMVOSError as exc:
                if ctx.world_size == 1:
                    raise
                error = f"rank {ctx.rank}: {exc}"
            raise_if_any_failed(ctx, error)
            parts = all_gather_objects(ctx, stats)  # every rank has finished writing here
            if not ctx.is_main:
                return 0
            total = EvaluationStats(*(sum(getattr(p, f) for p in parts) for f in
                                      ("videos", "objects", "frames", "object_frames")),
                                    seconds=max(p.seconds for p in parts))
            print(f"{total.videos} videos, {total.objects} objects, {total.frames} frames "
                  f"({total.object_frames} object-frames) in {total.seconds:.1f} s: {total.fps:.2f} frames/s "
                  f"on {ctx.world_size} x {engine.device.type} ({args.precision}) -> {args.save_dir}")
            if args.zip:
                print(f"submission archive: {write_submission_zip(merged, args.zip)}")
            if args.score:
                _score(entries, merged, args.score_json)
    finally:
        shutdown()
    return 0


def _score(entries: list[dict], merged: str, json_path: str | None) -> None:
    from ..evaluation.report import format_table, write_json
    from ..evaluation.score import score_folder, split_scoring_plan

    plan = split_scoring_plan(entries)
    if plan is None:
        print("--score: this split has no per-frame annotations (test set); nothing to score")
        return
    annotations, fmt, videos = plan
    scores = score_folder(annotations, merged, fmt=fmt, sequences=videos)
    print(format_table(scores))
    if json_path:
        print(f"wrote {write_json(scores, json_path)}")

"""ssmvos evaluate: segment every object of a split file (the original evaluate.py)."""
from __future__ import annotations

import argparse

from .common import add_inference_flags, add_model_flags, add_propagation_flags
from .types import add_input_size_flags, int_range


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
    add_input_size_flags(p)
    add_propagation_flags(p)
    add_model_flags(p)
    add_inference_flags(p)
    p.add_argument("--merged-dir", help="also write merged palette masks here (one command instead of two)")
    p.add_argument("--merge-mode", choices=["soft", "hard"], default="soft", help="merging rule (default soft)")
    p.add_argument("--zip", help="write a submission archive Annotations/<video>/<frame>.png of the merged masks")
    p.add_argument("--score", action="store_true",
                   help="score J&F of the merged masks against the split's annotations after merging: "
                   "official DAVIS figures for DAVIS splits, generic ones (as 'ssmvos score --format generic') "
                   "for YouTube-VOS-layout splits such as a hold-out of YouTube-VOS or MOSE train "
                   "(skipped, with a note, for splits without per-frame annotations)")
    p.add_argument("--score-json", metavar="FILE", help="with --score: also write the figures as JSON (default: none)")
    p.add_argument("--num-workers", type=int_range(1, 256), default=2,
                   help="threads (or processes, --png-pool) writing PNGs (default 2; 1 to 256)")
    p.add_argument("--png-pool", choices=["threads", "processes"], default="threads",
                   help="encode PNGs in threads (default) or in worker processes, off the GIL; the files are the "
                   "same either way (figures: benchmarks/README.md)")
    p.epilog = ("Under torchrun (python -m torch.distributed.run --nproc_per_node=N -m ssmvos evaluate ...) the "
                "videos are split across the processes (one GPU each); the outputs equal a single process's.")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ..inference.evaluate import EvaluateConfig, evaluate

    config = EvaluateConfig(**{f.name: getattr(args, f.name) for f in fields(EvaluateConfig) if hasattr(args, f.name)},
                            progress=not args.no_progress)
    result = evaluate(config)
    if result is None:  # not the main process under torchrun
        return 0
    total = result.stats
    print(f"{total.videos} videos, {total.objects} objects, {total.frames} frames "
          f"({total.object_frames} object-frames) in {total.seconds:.1f} s: {total.fps:.2f} frames/s "
          f"on {result.processes} x {result.device} ({args.precision}) -> {args.save_dir}")
    if result.zip_path is not None:
        print(f"submission archive: {result.zip_path}")
    if args.score:
        if result.scores is None:
            print(f"--score: {result.score_note}")
        else:
            from ..scoring.report import format_table
            from .score import print_notes

            print(f"scored with the {result.scores['format']} rules")
            print_notes(result.scores)
            print(format_table(result.scores))
            if args.score_json:
                print(f"wrote {args.score_json}")
    return 0

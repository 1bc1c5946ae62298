"""ssmvos batch: segment every video of a manifest, resumably, in one or many processes (wiring only)."""
from __future__ import annotations

import argparse
import sys

from .common import add_segment_flags, runtime_spec
from .types import INPUT_SIZE_FLAGS, int_range


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..inference.batch import ENGINES, FORMATS, MAX_VIDEOS_AT_ONCE

    p = sub.add_parser(
        "batch", help="segment every video of a manifest (resumable; torchrun or Ray for many GPUs)",
        description="Segment every video of a manifest into OUT/<name>/<frame>.png, the same files 'ssmvos "
        "segment' writes for that video, masks and flags. The manifest is a CSV file with the header "
        "name,video,masks: video a video file or a folder of frames, masks one or more FRAME:PATH items joined "
        "by ; (a plain PATH is frame 0); relative paths are relative to the manifest. Or a folder laid out as "
        "DAVIS: <name>/ frames (or <name>.mp4) with <name>.png, the mask of frame 0. Each video's folder "
        "appears when it is complete (built in a hidden temporary folder, then renamed); OUT/summary.json "
        "lists every video as done, failed (with its error) or skipped. A rerun skips the folders already "
        "there (--overwrite redoes them). A bad row fails its video only; the exit status is 1 if any failed.",
        epilog="Many GPUs on one machine: torchrun --nproc_per_node=N -m ssmvos batch ... shares the videos out "
        "across the processes (longest first, so that they finish together; one GPU each) and rank 0 writes "
        "one summary. Many machines: --engine ray (pip install 'ssmvos[ray]') runs the videos on Ray actors, "
        "one per GPU of the cluster (CPU clusters: --ray-workers actors), each building the network once; a "
        "video whose worker died is run again on a new worker. With several machines OUT must be a folder "
        "they all see.")
    p.add_argument("--manifest", required=True, metavar="CSV|DIR",
                   help="CSV file with the header name,video,masks, or a folder of <name>/ frames and <name>.png masks")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: DIR/<name>/<frame>.png and DIR/summary.json")
    p.add_argument("--overwrite", action="store_true", help="segment every video again, even those already done")
    p.add_argument("--format", choices=FORMATS, default="png",
                   help="png: the palette PNGs; coco: also DIR/<name>/coco.json, the masks as COCO RLE (default png)")
    p.add_argument("--overlay-dir", metavar="DIR", help="also write each video's overlay to DIR/<name>.mp4")
    add_segment_flags(p)
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process (or this torchrun rank); ray: Ray actors (default local)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: the cluster to join (e.g. ray://head:10001 or auto; default: a local Ray "
                   "started for this run)")
    p.add_argument("--ray-workers", type=int_range(1, 4096), default=None, metavar="N",
                   help="with --engine ray: the number of workers (default: one per GPU of the cluster, else 1)")
    p.add_argument("--videos-at-once", type=int_range(1, MAX_VIDEOS_AT_ONCE), default=1, metavar="K",
                   help="segment K videos at once in each process (or Ray worker), their objects sharing the "
                   "network's batches of up to --max-batch rows: for GPUs (on a CPU it is no faster); the masks then "
                   "equal one video at a time up to float rounding instead of byte for byte (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import SSMVOSError
    from ..inference.batch import BatchConfig, PredictorConfig, SegmentOptions, batch

    if args.engine != "ray" and (args.ray_address or args.ray_workers):
        raise SSMVOSError("--ray-address and --ray-workers are for --engine ray")
    spec = runtime_spec(args)
    predictor = PredictorConfig(args.weights, (args.input_height, args.input_width), spec.backend, args.device,
                                spec.precision, spec.cuda_graphs, spec.onnx, args.fix_margin, args.max_batch,
                                INPUT_SIZE_FLAGS)
    options = SegmentOptions(args.direction, args.reference, args.overlay_dir, args.format)
    result = batch(BatchConfig(args.manifest, args.out, predictor, options, args.overwrite, args.engine,
                               args.ray_address, args.ray_workers, progress=not args.no_progress,
                               videos_at_once=args.videos_at_once))
    if result is None:  # a torchrun rank other than 0
        return 0
    frames = sum(o.frames for o in result.outcomes if o.status == "done")
    where = f"{result.workers} process(es)" if args.engine == "local" else f"{result.workers} Ray worker(s)"
    if args.videos_at_once > 1:
        where += f", {args.videos_at_once} videos at once each"
    print(f"{result.count('done')} done, {result.count('skipped')} skipped, {result.count('failed')} failed "
          f"({frames} frames) in {result.seconds:.1f} s on {where} (start-up {result.setup_seconds:.1f} s)"
          + (f"; {result.retried} video(s) retried after a lost worker" if result.retried else "")
          + f" -> {result.summary}")
    for o in result.failed:
        print(f"failed: {o.name}: {o.error}", file=sys.stderr)
    return 1 if result.failed else 0

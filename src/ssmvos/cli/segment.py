"""ssmvos segment: a user's own clip and a first-frame mask -> masks for every frame."""
from __future__ import annotations

import argparse

from .common import add_inference_flags, backend_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment", help="segment the objects of a first-frame mask through your own video",
        description="Segment the objects of a first-frame mask (palette PNG with labels 1..254, or a binary "
        "0/255 PNG for one object) through a video file or a folder of frames. Writes one palette PNG per "
        "frame at the video's resolution, and optionally an overlay video. With --demo it runs on a short "
        "DAVIS 2016 clip bundled with ssmvos.",
        epilog="Weights: a published model name (davis16, davis17, youtube) is downloaded once into "
        "$SSMVOS_HOME (default ~/.cache/ssmvos); without internet, download the .pt file by hand and pass "
        "its path with --weights.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="video file (mp4, avi, ...)")
    src.add_argument("--frames", help="folder of frames (jpg/png, sorted by name)")
    src.add_argument("--demo", action="store_true", help="the bundled demo clip and its first-frame mask")
    p.add_argument("--mask", help="first-frame mask PNG (required unless --demo)")
    p.add_argument("--out", required=True, help="output folder for the per-frame palette PNGs")
    p.add_argument("--weights", default="davis17", help="published model name or checkpoint path (default davis17)")
    p.add_argument("--overlay", help="also write the masks blended on the frames to this .mp4 file")
    p.add_argument("--input-size", type=int, default=512, help="network input size, square (default 512; >= 193)")
    p.add_argument("--fix-margin", type=float, default=0.5, help="crop margin around the previous mask (default 0.5)")
    p.add_argument("--max-batch", type=int, default=16, help="objects per forward pass (default 16)")
    add_inference_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..errors import SSMVOSError
    from ..inference.predictor import VideoPredictor
    from ..inference.segment import demo_clip, segment_video
    from ..inputs import check_input_size
    from ..weights import resolve_weights

    if args.demo:
        video, mask = demo_clip()
        mask = args.mask or mask
    else:
        video, mask = args.video or args.frames, args.mask
        if mask is None:
            raise SSMVOSError("--mask is required (the first-frame mask PNG)")
    model = load_checkpoint(resolve_weights(args.weights))
    check_input_size(args.input_size, args.input_size, model.config["keep_topk"])
    predictor = VideoPredictor(model, args.input_size, args.fix_margin, args.device, args.precision, args.max_batch,
                               **backend_options(args))
    stats = segment_video(predictor, video, mask, args.out, args.overlay, progress=not args.no_progress)
    print(f"segmented {stats.objects} object(s) in {stats.frames} frames in {stats.seconds:.1f} s "
          f"({stats.frames / max(stats.seconds, 1e-9):.2f} frames/s) -> {args.out}"
          + (f"; overlay: {args.overlay}" if args.overlay else ""))
    return 0

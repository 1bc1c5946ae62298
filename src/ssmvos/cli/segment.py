"""ssmvos segment: a user's own clip and a first-frame mask -> masks for every frame."""
from __future__ import annotations

import argparse

from .common import add_inference_flags, add_propagation_flags, check_network_input
from .types import INPUT_SIZE_FLAGS, add_input_size_flags, frame_folder


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
    src.add_argument("--frames", type=frame_folder, help="folder of frames (jpg/png, sorted by name)")
    src.add_argument("--demo", action="store_true", help="the bundled demo clip and its first-frame mask")
    p.add_argument("--mask", help="first-frame mask PNG (required unless --demo)")
    p.add_argument("--out", required=True, help="output folder for the per-frame palette PNGs")
    p.add_argument("--weights", default="davis17", help="published model name or checkpoint path (default davis17)")
    p.add_argument("--overlay", help="also write the masks blended on the frames to this .mp4 file")
    add_input_size_flags(p)
    add_propagation_flags(p)
    add_inference_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_file, check_output_folder
    from ..checkpoint import load_checkpoint
    from ..errors import SSMVOSError
    from ..inference.predictor import VideoPredictor
    from ..inference.segment import demo_clip, segment_video
    from ..weights import resolve_weights

    if args.demo:
        video, mask = demo_clip()
        mask = args.mask or mask
    else:
        video, mask = args.video or args.frames, args.mask
        if mask is None:
            raise SSMVOSError("--mask is required (the first-frame mask PNG)")
    size = (args.input_height, args.input_width)
    check_network_input(*size, None, INPUT_SIZE_FLAGS, None)  # before any download
    check_output_folder(args.out, "--out")
    if args.overlay is not None:
        check_output_file(args.overlay, "--overlay")
    model = load_checkpoint(resolve_weights(args.weights))
    check_network_input(*size, model.config["keep_topk"], INPUT_SIZE_FLAGS, None)
    predictor = VideoPredictor(model, size, args.fix_margin, args.device, args.precision, args.max_batch,
                               compile=args.compile, cuda_graphs=args.cuda_graphs)
    stats = segment_video(predictor, video, mask, args.out, args.overlay, progress=not args.no_progress)
    print(f"segmented {stats.objects} object(s) in {stats.frames} frames in {stats.seconds:.1f} s "
          f"({stats.frames / max(stats.seconds, 1e-9):.2f} frames/s) -> {args.out}"
          + (f"; overlay: {args.overlay}" if args.overlay else ""))
    return 0

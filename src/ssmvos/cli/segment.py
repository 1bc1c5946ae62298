"""ssmvos segment: a user's own clip (or a live stream) and masks -> masks for every frame."""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from .common import add_segment_flags, runtime_spec
from .types import INPUT_SIZE_FLAGS, frame_folder

if TYPE_CHECKING:
    from ..io.session_file import SessionFile


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "segment", help="segment the objects of given masks through your own video or a live stream",
        description="Segment the objects of masks (palette or grayscale PNGs with labels 1..254, or a binary "
        "1-bit or 0/255 PNG for one object) through a video file, a folder of frames or a live source. Masks on later frames add "
        "objects (a new label) or correct them (a label given before: its chain restarts from that mask). "
        "Writes one palette PNG per frame at the video's resolution, and optionally an overlay video, as frames "
        "are done; Ctrl-C stops with everything done so far complete on disk. With --demo it runs on a short "
        "DAVIS 2016 clip bundled with ssmvos.",
        epilog="Weights: a published model name (davis16, davis17, youtube) is downloaded once into "
        "$SSMVOS_HOME (default ~/.cache/ssmvos); without internet, download the .pt file by hand and pass "
        "its path with --weights. Live sources: a camera index (--video 0), an RTSP/HTTP URL, or - for stdin "
        "carrying concatenated JPEG/PNG images (ffmpeg -f image2pipe) or a YUV4MPEG2 stream (ffmpeg -f "
        "yuv4mpegpipe). They are segmented forward as frames arrive, through a queue of a few frames: when the "
        "network falls behind, the oldest waiting frame is dropped (never one with a mask) unless --no-drop.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", help="video file (mp4, avi, ...), or live: a camera index (0), an RTSP/HTTP URL, "
                     "or - for frames on stdin")
    src.add_argument("--frames", type=frame_folder, help="folder of frames (jpg/png) in natural order: 2.jpg before 10.jpg")
    src.add_argument("--demo", action="store_true", help="the bundled demo clip and its first-frame mask")
    p.add_argument("--mask", action="append", metavar="[FRAME:]PATH",
                   help="mask PNG for frame 0, or FRAME:PATH for another frame (frames count from 0); repeat it "
                   "for masks on several frames (required unless --demo)")
    p.add_argument("--session", metavar="FILE",
                   help="take the masks of a session file saved by 'ssmvos app' for this video (same frame count "
                   "and size), with any --mask given too (on other frames)")
    p.add_argument("--no-drop", action="store_true",
                   help="live sources: process every frame, however far behind live that gets")
    p.add_argument("--out", required=True, help="output folder for the per-frame palette PNGs")
    p.add_argument("--overlay", help="also write the masks blended on the frames to this .mp4 file")
    add_segment_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_mask(text: str) -> tuple[int, str]:
    """``PATH`` (frame 0) or ``FRAME:PATH`` -> (frame, path); an existing file is always a PATH."""
    from ..errors import SSMVOSError
    from ..numbers import parse_number

    frame, sep, path = text.partition(":")
    if not sep or os.path.exists(text):
        return 0, text
    number = parse_number(frame.strip())
    if number is None:
        if frame.strip().startswith("-") and parse_number(frame.strip()[1:]) is not None:
            raise SSMVOSError(f"--mask {text}: frame numbers start at 0, not {frame.strip()}")
        raise SSMVOSError(f"--mask {text}: no such file, and {frame!r} is not a frame number (use FRAME:PATH with "
                          "FRAME = 0, 1, ... in ASCII digits)")
    if not path:
        raise SSMVOSError(f"--mask {text}: no mask file after the frame number")
    return number, path


def run(args: argparse.Namespace) -> int:
    masks = [parse_mask(m) for m in args.mask or []]
    session = None
    if args.session:  # the app's masks, read straight into label maps
        from ..io.session_file import read_session_file

        session = read_session_file(args.session)
    return _segment(args, masks, session)


def _segment(args: argparse.Namespace, masks: list[tuple[int, str]], session: SessionFile | None = None) -> int:
    from ..assets import demo_clip
    from ..atomic import check_output_file, check_output_folder
    from ..build import build_predictor
    from ..errors import SSMVOSError
    from ..inference.segment import segment_video

    if args.demo:
        video, demo_mask = demo_clip()
        masks = masks or ([] if session is not None else [(0, demo_mask)])
    else:
        video = args.video or args.frames
        if not masks and session is None:
            raise SSMVOSError("--mask is required (the first-frame mask PNG, or FRAME:PATH), or --session FILE")
    spec = runtime_spec(args)
    check_output_folder(args.out, "--out")
    if args.overlay is not None:
        from ..inference.overlay import check_overlay_path

        check_output_file(args.overlay, "--overlay")
        check_overlay_path(args.overlay, "--overlay")
    predictor = build_predictor(args.weights, (args.input_height, args.input_width), spec,
                                size_source=INPUT_SIZE_FLAGS, margin=args.fix_margin, max_batch=args.max_batch)
    stats = segment_video(predictor, video, masks, args.out, args.overlay, progress=not args.no_progress,
                          direction=args.direction, drop=not args.no_drop, reference=args.reference,
                          session=session)
    extra = "; ".join(x for x in (stats.latency_summary(),
                                  f"dropped {stats.dropped} frame(s)" if stats.latencies else "") if x)
    if stats.unmasked:
        where = "before the first mask" if stats.unmasked.start == 0 else "after the last mask"
        hint = "--direction both" if stats.unmasked.start == 0 else "--direction both or forward"
        first, last = stats.unmasked.start, stats.unmasked.stop - 1
        one = first == last
        which = f"frame {first} comes" if one else f"frames {first}..{last} come"
        print(f"note: {which} {where} and {'was' if one else 'were'} not segmented with --direction "
              f"{args.direction}: no PNG is written for {'it' if one else 'them'} ({hint} segments them)",
              file=sys.stderr)
    if stats.interrupted:
        print(f"ssmvos segment: interrupted after {stats.frames} frames; their masks are complete in {args.out}"
              + (f" and in the overlay {args.overlay}" if args.overlay and stats.frames else "")
              + (f" ({extra})" if extra else ""), file=sys.stderr)
        return 130
    print(f"segmented {stats.objects} object(s) in {stats.frames} frames in {stats.seconds:.1f} s "
          f"({stats.frames / max(stats.seconds, 1e-9):.2f} frames/s) -> {args.out}"
          + (f"; overlay: {args.overlay}" if args.overlay else "") + (f"\n{extra}" if extra else ""))
    return 0

"""ssmvos score: J&F of result PNGs against DAVIS annotations (the official semi-supervised figures)."""
from __future__ import annotations

import argparse

from ..evaluation.report import format_table, write_csv, write_json
from ..evaluation.score import FORMATS, score_folder


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="J&F of result masks against DAVIS annotations",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score <results>/<video>/<frame>.png against <annotations>/<video>/<frame>.png with the\n"
        "official DAVIS semi-supervised figures: J and F mean, recall and decay per object, then means\n"
        "over all objects. As the official code: first and last frames left out, objects 1..N of the\n"
        "first annotation frame, missing objects in results score as empty, void pixels count as background.",
        epilog="--csv writes one file: header Sequence,J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay,\n"
        "a first row 'Global', then one row per object '<video>_<id>' (values in [0, 1]).\n"
        "--json writes {JF_mean, J_mean, J_recall, J_decay, F_mean, F_recall, F_decay, per_object: {...}}.")
    p.add_argument("--annotations", required=True, metavar="DIR",
                   help="folder of video folders of annotation PNGs (e.g. DAVIS/Annotations/480p; a DAVIS root works too)")
    p.add_argument("--results", required=True, metavar="DIR", help="folder of video folders of result PNGs (indexed or grayscale)")
    p.add_argument("--format", choices=FORMATS, default="davis2017",
                   help="davis2017: indexed labels, objects 1..max of the first frame, 255 = void; "
                   "davis2016: any nonzero pixel (annotation or result) is the one object (default davis2017)")
    p.add_argument("--sequences", nargs="+", metavar="S", default=None,
                   help="score only these videos (default: every video folder of the annotations)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the figures as JSON")
    p.add_argument("--csv", metavar="FILE", default=None, help="write the figures as CSV (layout below)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="parallel processes (default: min(CPUs, videos))")
    p.add_argument("--exclude-void", action="store_true",
                   help="leave void (255) annotation pixels out of J and F; the official code does not")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_file

    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path:
            check_output_file(path, flag, folder_must_exist=True)  # before scoring, not after
    scores = score_folder(args.annotations, args.results, fmt=args.format, sequences=args.sequences,
                          workers=args.workers, exclude_void=args.exclude_void)
    print(format_table(scores))
    if args.json:
        print(f"wrote {write_json(scores, args.json)}")
    if args.csv:
        print(f"wrote {write_csv(scores, args.csv)}")
    return 0

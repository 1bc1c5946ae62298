"""ssmvos score: J&F of result PNGs against annotations (official DAVIS figures, or generic ones for any dataset)."""
from __future__ import annotations

import argparse
import sys

from ..scoring.report import format_table, write_csv, write_json
from ..scoring.score import AUTO, FORMATS, score_folder


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="J&F of result masks against annotations (DAVIS or any VOS dataset)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score <results>/<video>/<frame>.png against <annotations>/<video>/<frame>.png: J and F\n"
        "mean, recall and decay per object, then means over all objects. Only annotated frames are\n"
        "scored (sparse annotation is fine); a missing result frame is an error.\n"
        "  davis2017, davis2016: the official DAVIS semi-supervised figures (first and last frames left\n"
        "    out, objects 1..N of the first annotation frame, missing objects score as empty, void pixels\n"
        "    count as background).\n"
        "  generic: any dataset, figures equal to vos-benchmark's: objects are the ids of the ground\n"
        "    truth (gaps and late objects fine), each counted from the first scored frame where it\n"
        "    occurs in the ground truth or the result; first and last annotated frames left out; ids\n"
        "    only a result has are not reported (a note names them).\n"
        "Without --format the format is detected from the annotations and named in a note.",
        epilog="--csv writes one file: header Sequence,J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay,\n"
        "a first row 'Global', then one row per object '<video>_<id>' (values in [0, 1]).\n"
        "--json writes {JF_mean, J_mean, J_recall, J_decay, F_mean, F_recall, F_decay, per_object: {...},\n"
        "per_video: {...}, format} (values in [0, 1]). The table prints percentages.\n"
        "Notes (format detected, ids left out, videos adding no object) go to stderr.")
    p.add_argument("--annotations", required=True, metavar="DIR",
                   help="folder of video folders of annotation PNGs (e.g. DAVIS/Annotations/480p; a DAVIS root works too)")
    p.add_argument("--results", required=True, metavar="DIR", help="folder of video folders of result PNGs (indexed or grayscale)")
    p.add_argument("--format", choices=FORMATS + (AUTO,), default=AUTO,
                   help="davis2017: indexed labels, objects 1..max of the first frame, 255 = void; "
                   "davis2016: any nonzero pixel (annotation or result) is the one object; "
                   "generic: any dataset, vos-benchmark's rules; "
                   "auto: sparse annotations, ids with gaps or late objects -> generic, binary 0/255 first "
                   "frames -> davis2016, else davis2017 (default auto)")
    p.add_argument("--sequences", nargs="+", metavar="S", default=None,
                   help="score only these videos (default: every video folder of the annotations)")
    p.add_argument("--json", metavar="FILE", default=None, help="write the figures as JSON")
    p.add_argument("--csv", metavar="FILE", default=None, help="write the figures as CSV (layout below)")
    p.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="parallel processes (default: min(CPUs, videos))")
    p.add_argument("--exclude-void", action="store_true",
                   help="leave void (255) annotation pixels out of J and F (generic: 255 is then no object); "
                   "the official DAVIS code does not (default off)")
    p.add_argument("--keep-first-last", action="store_true",
                   help="generic: also score each video's first and last annotated frames (default off: "
                   "left out, as DAVIS and vos-benchmark do); implies --format generic when --format is not given")
    p.add_argument("--exclude-given", action="store_true",
                   help="generic: leave out of each object's figures the first annotated frame where it occurs "
                   "(the mask given to the method; matters for late objects) (default off, as vos-benchmark); "
                   "implies --format generic when --format is not given")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_file

    for flag, path in (("--json", args.json), ("--csv", args.csv)):
        if path:
            check_output_file(path, flag, folder_must_exist=True)  # before scoring, not after
    scores = score_folder(args.annotations, args.results, fmt=args.format, sequences=args.sequences,
                          workers=args.workers, exclude_void=args.exclude_void,
                          keep_first_last=args.keep_first_last, exclude_given=args.exclude_given)
    print_notes(scores)
    print(format_table(scores))
    if args.json:
        print(f"wrote {write_json(scores, args.json)}")
    if args.csv:
        print(f"wrote {write_csv(scores, args.csv)}")
    return 0


def print_notes(scores: dict) -> None:
    """The scores' notes, one line each on stderr."""
    for note in scores.get("notes", ()):
        print(f"note: {note}", file=sys.stderr)

"""ssmvos merge: per-object soft masks -> one palette PNG per frame."""
from __future__ import annotations

import argparse

from ..inference.merge import MODES, merge_folder


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge per-object soft masks into label maps",
                       description="Merge <in-dir>/<video>/<object>/<frame>.png soft masks (0..255) into "
                       "<out-dir>/<video>/<frame>.png palette label maps, as the original merge_masks.py.")
    p.add_argument("-i", "--in-dir", required=True, help="folder of per-object soft masks (evaluate's --save-dir)")
    p.add_argument("-o", "--out-dir", required=True, help="folder for the merged palette PNGs")
    p.add_argument("--mode", choices=MODES, default="soft",
                   help="soft: background = prod(1 - p_i); hard: background = min(1 - p_i) (default soft)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    n = merge_folder(args.in_dir, args.out_dir, args.mode)
    print(f"merged {n} frames into {args.out_dir}")
    return 0

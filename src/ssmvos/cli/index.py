"""``ssmvos index``: dataset folders -> split files (the original make_index.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.datasets import DATASETS
from ..errors import SSMVOSError


def add_parser(subparsers) -> None:
    splits = ",".join(s.name for d in DATASETS.values() for s in d.splits)
    folders = ",".join(d.folder for d in DATASETS.values())
    p = subparsers.add_parser(
        "index", help="index dataset folders into split files",
        description=f"Write <out-dir>/{{{splits}}}.json for the dataset roots given and the split lists that exist. "
        f"Without root flags, indexes whatever exists of DATASETS_ROOT/{{{folders}}}.")
    for key, info in DATASETS.items():
        p.add_argument(info.flag, dest=key, type=Path, metavar="ROOT", help=f"{info.title} root")
    p.add_argument("--out-dir", type=Path, default=Path("splits"), help="where the split files go (default: splits)")
    p.add_argument("--datasets-root", type=Path, default=Path("datasets"),
                   help="folder of the default layout, used when no root flag is given (default: datasets)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_output_folder
    from ..data.datasets import DOWNLOAD_HINT, default_roots, index_datasets

    check_output_folder(args.out_dir, "--out-dir")
    roots = {key: getattr(args, key) for key in DATASETS if getattr(args, key) is not None}
    if not roots:
        roots = default_roots(args.datasets_root)
        if not roots:
            raise SSMVOSError(f"no dataset root given and none of {', '.join(d.folder for d in DATASETS.values())} "
                              f"found under {args.datasets_root}/; {DOWNLOAD_HINT}, or pass --davis2016 ROOT etc. or "
                              "--datasets-root DIR")
        print("found: " + ", ".join(str(p) for p in roots.values()))
    index_datasets(roots, args.out_dir)
    return 0

"""``ssmvos index``: dataset folders -> split files (the original make_index.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SSMVOSError

ROOT_FLAGS = (("davis2016", "DAVIS 2016 train/val"), ("davis2017", "DAVIS 2017 train/val"),
              ("davis2017_test", "DAVIS 2017 test-dev"), ("youtube", "YouTube-VOS 2018 (train/ and valid/)"),
              # YouTube-VOS-layout datasets besides YouTube-VOS 2018 (issue 15)
              ("youtube2019", "YouTube-VOS 2019 (train/ and valid/)"),
              ("mose", "MOSE (or any dataset in YouTube-VOS's layout: train/ and valid/ with JPEGImages/ and "
               "Annotations/; objects come from the annotation PNGs when there is no meta.json)"))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "index", help="index dataset folders into split files",
        description="Write <out-dir>/{davis2016_train,davis2016_val,davis2017_train,davis2017_val,"
        "davis2017_test,youtube_train,youtube_test,youtube2019_train,youtube2019_test,mose_train,mose_test}.json "
        "for the dataset roots given and the split lists that exist. Without root flags, indexes whatever "
        "exists of DATASETS_ROOT/{DAVIS2016,DAVIS2017,DAVIS2017_test,YouTubeVOS,YouTubeVOS2019,MOSE}.")
    for key, what in ROOT_FLAGS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=Path, metavar="ROOT", help=f"{what} root")
    p.add_argument("--out-dir", type=Path, default=Path("splits"), help="where the split files go (default: splits)")
    p.add_argument("--datasets-root", type=Path, default=Path("datasets"),
                   help="folder of the default layout, used when no root flag is given (default: datasets)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.index import DEFAULT_FOLDERS, default_roots, index_datasets

    roots = {key: getattr(args, key) for key, _ in ROOT_FLAGS if getattr(args, key) is not None}
    if not roots:
        roots = default_roots(args.datasets_root)
        if not roots:
            raise SSMVOSError(f"no dataset root given and none of {', '.join(DEFAULT_FOLDERS.values())} "
                              f"found under {args.datasets_root}/; pass --davis2016 ROOT etc. or --datasets-root DIR")
        print("found: " + ", ".join(str(p) for p in roots.values()))
    index_datasets(roots, args.out_dir)
    return 0

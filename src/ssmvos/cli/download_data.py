"""``ssmvos download-data {davis2016,davis2017,davis2017_test,youtube}``: fetch a dataset."""
from __future__ import annotations

import argparse

EPILOG = """\
The DAVIS archives are downloaded into <root>/.downloads (an interrupted download
resumes when the command is run again), checked, unpacked and renamed to
<root>/DAVIS2016, <root>/DAVIS2017 or <root>/DAVIS2017_test; a failure leaves no
half-unpacked folder behind. A complete folder that is already there is kept.

YouTube-VOS needs a CodaLab registration: `download-data youtube` prints where to get
it and where to put it (<root>/YouTubeVOS/{train,valid}) and exits with status 0.

Environment: SSMVOS_DATA_URL (a base URL, e.g. a mirror, to fetch the archive files
from instead of the official servers)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..data.datasets import DATASETS

    p = subparsers.add_parser(
        "download-data", help="download and unpack a dataset (DAVIS) or explain how (YouTube-VOS)",
        description="Download and unpack a DAVIS dataset into the folder the other commands "
                    "expect, or print how to get YouTube-VOS; prints the dataset folder.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(DATASETS), type=lambda name: name.replace("-", "_"),
                   help="which dataset (dashes are accepted for underscores)")
    p.add_argument("--root", default="datasets", help="folder the datasets live in (default: datasets)")
    p.add_argument("--force", action="store_true", help="download and unpack again, replacing the folder")
    p.add_argument("--keep-archive", action="store_true", help="keep the zip in <root>/.downloads after unpacking")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS
    from ..data.download import download_dataset, manual_instructions

    if DATASETS[args.name].archive_url is None:
        print(manual_instructions(args.name, args.root))
        return 0
    print(download_dataset(args.name, args.root, force=args.force, keep_archive=args.keep_archive))
    return 0

"""``ssmvos download {davis16,davis17,youtube}``: fetch a published SSM checkpoint."""
from __future__ import annotations

import argparse
import sys

EPILOG = """\
Checkpoints are cached in $SSMVOS_HOME/checkpoints (default ~/.cache/ssmvos/checkpoints)
and checked to load as SSM checkpoints before they are kept. Commands that take
--weights or --resume also accept these names and download on first use.

Without internet access, download the file by hand, e.g.
  https://www.dropbox.com/s/7dctisjdrl2b47c/ssm_davis16.pt?dl=1
and pass its path with --weights (segment) or --resume (evaluate, train).

Environment: SSMVOS_HOME (cache folder); SSMVOS_WEIGHTS_URL (a base URL, e.g. a
mirror, to fetch ssm_<name>.pt from instead of Dropbox)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..weights import PUBLISHED

    p = subparsers.add_parser(
        "download", help="download a published SSM checkpoint",
        description="Download a published SSM checkpoint (trained on DAVIS 2016, DAVIS 2017 or "
                    "YouTube-VOS) into the cache and print its path.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=list(PUBLISHED), help="which checkpoint")
    p.add_argument("--force", action="store_true", help="download again even if the file is cached")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..weights import fetch_published, published_path

    cached = published_path(args.name)
    before = cached.stat().st_mtime_ns if cached.is_file() else None
    path = fetch_published(args.name, force=args.force, check_cached=True)  # a damaged cached copy: fetched again
    if before is not None and not args.force and path.stat().st_mtime_ns == before:
        print(f"{args.name} is already downloaded (use --force to download it again)", file=sys.stderr)
    print(path)
    return 0

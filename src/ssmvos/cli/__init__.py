"""The ``ssmvos`` command line: argparse subcommands, nothing beyond wiring.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers)`` declares its flags and ``run(args) -> int`` calls the library.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import SSMVOSError

#: Subcommand name -> module in this package (imported only when needed).
COMMANDS: dict[str, str] = {
    "index": "index",
    "evaluate": "evaluate",
    "merge": "merge",
    "segment": "segment",
    "download": "download",
    "download-data": "download_data",
    "score": "score",
    "train": "train",
    "export": "export",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ssmvos",
        description="SSM-VOS video object segmentation: index datasets, train, evaluate, "
        "merge, score J&F, segment your own videos and export the network to ONNX.",
    )
    parser.add_argument("--version", action="version", version=f"ssmvos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(f"{__name__}.{module_name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssmvos`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
        return status
    except SSMVOSError as exc:
        print(f"ssmvos {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ssmvos {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

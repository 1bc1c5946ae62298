"""The ``ssmvos`` command line: argparse subcommands, nothing beyond wiring.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers)`` declares its flags and ``run(args) -> int`` calls the library.

Error policy: a problem the user can cause or meet (a bad flag, file or checkpoint, a full
disk, a missing network) ends the command with one line on stderr and a non-zero status,
never a traceback; Ctrl-C ends it with one line and status 130, leaving only complete files.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import SSMVOSError
from .types import HelpFormatter, join_dashed_values

#: Subcommand name -> module in this package (imported only when needed).
COMMANDS: dict[str, str] = {
    "index": "index",
    "evaluate": "evaluate",
    "merge": "merge",
    "segment": "segment",
    "batch": "batch",
    "download": "download",
    "download-data": "download_data",
    "score": "score",
    "train": "train",
    "export": "export",
    "app": "app",
}


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: ssmvos's help layout (defaults shown, text wrapped with its own
    line breaks kept, which covers the raw layouts a module may ask for)."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="ssmvos", formatter_class=HelpFormatter,
        description="SSM-VOS video object segmentation: index datasets, train, evaluate, "
        "merge, score J&F, segment your own videos (one, or a manifest of many with batch) and export the "
        "network to ONNX.",
    )
    parser.add_argument("--version", action="version", version=f"ssmvos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for module_name in COMMANDS.values():
        importlib.import_module(f"{__name__}.{module_name}").add_parser(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; arguments no parser knows are reported with the subcommand's usage."""
    argv = join_dashed_values([str(a) for a in (sys.argv[1:] if argv is None else argv)])
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        command = getattr(args, "command", None)
        target = sub.choices[command] if sub is not None and command in sub.choices else parser
        target.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _os_error_line(exc: OSError) -> str:
    """One line for an OSError that reached the top (a write or read outside the helpers)."""
    from ..atomic import os_error_reason

    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{os_error_reason(exc)}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssmvos`` console script; returns the exit status."""
    command = "ssmvos"
    # FFmpeg (inside OpenCV) prints its own lines for damaged or unreadable videos ("moov atom
    # not found"); the command's one error line says what is wrong. Set the variable to see them.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        parser = build_parser()
        args = _parse(parser, argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        command = f"ssmvos {args.command}"
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe must surface here, not at interpreter exit
        return status
    except SSMVOSError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(f"{command}: interrupted{detail}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (e.g. `| head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a failed read or write the library did not word itself
        print(f"{command}: error: {_os_error_line(exc)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{command}: error: out of memory (try a smaller input size or batch)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

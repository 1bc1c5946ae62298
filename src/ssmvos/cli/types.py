"""Argument types and help layout shared by every subcommand: the front ends' validation layer.

Every numeric flag is parsed by :func:`int_range` or :func:`float_range`, so a value out of
range (``--max-batch 0``, ``--fix-margin nan``) is refused by argparse with the flag's name
and the subcommand's usage, before any work. Rules that need more than one flag or a
checkpoint (input sizes against keep_topk, memory) are ``ssmvos.model.ssm.input_problem``'s.
Nothing here imports torch: ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import math
import os
import textwrap
from collections.abc import Callable

from ..pretrained import DEFAULT_INPUT_SIZE
from ..numbers import parse_int


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    return f"at least {lo}" if lo is not None else f"at most {hi}"


def int_range(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [lo, hi] (None: unbounded on that side)."""

    def parse(text: str) -> int:
        value = parse_int(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi)}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] ((lo, hi] with ``above``); nan and inf are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if above and lo is not None and value <= lo:
            raise argparse.ArgumentTypeError(f"must be greater than {lo}" + (f" and at most {hi}" if hi is not None
                                                                             else "") + f", got {value:g}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi)}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


def frame_folder(text: str) -> str:
    """An argparse type: a folder of frames (an existing file is refused: a video goes to --video)."""
    if os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder of frames (a video file goes to --video)")
    return text


class InputSizeAction(argparse.Action):
    """``--input-size N`` (square) or ``--input-size H W``: sets ``input_height`` and ``input_width``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values,
                 option_string: str | None = None) -> None:
        if len(values) > 2:
            parser.error(f"argument {option_string}: takes N (a square) or H W, not {len(values)} values")
        namespace.input_height, namespace.input_width = values[0], values[-1]


#: The flags that set the network input size, as named in error messages.
INPUT_SIZE_FLAGS = "--input-size / --input-height / --input-width"


def add_input_size_flags(p: argparse.ArgumentParser, default: int = DEFAULT_INPUT_SIZE) -> None:
    """``--input-size N | H W`` and the original ``--input-height H --input-width W`` (the last one given wins)."""
    side = int_range(1)
    p.add_argument("--input-size", nargs="+", type=side, action=InputSizeAction, default=argparse.SUPPRESS,
                   help=f"network input size: N for N x N, or H W (default {default} {default}; "
                   "the height must be at least 193)")
    p.add_argument("--input-height", type=side, default=default, metavar="H",
                   help=f"network input height, as the original flag (default {default}; at least 193)")
    p.add_argument("--input-width", type=side, default=default, metavar="W",
                   help=f"network input width, as the original flag (default {default})")


class HelpFormatter(argparse.HelpFormatter):
    """Help as every ssmvos command shows it.

    * Each flag's help ends with its default, unless the text already gives it (or there is
      none to give: off switches, None).
    * Descriptions and epilogs are wrapped to the terminal paragraph by paragraph (blank lines
      separate paragraphs); a paragraph with indented lines (commands, lists) keeps its lines.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is None
                or action.default is argparse.SUPPRESS or isinstance(action.default, bool)):
            return text
        return f"{text} (default: %(default)s)"

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action, InputSizeAction):
            return "N | H W"
        return super()._format_args(action, default_metavar)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() for line in lines):
                for line in lines:
                    body = line.lstrip()
                    lead = indent + line[:len(line) - len(body)]
                    out += textwrap.wrap(body, width, initial_indent=lead, subsequent_indent=lead + "  ",
                                         break_long_words=False, break_on_hyphens=False) or [""]
            else:
                out += textwrap.wrap(" ".join(lines), width, initial_indent=indent, subsequent_indent=indent,
                                     break_long_words=False, break_on_hyphens=False)
            out.append("")
        return "\n".join(out[:-1])


def join_dashed_values(argv: list[str], flags: tuple[str, ...] = ("--mask",)) -> list[str]:
    """``--mask -1:m.png`` as ``--mask=-1:m.png``: argparse takes a value that starts with '-'
    for a flag ("expected one argument"); joined, it reaches ``segment.parse_mask``, which says
    what is wrong with it."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return out + argv[i:]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in flags and isinstance(nxt, str) and nxt.startswith("-") and nxt != "-" and ":" in nxt:
            out.append(f"{arg}={nxt}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out

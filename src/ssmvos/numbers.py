"""Whole numbers written by a user or held in a file name: ASCII digits only.

``str.isdigit()`` is also true for '²' or '٣', which ``int()`` refuses or reads as another
number; every place that parses a frame number, an object id, a step or a length from text
asks these two functions instead.
"""
from __future__ import annotations


def is_number(text: str) -> bool:
    """True when ``text`` is one or more ASCII digits 0-9 (no sign, no spaces)."""
    return text.isascii() and text.isdigit()


def parse_number(text: str) -> int | None:
    """``text`` as a non-negative int when :func:`is_number`, else None."""
    return int(text) if is_number(text) else None


def parse_int(text: str) -> int | None:
    """``text`` (surrounding spaces allowed, an optional sign, then ASCII digits) as an int,
    else None: a flag's value such as ``-1`` or ``+3``, never ``٣`` or ``²``."""
    body = text.strip()
    sign = -1 if body[:1] == "-" else 1
    if body[:1] in "+-" and body:
        body = body[1:]
    value = parse_number(body)
    return None if value is None else sign * value


__all__ = ["is_number", "parse_int", "parse_number"]

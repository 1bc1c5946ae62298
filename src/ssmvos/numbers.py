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


__all__ = ["is_number", "parse_number"]

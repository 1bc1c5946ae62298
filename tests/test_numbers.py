"""Numbers parsed from text (frame numbers, ids, steps, lengths, flag values): ASCII digits only."""
from __future__ import annotations

from ssmvos.numbers import is_number, parse_int, parse_number


def test_only_ascii_digits_are_numbers():
    assert [is_number(t) for t in ("0", "42", "00040")] == [True] * 3
    # str.isdigit() is true for all of these; int() refuses some and misreads others
    for text in ("\u00b2", "\u0663", "\uff13", "4\u00b2", "", " 4", "-1", "+1", "1_0", "1.0"):
        assert not is_number(text) and parse_number(text) is None, text
    assert parse_number("00040") == 40


def test_flag_values_take_a_sign_and_spaces_but_no_other_digits():
    assert [parse_int(t) for t in ("3", "-1", "+2", " 7 ")] == [3, -1, 2, 7]
    assert [parse_int(t) for t in ("\u0663", "-\u00b2", "-", "", "1_000", "0x1")] == [None] * 6

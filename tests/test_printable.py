"""``printable``: untrusted text quoted in a message, one escape form for all (SPEC §4.3, §13.1)."""

from __future__ import annotations

import json

import pytest

from tandem.printable import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name.md", "plain name.md"),
        ("café ✓ 🙂", "café ✓ 🙂"),  # printable beyond ASCII stays as it is
        ("\x1b[2J\x07", "\\u001b[2J\\u0007"),  # C0 controls
        ("a\nb\tc", "a\\u000ab\\u0009c"),  # one line, always
        ("\x7f\x9b", "\\u007f\\u009b"),  # DEL and C1
        ("x\u202eevil\u2028", "x\\u202eevil\\u2028"),  # bidi override, line separator
        ("tag\U000e0001", "tag\\udb40\\udc01"),  # beyond U+FFFF: its surrogate pair
    ],
)
def test_what_a_terminal_could_act_on_is_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_the_escapes_are_json_so_a_quoted_string_reads_back_exactly() -> None:
    raw = "\x00\x1b]0;t\x07\u202e\U000e0001 ok"
    assert json.loads(f'"{printable(raw)}"') == raw


def test_a_limit_caps_the_shown_text_with_an_ellipsis() -> None:
    assert printable("x" * 10, limit=10) == "x" * 10
    assert printable("x" * 11, limit=10) == "x" * 9 + "…"
    assert printable("\x1b" * 5, limit=8) == "\\u001b…"  # escapes count, and stay whole

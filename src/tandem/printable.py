"""Untrusted text (a router's answer, a name from a file) made safe to quote in a message.

One escape for every message that quotes such text: a JSON ``\\uXXXX`` for each character
a terminal could act on, so what is shown is one line, says exactly what was there, and
stays valid inside a JSON string (the router quotes its answer as one).
"""

from __future__ import annotations


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with C0/C1 controls, DEL, bidi overrides and line separators written as
    ``\\uXXXX`` (a character beyond U+FFFF as its surrogate pair); with ``limit``, capped
    at that many characters, the last one ``…`` (never inside an escape)."""
    pieces = [c if c.isprintable() else _escape(c) for c in text]
    shown = "".join(pieces)
    if limit is None or len(shown) <= limit:
        return shown
    kept, room = [], limit - 1
    for piece in pieces:
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept) + "…"


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

"""Secret redaction: values of environment variables whose names end in KEY, TOKEN,
SECRET or PASSWORD are replaced by ``***`` in the console, the turn logs, the event log and
notifications (SPEC §10, §13.1 rule 8).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

SECRET_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD")
MIN_SECRET_LEN = 4
MASK = "***"


class Redactor:
    r"""Replaces secret values, in every form an agent may print them, with ``***``.

    Forms (SPEC §13.1 rule 8): the value itself; each line of a multi-line value (a PEM key
    printed line by line; its ``-----BEGIN``/``-----END`` armour is not secret); and every
    JSON string encoding of either (``\/``, ``\uXXXX`` for any character, ``\n``).
    ``holdback`` tells a stream relay how many trailing bytes may be the start of a secret.

    Finding is fast (it runs on every byte an agent prints): a plain search for the value
    and its usual JSON form; only output that holds an optional escape (``\u``, ``\/``)
    is unescaped and searched again. Masking, which is rare, uses one regex of all forms.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        values: set[str] = set()
        for name, value in env.items():
            if name.upper().endswith(SECRET_SUFFIXES) and len(value) >= MIN_SECRET_LEN:
                values.add(value)
                values.update(_secret_lines(value))
        ordered = sorted(values, key=len, reverse=True)  # the longest form wins
        pattern = "|".join(_pattern(v) for v in ordered)
        self._text = re.compile(pattern) if ordered else None
        self._bytes = re.compile(pattern.encode("utf-8", "surrogateescape")) if ordered else None
        raw = [v.encode("utf-8", "surrogateescape") for v in ordered]
        usual = {json.dumps(v, ensure_ascii=False)[1:-1] for v in ordered} - set(ordered)
        self._raw = raw
        self._plain = raw + [v.encode("utf-8", "surrogateescape") for v in usual]
        self.holdback = max((_longest_form(v) for v in ordered), default=0)
        self._mask = MASK.encode()

    def __bool__(self) -> bool:
        return self._text is not None

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        if self._text is None:  # no secrets: nothing to encode and search (most runs)
            return value
        encoded = value.encode("utf-8", "surrogateescape")
        if not self.found(encoded, 0, len(encoded)):
            return value
        return self._text.sub(MASK, value)

    def found(self, data: bytes, start: int, end: int) -> bool:
        """True if ``data[start:end]`` may hold a secret (searched in place, no copy)."""
        if self._bytes is None:
            return False
        if any(data.find(form, start, end) >= 0 for form in self._plain):
            return True
        if data.find(b"\\", start, end) < 0:
            return False
        if data.find(b"\\u", start, end) < 0 and data.find(b"\\/", start, end) < 0:
            return False
        plain = _unescape(data[start:end])
        return any(form in plain for form in self._raw)

    def data(self, value: bytes) -> bytes:
        """``value`` with every secret masked."""
        if self._bytes is None or not self.found(value, 0, len(value)):
            return value
        return self._bytes.sub(self._mask, value)

    def safe_end(self, data: bytes) -> int:
        """Where ``data`` can be cut without splitting a secret: what follows may be one's
        start, and a secret that crosses the cut moves it to its end."""
        cut = max(0, len(data) - self.holdback)
        if self._bytes is not None:
            for match in self._bytes.finditer(data, max(0, cut - self.holdback)):
                if match.start() < cut < match.end():
                    cut = match.end()
        return cut

    def json(self, value: Any) -> Any:
        """A JSON-ready value with every string masked."""
        if self._text is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.json(v) for v in value]
        return value


_SHORT = {"/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}
_SHORT.update({"\b": "\\b", "\f": "\\f"})
_UNSHORT = {ord(escaped[1]): char.encode() for char, escaped in _SHORT.items()}
_ESCAPE = re.compile(
    rb"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    rb'|\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])'
)
_MIN_LINE_LEN = 8


def _unescape(data: bytes) -> bytes:
    """``data`` with every JSON string escape replaced by the character it stands for."""

    def one(match: re.Match[bytes]) -> bytes:
        high, low, unit, short = match.groups()
        if short is not None:
            return _UNSHORT[short[0]]
        if high is not None:
            code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00
            return chr(code).encode()
        return chr(int(unit, 16)).encode("utf-8", "surrogatepass")

    return _ESCAPE.sub(one, data)


def _secret_lines(value: str) -> list[str]:
    """The lines of a multi-line secret that are secret themselves (not PEM armour)."""
    lines = [line.strip() for line in value.splitlines()]
    if len(lines) < 2:
        return []
    return [line for line in lines if len(line) >= _MIN_LINE_LEN and not line.startswith("-----")]


def _pattern(value: str) -> str:
    """A regex matching ``value`` with any of its characters in any JSON string form."""
    return "".join(_char_forms(char) for char in value)


def _char_forms(char: str) -> str:
    forms = [re.escape(char)]
    if char in _SHORT:
        forms.append(re.escape(_SHORT[char]))
    units = [ord(char)] if ord(char) < 0x10000 else _surrogates(ord(char))
    forms.append("".join(r"\\u" + "".join(_hex_digit(d) for d in f"{u:04x}") for u in units))
    return "(?:" + "|".join(forms) + ")"


def _hex_digit(digit: str) -> str:
    return f"[{digit}{digit.upper()}]" if digit.isalpha() else digit


def _surrogates(code: int) -> list[int]:
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def _longest_form(value: str) -> int:
    return sum(12 if ord(c) >= 0x10000 else 6 for c in value)

"""Reading the text of a flag or an environment variable into a value.

Each reader raises ``ValueError`` with a message that completes "<flag>: ..." or
"<VARIABLE>=...: ..."; range checks of config values happen later, in ``tandem.checks``,
so a value reads the same wherever it came from.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from tandem.checks import MAX_COUNT


def text(value: str) -> str:
    """The text as it is (its checks come with its config key)."""
    return value


def blank_is_unset(value: str) -> str | None:
    """The scripts passed "" for "not set" (their defaults were empty strings)."""
    return value or None


def prompt(value: str) -> str | None:
    """The scripts' prompt names came without ``.md`` (``--prompt main``)."""
    if not value:
        return None
    return value if PurePosixPath(value).suffix else f"{value}.md"


def whole(value: str) -> int:
    """A whole number (its range is the config key's)."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a whole number") from None


def step(value: str) -> int:
    """A workflow step, counted from 0."""
    number = whole(value)
    if number < 0:
        raise ValueError(f"'{value}' is not a step (they are counted from 0)")
    return number


def iterations(value: str) -> int:
    """An iteration count or number, or another count of things: 1 to 10^9 (rule 7)."""
    count = whole(value)
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"must be from 1 to {MAX_COUNT}, not {count}")
    return count


def seconds(value: str) -> float:
    """A finite, non-negative number of seconds."""
    return _non_negative(value, "a number of seconds", " seconds")


def amount(value: str) -> float:
    """A finite, non-negative amount (of US dollars: ``--max-cost 50``)."""
    return _non_negative(value, "an amount", "")


def _non_negative(value: str, what: str, unit: str) -> float:
    try:
        found = float(value)
    except ValueError:
        raise ValueError(f"'{value}' is not {what}") from None
    if not math.isfinite(found) or found < 0:  # NaN and infinity too (rule 7)
        raise ValueError(f"must be 0 or more{unit}, not {value}")
    return found


def items(value: str) -> list[str]:
    """A comma-separated list, blanks dropped (``a.md, b.md``)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def pairs(value: str) -> dict[str, str]:
    """``KEY=AGENT`` pairs separated by commas (``galph=codex,ralph=claude``)."""
    pairs: dict[str, str] = {}
    for item in items(value):
        key, sep, found = item.partition("=")
        if not sep or not key.strip() or not found.strip():
            raise ValueError(
                f"takes KEY=AGENT pairs separated by commas, not '{item}' "
                "(e.g. galph=codex,ralph=claude)"
            )
        pairs[key.strip()] = found.strip()
    return pairs

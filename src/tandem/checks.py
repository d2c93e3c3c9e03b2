"""Value checks shared by the config file, the environment and the flags.

Each check returns the converted value or raises ``ValueError`` with a message that
completes "<key>: ...", so a bad value reads the same wherever it came from. Numbers are
bounded (SPEC §13.1 rule 7): never NaN or infinity, durations at most 30 days, counts at
most 10^9.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: --help need not import the state module
    from tandem.state import Actor

Check = Callable[[Any], Any]

MAX_SECONDS = 30 * 86400.0
MAX_COUNT = 10**9
MAX_BYTES = 2**50
ACTOR_ALIASES: dict[str, Actor] = {
    "galph": "galph",
    "supervisor": "galph",
    "ralph": "ralph",
    "loop": "ralph",
    "engineer": "ralph",
}
_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off"}
_SHOWN = 60  # characters of a bad value quoted in a message


def show(value: Any) -> str:
    """A bad value as a message quotes it: short, and a quoted boolean called out."""
    if isinstance(value, str):
        text = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
        return f'"{text}" (a quoted string)' if value.lower() in _BOOL_WORDS else f'"{text}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def boolean(value: Any) -> bool:
    """true or false, never a quoted word."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {show(value)}")
    return value


def string(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, not {show(value)}")
    return value


def opt(check: Check) -> Check:
    """``check``, or None (YAML ``null``)."""
    return lambda value: None if value is None else check(value)


def number(minimum: float, maximum: float = MAX_SECONDS, exclusive: bool = False) -> Check:
    """A finite number in range (seconds by default: at most 30 days)."""

    def check(value: Any) -> float:
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or not math.isfinite(value) or value > maximum:
            raise ValueError(f"must be a number from {minimum:g} to {maximum:g}, not {show(value)}")
        if value < minimum or (exclusive and value == minimum):
            sign = ">" if exclusive else "≥"
            raise ValueError(f"must be a number {sign} {minimum:g}, not {show(value)}")
        return float(value)

    return check


def integer(minimum: int, maximum: int = MAX_COUNT) -> Check:
    """A whole number in range (a count by default: at most 10^9)."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer ≥ {minimum}, not {show(value)}")
        if value > maximum:
            raise ValueError(f"must be at most {maximum}, not {show(value)}")
        return value

    return check


def str_list(value: Any) -> tuple[str, ...]:
    """A list of non-empty strings (a bare string is refused, not split)."""
    if isinstance(value, str):
        raise ValueError(f"must be a list of strings, not the string {show(value)}")
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of non-empty strings, not {show(value)}")
    return tuple(value)


def argv(value: Any) -> tuple[str, ...]:
    """A program and its arguments."""
    found = str_list(value)
    if not found:
        raise ValueError("must be a non-empty list: [program, arg, ...]")
    return found


def choice(choices: Mapping[str, str]) -> Check:
    """One of the names in ``choices`` (aliases map to their canonical name)."""

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(sorted(set(choices.values())))
            raise ValueError(f"must be one of {allowed}, not {show(value)}")
        return choices[value]

    return check


def mapping(key_check: Check, value_check: Check) -> Check:
    """A mapping whose keys and values pass their checks."""

    def check(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"must be a mapping, not {show(value)}")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            try:
                out[key_check(key)] = value_check(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out

    return check


def actor_name(value: Any) -> Actor:
    """An actor from its name or alias (supervisor, loop, engineer)."""
    if not isinstance(value, str) or value.lower() not in ACTOR_ALIASES:
        raise ValueError(f"'{value}' is not an actor (use galph/supervisor or ralph/loop/engineer)")
    return ACTOR_ALIASES[value.lower()]

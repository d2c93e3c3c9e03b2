"""What the structured parsers share: safe reads of decoded JSON and the console lines.

Agent output is untrusted text: any field may be missing or of another type, so parsers
read fields through ``mapping``/``items``/``text``/``integer``/``number``, which return an
empty or None value instead of raising.

Console line formats (one event may give several lines)::

    <assistant text, one console line per text line>
    → Bash: echo hello | tee hello.txt
      ← ok: hello
      ← failed (exit 3): oops
    result: ok, 2 turns, 0.5s, $0.0003, tokens in 20 / out 10
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from tandem.agents.base import one_line
from tandem.times import human_duration


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """``value`` if it is a string."""
    return value if isinstance(value, str) else None


def integer(value: Any) -> int | None:
    """``value`` if it is a JSON integer (not a boolean)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | None:
    """``value`` as a finite float if it is a JSON number (JSON allows NaN and huge ints)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def int_fields(source: Any, keys: Iterable[str]) -> dict[str, int]:
    """The integer fields named ``keys`` of a JSON object, as a flat dict."""
    fields = mapping(source)
    return {key: value for key in keys if (value := integer(fields.get(key))) is not None}


def not_json(line: str) -> list[str]:
    """How a line that is not a JSON event is shown: as it is, unless it is blank."""
    return [line] if line.strip() else []


def text_lines(value: str) -> list[str]:
    """Text as console lines, without leading or trailing blank lines."""
    return value.strip("\r\n").splitlines()


def first_line(value: str) -> str:
    """The first non-blank line of ``value``, squeezed."""
    return next((one_line(line) for line in value.splitlines() if line.strip()), "")


def summary(tool_input: Any, keys: Iterable[str]) -> str:
    """The first string among ``keys`` of a tool's input, else the whole input squeezed."""
    fields = mapping(tool_input)
    for key in keys:
        if (value := text(fields.get(key))) is not None:
            return value
    try:
        return json.dumps(tool_input, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "…"


def tool_line(tool: str, detail: str) -> str:
    """``→ tool: detail`` on one line."""
    return one_line(f"→ {tool}: {detail}" if detail else f"→ {tool}", limit=200)


def outcome_line(failed: bool, output: str, exit_code: int | None = None) -> str:
    """``  ← ok: <first line>`` or ``  ← failed (exit N): <first line>``."""
    status = "failed" if failed else "ok"
    if exit_code is not None:
        status += f" (exit {exit_code})"
    first = first_line(output)
    return f"  ← {status}: {first}" if first else f"  ← {status}"


def result_line(
    *,
    is_error: bool,
    turns: int | None = None,
    seconds: float | None = None,
    cost_usd: float | None = None,
    tokens_in: int | None = None,
    tokens_out: int | None = None,
) -> str:
    """``result: ok|error, <n> turns, <duration>, $<cost>, tokens in <i> / out <o>``.

    Parts that are not known are left out.
    """
    parts = ["error" if is_error else "ok"]
    if turns is not None:
        parts.append(f"{turns} turn" + ("" if turns == 1 else "s"))
    if seconds is not None:
        parts.append(human_duration(max(seconds, 0.0)))
    if cost_usd is not None:
        parts.append(f"${cost_usd:.4f}")
    if tokens_in is not None and tokens_out is not None:
        parts.append(f"tokens in {tokens_in} / out {tokens_out}")
    return "result: " + ", ".join(parts)

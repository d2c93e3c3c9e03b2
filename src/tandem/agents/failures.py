"""What the parsers share to classify a failed run (SPEC §14.1): HTTP statuses, reset times.

Each parser knows its own CLI's wording (cited where it matches it) and uses these for the
parts every CLI has: an HTTP status, a wall-clock reset time ("resets 8:40pm (UTC)",
"try again at 11:44 PM") or a relative one ("try again in 3 days 6 hours", "retry in
2.5s"). Reset times are returned as the agent said them; the executor checks that they
make sense.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tandem.execution import FailureKind

MAX_RESET_AHEAD = timedelta(days=31)  # usage windows are hours to a month; more is noise
_CLOCK = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)(?![a-z])(?:\s*\(([^)]{1,64})\))?", re.I
)
_SPAN = re.compile(r"\bin\s+((?:\d{1,9}(?:\.\d{1,6})?\s*[a-z]{1,7}\b[\s,]*(?:and\s+)?)+)", re.I)
_UNIT_SECONDS = {
    "ms": 0.001,
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}
_AMOUNT = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*([a-z]+)", re.I)


def http_kind(status: int | None) -> FailureKind | None:
    """429 is a rate limit, 401/403 auth, 5xx (529 overloaded among them) transient."""
    if status is None:
        return None
    if status == 429:
        return FailureKind.RATE_LIMIT
    if status in (401, 403):
        return FailureKind.AUTH
    if 500 <= status <= 599:
        return FailureKind.TRANSIENT
    return None


def clock_reset(text: str, now: datetime) -> float | None:
    """The next time after ``now`` at the clock time ``text`` names, as Unix seconds.

    A zone in parentheses ("8:40pm (UTC)", "2pm (Asia/Shanghai)") is used when known;
    without one the time is local, as the CLI printed it on this machine.
    """
    match = _CLOCK.search(text)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if not (1 <= hour <= 12 and minute < 60):
        return None
    hour = hour % 12 + (12 if match.group(3).lower().startswith("p") else 0)
    zone = _zone(match.group(4)) or now.astimezone().tzinfo or timezone.utc
    local = now.astimezone(zone)
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= local:
        at += timedelta(days=1)
    return at.timestamp()


def relative_seconds(text: str) -> float | None:
    """The span ``text`` names after "in" ("in 3 days 6 hours 57 minutes", "in 2.5s")."""
    span = _SPAN.search(text)
    if span is None:
        return None
    total = 0.0
    for amount, unit in _AMOUNT.findall(span.group(1)):
        seconds = _UNIT_SECONDS.get(unit.lower())
        if seconds is None:
            return None
        total += float(amount) * seconds
    return total


def checked_reset(reset_at: float | None, now: datetime) -> datetime | None:
    """A reset time that makes sense: a finite time after ``now``, at most a month ahead.

    Anything else (in the past, years ahead, not a number) is dropped: the caller then
    backs off as for a limit without a reset time, and never waits forever.
    """
    if reset_at is None or not math.isfinite(reset_at):
        return None
    try:
        at = datetime.fromtimestamp(reset_at, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return at if now < at <= now + MAX_RESET_AHEAD else None


def _zone(name: str | None) -> ZoneInfo | timezone | None:
    if not name:
        return None
    name = name.strip()
    if name.upper() in ("UTC", "GMT", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None

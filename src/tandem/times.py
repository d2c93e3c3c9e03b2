"""Time as tandem shows and reads it: now in UTC, the state file's stamps, durations.

One module so that every layer (logs, limits, the state, the screens) can use them without
importing the state model or the logs (which would make a cycle).
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, in UTC (the state file shows it to the second, events to the millisecond)."""
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with a Z: ``2026-01-20T03:29:29Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse ``2026-01-20T03:29:29Z`` (offsets are accepted too); ValueError if bad."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 has no UTC date
        raise ValueError("out of range") from None


def human_duration(seconds: float) -> str:
    """``4.2s``, ``42s``, ``12m05s``, ``2h00m00s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{secs}s"

"""What the local event log adds to the report (docs/events.md): what only this machine saw.

Receipts are the shared truth (both clones read the same history), but some things never
reach a commit: a turn whose commit was refused, a pause's deadline, the retried attempts
of a turn, a run that ended with an error. The report reads them from
``<logs>/<branch>/events.jsonl`` and merges them in; a ``turn_end`` whose turn also has a
receipt is left out, so no turn is drawn or listed twice. A line that is not an event is
skipped and counted, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from tandem.logs import read_events
from tandem.receipts import Receipt
from tandem.times import parse_time


class Turn(NamedTuple):
    """A turn that only the event log knows of (no receipt in the history read)."""

    actor: str
    iteration: int
    result: str  # ok | fail:<kind> | pause:<kind>, as a receipt would say
    prompt: str | None
    agent: str | None
    start: float  # Unix seconds
    duration: float
    reason: str | None
    log: str | None


class Pause(NamedTuple):
    """A pause this machine took: from ``since`` to ``until`` (Unix seconds)."""

    actor: str
    iteration: int | None
    kind: str
    reason: str
    since: float
    until: float


class Mark(NamedTuple):
    """A moment worth a mark: a retried attempt, or a run that ended with an error."""

    what: str  # retry | error
    actor: str | None
    iteration: int | None
    at: float
    reason: str


@dataclass
class Seen:
    """The event log's additions, and how many lines could not be read as events."""

    turns: list[Turn] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    malformed: int = 0


def read(path: Path, receipts: Iterable[Receipt], *, root: Path, after: float = 0.0) -> Seen:
    """The events in ``path`` at or after ``after`` (Unix seconds) that add to ``receipts``."""
    seen = Seen()
    known = _keys(receipts, root)
    unreadable: list[str] = []
    for record in read_events(path, unreadable):
        try:
            at = parse_time(str(record["ts"])).timestamp()
            if at >= after:
                _add(seen, record, at, known, root)
        except (KeyError, TypeError, ValueError):
            seen.malformed += 1
    seen.malformed += len(unreadable)
    return seen


def _add(seen: Seen, record: dict[str, Any], at: float, known: set[Any], root: Path) -> None:
    kind = record["event"]
    if kind == "turn_end":
        turn = _turn(record, at)
        if _key(turn.actor, turn.iteration, turn.result, turn.log, root) not in known:
            seen.turns.append(turn)
    elif kind == "pause":
        since = parse_time(str(record.get("since") or record["ts"])).timestamp()
        seen.pauses.append(
            Pause(
                _actor(record["actor"]),
                _iteration(record.get("iteration")),
                str(record["kind"]),
                str(record.get("reason") or ""),
                since,
                max(since, parse_time(str(record["until"])).timestamp()),
            )
        )
    elif kind in ("retry", "error"):
        reason = record.get("reason") if kind == "retry" else record.get("error")
        actor = record.get("actor")
        mark = Mark(
            kind,
            _actor(actor) if actor is not None else None,
            _iteration(record.get("iteration")),
            at,
            str(reason or record.get("kind") or kind),
        )
        seen.marks.append(mark)


def _turn(record: dict[str, Any], ended: float) -> Turn:
    status, kind = str(record["status"]), record.get("kind")
    result = "ok" if status == "ok" else f"{'pause' if status == 'paused' else 'fail'}:"
    if result != "ok":
        result += str(kind or ("interrupted" if status == "interrupted" else "agent"))
    duration = float(record.get("duration_secs") or 0.0)
    if duration < 0:
        raise ValueError("negative duration")
    return Turn(
        _actor(record["actor"]),
        _iteration(record["iteration"]) or 0,
        result,
        record.get("prompt"),
        record.get("agent"),
        ended - duration,
        duration,
        record.get("failure"),
        record.get("log"),
    )


def _actor(value: object) -> str:
    if value not in ("galph", "ralph"):
        raise ValueError(f"actor {value!r}")
    return str(value)


def _iteration(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"iteration {value!r}")
    return value


def _keys(receipts: Iterable[Receipt], root: Path) -> set[Any]:
    found: set[Any] = set()
    for r in receipts:
        found.add(_key(r.actor, r.iteration, r.result, r.log, root))
    return found


def _key(actor: str, iteration: int, result: str, log: str | None, root: Path) -> Any:
    """One turn's identity: its log file when it has one, else actor, iteration and result."""
    if log:
        return os.path.join(root, log)  # strings, not Paths: one per receipt of the history
    return (actor, iteration, result)

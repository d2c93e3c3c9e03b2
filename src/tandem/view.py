"""How a watch ``Snapshot`` reads: the plain status line and the rich frame (SPEC §17).

The words are built once, in ``lines``; the live frame and the one-line-per-change mode
both show them, so a person reading either sees the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tandem.receipts import Receipt
from tandem.times import human_duration, parse_time

if TYPE_CHECKING:  # rich loads only when a frame is drawn: `tandem status` uses the words
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from tandem.watch import Snapshot

_STYLES = {"running": "bold green", "paused": "bold yellow", "failed": "bold red"}
_FIXED_ROWS = 10  # title, headline, status, reason, lease, spent, two rules, two spare


@dataclass(frozen=True)
class Lines:
    """The words of one snapshot."""

    headline: str  # iteration, progress, whose turn
    status: str  # what is happening now (with elapsed time or countdown)
    steady: str  # the same without the ticking numbers: what "a change" means
    mood: str  # running, paused, failed, waiting, stopped
    reason: str | None  # why it paused or failed
    lease: str | None
    spent: str | None


def lines(snap: Snapshot) -> Lines:
    """Describe ``snap`` in words."""
    state = snap.state or {}
    if not state:
        problem = snap.problem or "no state"
        return Lines(f"{snap.where}: {problem}", problem, problem, "waiting", None, None, None)
    status = str(state.get("status", "?"))
    expected = state.get("expected_actor", "?")
    headline = (
        f"iteration {state.get('iteration', '?')}{_progress(snap, state)} · {expected}'s turn"
    )
    mood, now_text, steady = _status(snap, state, status)
    reason = _object(state.get({"paused": "pause", "failed": "failure"}.get(status, ""))).get(
        "reason"
    )
    return Lines(
        headline,
        now_text,
        steady,
        mood,
        str(reason) if reason else None,
        _lease(snap, state),
        _spent(snap, state),
    )


def _progress(snap: Snapshot, state: Mapping[str, Any]) -> str:
    run = snap.run
    iteration = state.get("iteration")
    if run is None or run.first is None or not run.iterations or not isinstance(iteration, int):
        return ""
    done_in_run = min(iteration - run.first + 1, run.iterations)
    return f" · run {max(done_in_run, 1)} of {run.iterations}"


def _status(snap: Snapshot, state: Mapping[str, Any], status: str) -> tuple[str, str, str]:
    """(mood, text now, text without the ticking part)."""
    if status.startswith("running-"):
        return _running(snap, state, status.removeprefix("running-"))
    if status == "paused":
        steady, now_text = pause_words(_object(state.get("pause")), snap.now)
        return "paused", now_text, steady
    if status == "failed":
        failure = _object(state.get("failure"))
        text = (
            f"failed: {failure.get('actor', '?')} at iteration {failure.get('iteration', '?')} "
            f"({failure.get('prompt') or '-'})"
        )
        return "failed", text, text
    if snap.run is not None and snap.run.ended:
        text = f"stopped: {snap.run.ended}"
        return "stopped", text, text
    text = f"waiting for {state.get('expected_actor', '?')} ({status})"
    return "waiting", text, text


def pause_words(pause: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """(``paused: galph usage_limit until 20:40Z``, the same with the time left), SPEC §14.2."""
    what = f"paused: {pause.get('actor', '?')} {pause.get('kind', '?')}"
    until = _time(pause.get("until"))
    if until is None:
        return what, what
    steady = f"{what} until {until:%H:%M}Z"
    left = max(0.0, (until - now).total_seconds())
    return steady, f"{steady} (in {human_duration(left)}); the turn reruns then"


def _running(snap: Snapshot, state: Mapping[str, Any], actor: str) -> tuple[str, str, str]:
    turn = snap.running
    prompt = f" {turn.prompt}" if turn and turn.prompt else ""  # unknown from another clone
    agent = f" with {turn.agent}" if turn and turn.agent else ""
    steady = f"running: {actor}{prompt}{agent}"
    started = (turn.started if turn else None) or _time(state.get("last_update"))
    if started is None:
        return "running", steady, steady
    elapsed = max(0.0, (snap.now - started).total_seconds())
    return "running", f"{steady}, {human_duration(elapsed)}", steady


def _lease(snap: Snapshot, state: Mapping[str, Any]) -> str | None:
    owner = state.get("lease_owner")
    if not owner:
        return None
    parts = [f"lease {owner}"]
    taken = _time(state.get("last_update"))
    if taken is not None:
        parts.append(f"taken {human_duration(max(0.0, (snap.now - taken).total_seconds()))} ago")
    expires = _time(state.get("lease_expires_at"))
    if expires is not None:
        left = (expires - snap.now).total_seconds()
        parts.append(
            f"expires in {human_duration(left)}"
            if left > 0
            else f"EXPIRED {human_duration(-left)} ago"
        )
    return " · ".join(parts)


def _spent(snap: Snapshot, state: Mapping[str, Any]) -> str | None:
    """The loop's totals (SPEC §14.4) against its budgets, when the state keeps them."""
    spent = state.get("spent")
    if not isinstance(spent, dict):
        return None
    limits = snap.limits
    parts = []
    for key, shown in (("cost_usd", "${:,.2f}"), ("tokens", "{:,} tokens"), ("turns", "{} turns")):
        value = spent.get(key)
        if not isinstance(value, (int, float)):
            continue
        text = shown.format(value)
        limit = limits.get(f"max_{key}")
        if limit is not None:
            text += " of " + shown.format(limit).removesuffix(" tokens").removesuffix(" turns")
        parts.append(text)
    return "spent " + " · ".join(parts) if parts else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def plain(snap: Snapshot) -> str:
    """The status as one line, without ticking numbers (printed when it changes)."""
    words = lines(snap)
    parts = [words.headline, words.steady]
    if words.reason:
        parts.append(words.reason)
    if words.lease:
        parts.append(words.lease.split(" · ")[0])
    if snap.note:
        parts.append(snap.note)
    return " · ".join(parts)


def frame(snap: Snapshot, width: int, height: int) -> RenderableType:
    """The live view, sized for a ``width`` by ``height`` terminal (80 by 24 fits)."""
    from rich.console import Group
    from rich.rule import Rule
    from rich.text import Text

    words = lines(snap)
    turns = snap.turns[-5:]
    room = max(0, height - _FIXED_ROWS - len(turns))
    output = snap.running.output[-room:] if snap.running and room else ()
    title = Text.assemble(
        ("tandem watch", "bold"), f"  {snap.where}  {snap.now:%H:%M:%S}Z", ("   q quits", "dim")
    )
    rows: list[RenderableType] = [
        _line(title, width),
        _line(Text(words.headline, style="bold"), width),
        _line(Text(words.status, style=_STYLES.get(words.mood, "")), width),
    ]
    if words.reason:
        rows.append(_line(Text(f"  {words.reason}", style=_STYLES.get(words.mood, "")), width))
    rows += [_line(Text(t, style="dim"), width) for t in (words.lease, words.spent) if t]
    if snap.note:
        rows.append(_line(Text(snap.note, style="yellow"), width))
    if output:
        rows.append(Rule("last output", style="dim"))
        rows += [_line(Text(t), width) for t in output]
    rows.append(Rule("last turns", style="dim"))
    rows.append(_turns(turns) if turns else Text("no receipts yet", style="dim"))
    return Group(*rows)


def _line(text: Text, width: int) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    text.truncate(width, overflow="ellipsis")
    return text


def _turns(turns: tuple[Receipt, ...]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 1))
    for _ in range(7):
        table.add_column(no_wrap=True, overflow="ellipsis")
    for r in reversed(turns):
        style = {"ok": "green", "fail": "red", "pause": "yellow"}.get(r.outcome, "")
        table.add_row(
            f"i{r.iteration}",
            r.actor,
            (r.prompt or "-")[:18],
            (r.agent or "-")[:10],
            human_duration(r.duration) if r.duration is not None else "?",
            Text(r.result, style=style),
            "-" if r.cost_usd is None else f"${r.cost_usd:.4f}",
        )
    return table

"""What an unattended loop does about limits, errors and spending (SPEC §14): pure policy.

Nothing here sleeps, reads a clock or draws a random number by itself: callers pass
``now`` (Unix seconds) and a ``random.Random``, so the turn loop and the tests decide
time and chance. Three parts:

* **Pause** (§14.2). ``plan_pause(kind, ...)`` for a turn that ended with ``usage_limit``
  or ``rate_limit`` returns a ``Pause`` (wait until ``until``, then rerun the same turn)
  or a ``GiveUp`` (the turn fails with its kind). A reset time, when the agent gave one,
  is used as it is, plus a small jitter; without one (or with one that makes no sense:
  not a number, in the past) the waits back off from 60 s, doubling, to at most 30 min.
  ``limits.max_pause_secs`` bounds the total pause of one turn, so no answer of an agent
  makes the loop wait forever. ``Pause.console_line(now)`` is the line the console and
  the heartbeat print; ``peer_line`` is what the other side shows while it waits.
* **Retries** (§14.3). ``retry_delay(kind, retries_done, retries)`` is the wait before
  the next attempt of a ``transient`` failure (30 s, 60 s, 120 s ... ±20 %; the first
  is ``agent.retry_delay_secs``), or None when
  the turn must fail: the kind is never retried, or ``agent.retries`` is used up.
* **Budgets** (§14.4). ``Spent`` is the running total kept in the state; ``Spent.add``
  adds one run's receipt (a router run adds cost and tokens, not a turn). A ``Budget``
  says ``reached(spent)``: None, or the stop message.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from tandem.times import human_duration

PauseKind = Literal["usage_limit", "rate_limit"]
PAUSED_KINDS: frozenset[str] = frozenset({"usage_limit", "rate_limit"})
RETRIED_KINDS: frozenset[str] = frozenset({"transient"})
DEFAULT_MAX_PAUSE_SECS = 86400.0
BACKOFF_FIRST_SECS = 60.0
BACKOFF_MAX_SECS = 1800.0
# The shortest pause: a reset "in 0.001 s" must not rerun the agent in a tight loop, and
# less than this left of max_pause_secs is not worth another run.
MIN_PAUSE_SECS = 1.0
# Spreads the reruns of machines that hit the same reset; a tenth of a short wait at most,
# so a limit that resets in a few seconds is not stretched to a minute.
JITTER_MAX_SECS = 60.0
JITTER_SHARE = 0.1
RETRY_FIRST_SECS = 30.0
RETRY_MAX_SECS = 1800.0  # with a large agent.retries the doubling stops at 30 min
RETRY_JITTER = 0.2


@dataclass(frozen=True)
class Pause:
    """Wait until ``until`` (Unix seconds), then run the same actor's turn again."""

    kind: PauseKind
    until: float
    reason: str  # "claude usage limit (five_hour)"
    backoff: bool  # True when no usable reset time was given

    def console_line(self, now: float) -> str:
        """``paused: claude usage limit (five_hour) until 20:40Z (in 2h59m); the turn
        reruns then`` (the heartbeat repeats it with the time left)."""
        until, left = clock(self.until, now), short_duration(self.until - now)
        return f"paused: {self.reason} until {until} (in {left}); the turn reruns then"


@dataclass(frozen=True)
class GiveUp:
    """Stop pausing: the turn fails with ``kind``, for ``reason``."""

    kind: PauseKind
    reason: str


def plan_pause(
    kind: PauseKind,
    *,
    agent: str,
    now: float,
    rng: random.Random,
    paused_secs: float = 0.0,
    waits: int = 0,
    reset_at: object = None,
    retry_after: object = None,
    detail: str | None = None,
    max_pause_secs: float = DEFAULT_MAX_PAUSE_SECS,
) -> Pause | GiveUp:
    """The next pause of a turn that ended with ``kind``, or the decision to stop pausing.

    ``paused_secs`` is how long this turn has already been paused and ``waits`` how many
    pauses it had (for the backoff). ``reset_at`` (Unix seconds) or ``retry_after``
    (seconds from now) are what the agent reported, as they came: anything that is not a
    finite number, or a time already past, counts as not given. ``detail`` names the limit
    (``five_hour``).
    """
    reason = describe(agent, kind, detail)
    bound = f"limits.max_pause_secs ({max_pause_secs:g})"
    left = max_pause_secs - paused_secs
    if left < MIN_PAUSE_SECS:
        spent = short_duration(paused_secs)
        return GiveUp(kind, f"{reason}: paused {spent} in total, the most {bound} allows")
    target = _reset_time(now, reset_at, retry_after)
    if target is None:
        wait = min(BACKOFF_FIRST_SECS * 2.0 ** min(waits, 16), BACKOFF_MAX_SECS)
        wait = min(wait + _jitter(wait, rng), left)
        return Pause(kind, now + wait, reason, backoff=True)
    wait = max(target - now, MIN_PAUSE_SECS)
    if wait > left:
        return GiveUp(kind, f"{reason}: it resets at {stamp(target)}, later than {bound} allows")
    return Pause(kind, now + min(wait + _jitter(wait, rng), left), reason, backoff=False)


def _reset_time(now: float, reset_at: object, retry_after: object) -> float | None:
    """When the limit lifts, if the agent said so in a way that makes sense."""
    if (reset := finite(reset_at)) is not None and reset > now:
        return reset
    if (after := finite(retry_after)) is not None and after > 0:
        return now + after
    return None


def _jitter(wait: float, rng: random.Random) -> float:
    return rng.uniform(0.0, min(JITTER_MAX_SECS, JITTER_SHARE * wait))


def finite(value: object) -> float | None:
    """``value`` as a finite float (a number, or a string holding one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def describe(agent: str, kind: str, detail: str | None = None) -> str:
    """``claude usage limit (five_hour)``, ``codex rate limit``."""
    words = kind.replace("_", " ")
    return f"{agent} {words} ({detail})" if detail else f"{agent} {words}"


def peer_line(actor: str, kind: str, until: float, now: float, window: str | None = None) -> str:
    """What the waiting side shows: ``galph paused until 20:40Z (usage limit)``, with the
    limit's window when the agent named it: ``(usage limit, five_hour)``."""
    named = f", {window}" if window else ""
    return f"{actor} paused until {clock(until, now)} ({kind.replace('_', ' ')}{named})"


def clock(when: float, now: float) -> str:
    """``20:40Z`` today (UTC), ``2026-12-03 20:40Z`` on another day."""
    moment = datetime.fromtimestamp(when, timezone.utc)
    today = datetime.fromtimestamp(now, timezone.utc).date()
    day = "" if moment.date() == today else f"{moment:%Y-%m-%d} "
    return f"{day}{moment:%H:%M}Z"


def stamp(when: float) -> str:
    """``2026-12-03T20:40:00Z``; a time too far out for a date is shown as its number."""
    try:
        return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{when:.0f} (Unix seconds)"


def short_duration(seconds: float) -> str:
    """``2h59m``, ``12m05s``, ``42s``: how long a pause has left, at most two units."""
    total = max(0, math.ceil(seconds))
    days, rest = divmod(total, 86400)
    if days:
        return f"{days}d{rest // 3600:02d}h"
    if total >= 3600:
        return f"{total // 3600}h{rest % 3600 // 60:02d}m"
    return human_duration(total)


@dataclass(frozen=True)
class PauseRecord:
    """The state's ``pause`` while a turn waits out a limit (SPEC §14.2).

    Besides the fields of §14.2, ``since`` (when this turn first paused) and ``waits``
    (how many pauses it had) let a restart keep ``max_pause_secs`` and the backoff;
    ``window`` is the limit's window when the agent named it (``five_hour``).
    """

    actor: str
    iteration: int
    prompt: str | None
    kind: str
    reason: str
    until: float  # Unix seconds
    since: float
    waits: int = 1
    window: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The object stored under ``pause`` (times as ISO 8601 UTC)."""
        return {
            "actor": self.actor,
            "iteration": self.iteration,
            "prompt": self.prompt,
            "kind": self.kind,
            "reason": self.reason,
            "until": stamp(self.until),
            "since": stamp(self.since),
            "waits": self.waits,
            "window": self.window,
        }

    @classmethod
    def from_json(cls, data: object) -> PauseRecord:
        """Parse a stored ``pause``; ValueError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("an object {actor, iteration, prompt, kind, reason, until}")
        kind, waits = data.get("kind"), data.get("waits", 1)
        if kind not in PAUSED_KINDS:
            raise ValueError("a pause whose kind is usage_limit or rate_limit")
        iteration, actor = data.get("iteration"), data.get("actor")
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 1:
            raise ValueError("a pause with an iteration ≥ 1")
        if actor not in ("galph", "ralph") or not isinstance(waits, int):
            raise ValueError("a pause with an actor (galph or ralph) and a count of waits")
        prompt, reason, window = data.get("prompt"), data.get("reason"), data.get("window")
        until = _unix(data.get("until"))
        return cls(
            str(actor),
            iteration,
            prompt if isinstance(prompt, str) else None,
            str(kind),
            reason if isinstance(reason, str) else str(kind),
            until,
            _unix(data.get("since", data.get("until"))),
            max(waits, 1),
            window if isinstance(window, str) and window else None,
        )


def _unix(value: object) -> float:
    """An ISO 8601 UTC time of the state as Unix seconds; ValueError if it is not one."""
    if not isinstance(value, str):
        raise ValueError("a pause with 'until' as an ISO 8601 UTC time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("a pause with 'until' as an ISO 8601 UTC time") from None
    if moment.tzinfo is None:
        raise ValueError("a pause with 'until' in UTC (ending in Z)")
    return moment.timestamp()


# -- retries -----------------------------------------------------------------------------


def retry_delay(
    kind: str,
    retries_done: int,
    retries: int,
    rng: random.Random,
    first: float = RETRY_FIRST_SECS,
) -> float | None:
    """Seconds before attempt ``retries_done + 2`` of a failed turn, or None: fail it.

    Only ``transient`` failures are retried, at most ``retries`` times (``agent.retries``,
    default 0): after ``first`` (``agent.retry_delay_secs``, 30 s), then 60 s, 120 s ...,
    each ±20 %.
    """
    if kind not in RETRIED_KINDS or retries_done >= retries:
        return None
    base = min(first * 2.0 ** min(retries_done, 16), max(RETRY_MAX_SECS, first))
    return base * rng.uniform(1.0 - RETRY_JITTER, 1.0 + RETRY_JITTER)


def retry_line(retries_done: int, retries: int, delay: float, reason: str) -> str:
    """``retrying in 31s (1/2): transient: HTTP 503`` (logged as an event as well)."""
    return f"retrying in {short_duration(delay)} ({retries_done + 1}/{retries}): {reason}"


# -- budgets -----------------------------------------------------------------------------

# Token counts that add up to a run's total when the agent gives no ``total_tokens``:
# claude reports cache reads and writes apart from ``input_tokens``, opencode reasoning
# apart from output. codex's ``cached_input_tokens`` is part of its input: not added.
_TOKEN_PARTS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


def run_tokens(usage: Mapping[str, int]) -> int:
    """All tokens one agent run used, from its parsed ``usage``."""
    total = usage.get("total_tokens")
    if isinstance(total, int) and total >= 0:
        return total
    return sum(count for key in _TOKEN_PARTS if isinstance(count := usage.get(key), int))


@dataclass(frozen=True)
class Spent:
    """The running totals of a loop, kept in the state (``spent``) and in receipts."""

    cost_usd: float = 0.0
    tokens: int = 0
    turns: int = 0

    def add(self, cost_usd: float | None, tokens: int, turns: int = 1) -> Spent:
        """These totals plus one run (``turns=0`` for a router run); no cost adds 0."""
        cost = cost_usd if cost_usd is not None and math.isfinite(cost_usd) else 0.0
        return Spent(
            self.cost_usd + max(cost, 0.0), self.tokens + max(tokens, 0), self.turns + turns
        )

    def to_json(self) -> dict[str, Any]:
        """``{"cost_usd": ..., "tokens": ..., "turns": ...}``."""
        return {"cost_usd": self.cost_usd, "tokens": self.tokens, "turns": self.turns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Spent:
        """The totals as stored; missing or unusable fields count as 0."""
        data = data or {}
        cost = finite(data.get("cost_usd")) or 0.0
        tokens, turns = data.get("tokens"), data.get("turns")
        return cls(
            max(cost, 0.0),
            tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else 0,
            turns if isinstance(turns, int) and not isinstance(turns, bool) else 0,
        )


@dataclass(frozen=True)
class Budget:
    """``limits.max_cost_usd``, ``max_tokens`` and ``max_turns``; None means no limit."""

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_turns: int | None = None

    def reached(self, spent: Spent) -> str | None:
        """None, or ``budget reached: $50.12 spent of limits.max_cost_usd $50.00``."""
        if self.max_cost_usd is not None and spent.cost_usd >= self.max_cost_usd:
            return (
                f"budget reached: ${spent.cost_usd:,.2f} spent of limits.max_cost_usd "
                f"${self.max_cost_usd:,.2f}"
            )
        if self.max_tokens is not None and spent.tokens >= self.max_tokens:
            return (
                f"budget reached: {spent.tokens:,} tokens used of limits.max_tokens "
                f"{self.max_tokens:,}"
            )
        if self.max_turns is not None and spent.turns >= self.max_turns:
            return f"budget reached: {spent.turns} turns run of limits.max_turns {self.max_turns}"
        return None

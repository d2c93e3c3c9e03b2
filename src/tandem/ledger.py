"""What the loop did in total, from the receipts: per actor, per agent, per prompt.

``status`` (and budgets) need only the totals, not every receipt, so ``summarize`` keeps
them in a small cache beside the logs, keyed by the commit they count up to: the next
call reads only the receipts after that commit (when it is an ancestor; any other
history is counted afresh). The cache is a convenience, never the truth: a missing or
unreadable one is rebuilt from git.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.files import atomic_write
from tandem.git import Repo
from tandem.receipts import Receipt, Tokens, read

_CACHE_VERSION = 2


@dataclass
class Total:
    """What a group of receipts adds up to (one actor, one agent, one prompt)."""

    turns: int = 0
    failed: int = 0
    paused: int = 0
    duration: float = 0.0
    cost_usd: float = 0.0
    unpriced: int = 0  # turns whose agent reported no cost
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0

    @property
    def tokens(self) -> Tokens:
        """The token counts added up."""
        return Tokens(self.tokens_in, self.tokens_out, self.tokens_cached)

    def add(self, receipt: Receipt) -> None:
        """Count one more receipt (plain fields: this runs for every receipt in history)."""
        outcome = receipt.outcome
        self.turns += 1
        self.failed += outcome == "fail"
        self.paused += outcome == "pause"
        self.duration += receipt.duration or 0.0
        if receipt.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += receipt.cost_usd
        if receipt.tokens is not None:
            self.tokens_in += receipt.tokens.input
            self.tokens_out += receipt.tokens.output
            self.tokens_cached += receipt.tokens.cached

    def to_json(self) -> dict[str, Any]:
        """The total as ``status --json`` and the report show it."""
        tokens = self.tokens
        return {
            "turns": self.turns,
            "failed": self.failed,
            "paused": self.paused,
            "duration_secs": round(self.duration, 1),
            "cost_usd": round(self.cost_usd, 6),
            "unpriced_turns": self.unpriced,
            "tokens": {"in": tokens.input, "out": tokens.output, "cached": tokens.cached},
        }


def totals(receipts: Iterable[Receipt], by: str) -> dict[str, Total]:
    """Totals keyed by a receipt field (``actor``, ``agent``, ``prompt``), in first-seen order."""
    found: dict[str, Total] = {}
    for receipt in receipts:
        found.setdefault(str(getattr(receipt, by) or "-"), Total()).add(receipt)
    return found


@dataclass(frozen=True)
class Summary:
    """Totals per actor and per agent up to commit ``tip``, and the unreadable receipts."""

    tip: str | None = None
    actors: dict[str, Total] = field(default_factory=dict)
    agents: dict[str, Total] = field(default_factory=dict)
    malformed: tuple[str, ...] = ()

    def plus(self, receipts: Iterable[Receipt], malformed: Iterable[str], tip: str) -> Summary:
        """These totals with more receipts counted in, now up to ``tip``."""
        actors = {k: dataclasses.replace(v) for k, v in self.actors.items()}
        agents = {k: dataclasses.replace(v) for k, v in self.agents.items()}
        for receipt in receipts:
            actors.setdefault(receipt.actor, Total()).add(receipt)
            agents.setdefault(receipt.agent or "-", Total()).add(receipt)
        return Summary(tip, actors, agents, (*self.malformed, *malformed))


def summarize(repo: Repo, ref: str, cache: Path | None = None) -> Summary:
    """The totals of ``ref``'s history, reading only what ``cache`` has not counted yet."""
    tip = repo.rev_parse(ref)
    if tip is None:
        return Summary()
    known = _load(cache) if cache is not None else None
    if known is not None and known.tip == tip:
        return known
    if known is None or known.tip is None or not repo.is_ancestor(known.tip, tip):
        known = Summary()
    history = read(repo, f"{known.tip}..{tip}" if known.tip else tip, resolved=True)
    summary = known.plus(history.receipts, history.malformed, tip)
    if cache is not None:
        _store(cache, summary)
    return summary


def _load(path: Path) -> Summary | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _CACHE_VERSION:
            return None
        return Summary(
            data["tip"],
            {k: _total(v) for k, v in data["actors"].items()},
            {k: _total(v) for k, v in data["agents"].items()},
            tuple(data["malformed"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no cache, or not one this version wrote: count afresh


def _total(data: dict[str, Any]) -> Total:
    return Total(**data)


def _store(path: Path, summary: Summary) -> None:
    data = {"version": _CACHE_VERSION, **dataclasses.asdict(summary)}
    with contextlib.suppress(OSError):  # a read-only logs folder: the next call counts afresh
        atomic_write(path, json.dumps(data).encode("utf-8"))

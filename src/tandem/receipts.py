"""Receipts in git (SPEC §15): the trailers of a turn commit, written and read here.

Every turn commit ends with ``Tandem-*`` trailers, so any clone can total what the loop
did from history alone: both machines of a sync run see the same numbers. The formatter
and the parser sit side by side so they cannot drift apart. Reading history is one
``git log`` whose format asks git for the trailers only, which keeps 10,000 receipts well
under a second.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from tandem.execution import AgentResult
    from tandem.git import Repo
    from tandem.host import Host
    from tandem.runner import TurnResult

PREFIX = "Tandem-"
_RESULT = re.compile(r"^(ok|(fail|pause):[a-z_]+)$")
_TOKENS = re.compile(r"^in=(\d+) out=(\d+) cached=(\d+)$")
_VERSION = re.compile(r"\d+(?:\.\d+)+\S*")
_MAX_VALUE = 300  # a trailer is one line; a long failure reason is cut here
_RECORD, _FIELD = "\x1d", "\x1f"
_PAIR = re.compile(r"(?:^|\x1e)Tandem-([A-Za-z-]+): *([^\x1e]*)")


class Tokens(NamedTuple):
    """Token counts of one turn: input, output, and input served from a cache."""

    input: int = 0
    output: int = 0
    cached: int = 0

    def plus(self, other: Tokens) -> Tokens:
        """Both counts added up."""
        return Tokens(
            self.input + other.input, self.output + other.output, self.cached + other.cached
        )

    @property
    def total(self) -> int:
        """Input plus output tokens (what budgets count, SPEC §14.4)."""
        return self.input + self.output


class Receipt(NamedTuple):
    """What one turn did, as its commit records it (a tuple: 10,000 are built per read)."""

    actor: str
    iteration: int
    result: str  # ok | fail:<kind> | pause:<kind>
    prompt: str | None = None
    route: str | None = None  # deterministic | router
    agent: str | None = None  # the agent's name
    agent_version: str | None = None
    model: str | None = None
    duration: float | None = None  # seconds
    cost_usd: float | None = None  # None: the agent reports no cost
    tokens: Tokens | None = None  # None: the agent reports no tokens
    log: str | None = None  # the turn log's path on the machine that ran it
    reason: str | None = None  # why it failed or paused
    commit: str = ""  # filled in when read from history
    time: int = 0  # committer time, Unix seconds, when read from history

    @property
    def outcome(self) -> str:
        """``ok``, ``fail`` or ``pause``."""
        return self.result.split(":", 1)[0]

    @property
    def kind(self) -> str | None:
        """The failure or pause kind (``usage_limit``, ``agent``, ...), None when ok."""
        return self.result.split(":", 1)[1] if ":" in self.result else None


# -- writing -------------------------------------------------------------------------------
def trailers(receipt: Receipt) -> list[str]:
    """The trailer lines of ``receipt``, in SPEC §15 order, each one line."""
    agent = receipt.agent and " ".join(p for p in (receipt.agent, receipt.agent_version) if p)
    tokens = receipt.tokens
    values: list[tuple[str, Any]] = [
        ("Actor", receipt.actor),
        ("Iteration", receipt.iteration),
        ("Prompt", receipt.prompt),
        ("Route", receipt.route),
        ("Agent", agent or None),
        ("Model", receipt.model),
        ("Result", receipt.result),
        ("Duration", None if receipt.duration is None else f"{receipt.duration:.1f}"),
        ("Cost-USD", None if receipt.cost_usd is None else f"{receipt.cost_usd:.6f}"),
        ("Tokens", tokens and f"in={tokens.input} out={tokens.output} cached={tokens.cached}"),
        ("Log", receipt.log),
        ("Failure", receipt.reason),
    ]
    return [f"{PREFIX}{key}: {_one_line(value)}" for key, value in values if value is not None]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:_MAX_VALUE]


def from_turn(
    result: TurnResult,
    *,
    versions: Mapping[str, str | None] | None = None,
    args: Mapping[str, tuple[str, ...]] | None = None,
    router: AgentResult | None = None,
) -> Receipt:
    """The receipt of a finished turn; ``router`` is its router run, whose bill it carries,
    as it carries the bills of attempts retried before the last (``result.earlier``).

    ``versions`` maps agent names to what ``--version`` said; ``args`` are agent.args, where
    a ``--model`` flag says which model ran.
    """
    agent = result.agent
    spent = [r for r in (*result.earlier, result.agent_result, router) if r is not None]
    costs = [r.cost_usd for r in spent if r.cost_usd is not None]
    counted = [tokens_of(r.usage) for r in spent if r.usage]
    return Receipt(
        actor=result.actor,
        iteration=result.iteration,
        result=result_of(result),
        prompt=result.prompt,
        route=result.source,
        agent=agent,
        agent_version=version_of((versions or {}).get(agent or "")),
        model=model_of((args or {}).get(agent or "", ())),
        duration=result.duration,
        cost_usd=math.fsum(costs) if costs else None,
        tokens=functools.reduce(Tokens.plus, counted) if counted else None,
        log=result.log_path,
        reason=result.failure,
    )


def for_host(host: Host, result: TurnResult) -> Receipt:
    """The receipt of ``result`` with the versions and models known to ``host``'s run."""
    return from_turn(
        result,
        versions=host.agent_versions,
        args=host.config.agent.args,
        router=result.router_result,
    )


def result_of(result: TurnResult) -> str:
    """``ok``, ``fail:<kind>`` or ``pause:<kind>`` for a turn result."""
    if result.ok:
        return "ok"
    status = result.status.value
    kind = (
        result.kind.value if result.kind else "interrupted" if status == "interrupted" else "agent"
    )
    return f"{'pause' if status == 'paused' else 'fail'}:{kind}"


def version_of(answer: str | None) -> str | None:
    """``2.1.330`` from ``2.1.330 (Claude Code)`` or ``codex-cli 0.128.0``."""
    found = _VERSION.search(answer or "")
    return found.group(0) if found else None


def model_of(args: Iterable[str]) -> str | None:
    """The value of ``--model``/``-m`` in an agent's extra arguments, if any."""
    words = list(args)
    for i, word in enumerate(words):
        if word.startswith("--model="):
            return word.split("=", 1)[1]
        if word in ("--model", "-m") and i + 1 < len(words):
            return words[i + 1]
    return None


def tokens_of(usage: Mapping[str, int]) -> Tokens:
    """Input, output and cached tokens from any agent's usage keys."""
    counts = {"input": 0, "output": 0, "cached": 0}
    for key, count in usage.items():
        if key in ("cache_read_input_tokens", "cached_input_tokens", "cached"):
            counts["cached"] += count
        elif "output" in key or "reasoning" in key:
            counts["output"] += count
        elif "input" in key:
            counts["input"] += count
    return Tokens(**counts)


# -- reading -------------------------------------------------------------------------------
class Malformed(ValueError):
    """A commit that says it is a receipt, with a trailer that cannot be read."""


@dataclass(frozen=True)
class History:
    """The receipts of a range of history, oldest first, and what could not be read."""

    receipts: list[Receipt] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # "<sha>: <why>"


def parse(values: Mapping[str, str], commit: str = "", time: int = 0) -> Receipt:
    """The receipt of one commit's ``Tandem-*`` trailers (keys without the prefix)."""
    try:
        actor, iteration, result = values["Actor"], values["Iteration"], values["Result"]
    except KeyError as exc:
        raise Malformed(f"no Tandem-{exc.args[0]} trailer") from None
    if actor not in ("galph", "ralph"):
        raise Malformed(f"Tandem-Actor {actor!r} is not galph or ralph")
    if not iteration.isdigit() or int(iteration) < 1:
        raise Malformed(f"Tandem-Iteration {iteration!r} is not a whole number")
    if not _RESULT.match(result):
        raise Malformed(f"Tandem-Result {result!r} is not ok, fail:<kind> or pause:<kind>")
    name, _, version = values.get("Agent", "").partition(" ")
    return Receipt(
        actor=actor,
        iteration=int(iteration),
        result=result,
        prompt=values.get("Prompt"),
        route=values.get("Route"),
        agent=name or None,
        agent_version=version or None,
        model=values.get("Model"),
        duration=_number(values, "Duration"),
        cost_usd=_number(values, "Cost-USD"),
        tokens=_tokens(values.get("Tokens")),
        log=values.get("Log"),
        reason=values.get("Failure"),
        commit=commit,
        time=time,
    )


def _number(values: Mapping[str, str], key: str) -> float | None:
    text = values.get(key)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise Malformed(f"Tandem-{key} {text!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise Malformed(f"Tandem-{key} {text!r} is not a number of 0 or more")
    return number


def _tokens(text: str | None) -> Tokens | None:
    if text is None:
        return None
    found = _TOKENS.match(text)
    if found is None:
        raise Malformed(f"Tandem-Tokens {text!r} is not 'in=N out=N cached=N'")
    return Tokens(int(found[1]), int(found[2]), int(found[3]))


def read(repo: Repo, revs: str = "HEAD", limit: int | None = None) -> History:
    """Every receipt in ``revs`` (one ``git log``), oldest first; an empty repo has none.

    ``limit`` reads only the newest that many commits.

    Commits without ``Tandem-Actor`` (older turn commits, the user's own) are not
    receipts; a receipt with an unreadable trailer is skipped and counted, never fatal.
    """
    if repo.rev_parse(revs.rsplit("..", maxsplit=1)[-1] or "HEAD") is None:
        return History()
    out = repo.git(
        "log",
        "--reverse",
        *([f"--max-count={limit}"] if limit else []),
        f"--format=%H{_FIELD}%ct{_FIELD}%(trailers:only,unfold,separator=%x1e){_RECORD}",
        revs,
        "--",
    ).text
    return parse_log(out)


def parse_log(out: str) -> History:
    """Receipts from the output of ``read``'s ``git log`` format."""
    history = History()
    for record in out.split(_RECORD):
        if "Tandem-Actor:" not in record:
            continue  # not a receipt: the user's commits, older turn commits
        sha, _, rest = record.strip("\n").partition(_FIELD)
        stamp, _, block = rest.partition(_FIELD)
        values = dict(reversed(_PAIR.findall(block)))  # the first of a repeated key wins
        try:
            history.receipts.append(parse(values, sha, int(stamp or 0)))
        except Malformed as exc:
            history.malformed.append(f"{sha[:12]}: {exc}")
    return history

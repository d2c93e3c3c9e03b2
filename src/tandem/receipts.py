"""Receipts in git (SPEC §15): the trailers of a turn commit, written and read here.

Every turn commit ends with ``Tandem-*`` trailers, so any clone can total what the loop
did from history alone: both machines of a sync run see the same numbers. The formatter
and the parser sit side by side so they cannot drift apart. Reading history is one
``git log`` whose format asks git for the trailers only, which keeps 10,000 receipts well
under a second.
"""

from __future__ import annotations

import codecs
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
_CHUNK = 1 << 16  # bytes of git log read at a time
_TRAILER = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*:")
_PLAIN_BLOCK = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9-]*:[^\n]*(?:\n|\Z))+")
_PAIR = re.compile(r"^Tandem-([A-Za-z-]+): *([^\n]*)", re.M)


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
    get = values.get
    return Receipt(  # positional, in field order: 10,000 of these per read of history
        actor,
        int(iteration),
        result,
        get("Prompt"),
        get("Route"),
        name or None,
        version or None,
        get("Model"),
        _number(values, "Duration"),
        _number(values, "Cost-USD"),
        _tokens(get("Tokens")),
        get("Log"),
        get("Failure"),
        commit,
        time,
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


def read(
    repo: Repo, revs: str = "HEAD", limit: int | None = None, *, resolved: bool = False
) -> History:
    """Every receipt in ``revs`` (one ``git log``), oldest first; an empty repo has none.

    ``limit`` reads only the newest that many commits; ``resolved`` says the caller has
    seen that ``revs`` ends at a commit (one git process fewer).

    Commits without a ``Tandem-Actor`` trailer (older turn commits, the user's own) are
    not receipts; a receipt with an unreadable trailer is skipped and counted, never fatal.
    git prints each whole message (``%B``) and Python finds the trailer block: git's own
    ``%(trailers)`` parser costs twice the time of the whole log at 10,000 commits. The
    output is parsed as it streams in, while git is still walking on another core.
    """
    if not resolved and repo.rev_parse(revs.rsplit("..", maxsplit=1)[-1] or "HEAD") is None:
        return History()
    args = (  # newest first, as git walks: no --reverse, which holds output back to the end
        "log",
        *([f"--max-count={limit}"] if limit else []),
        f"--format=%H{_FIELD}%ct{_FIELD}%B{_RECORD}",
        revs,
        "--",
    )
    history = History()
    for piece in _streamed(repo, args):
        found = parse_log(piece)
        history.receipts.extend(found.receipts)
        history.malformed.extend(found.malformed)
    history.receipts.reverse()
    history.malformed.reverse()
    return history


def _streamed(repo: Repo, args: Sequence[str]) -> Iterator[str]:
    """git's output in whole records, as it comes: parsing overlaps git's walk of history."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest = ""
    for piece in repo.git_output(*args):
        done, mark, rest = (rest + decoder.decode(piece)).rpartition(_RECORD)
        if mark:
            yield done
    yield rest + decoder.decode(b"", final=True)


def parse_log(out: str) -> History:
    """Receipts from the output of ``read``'s ``git log`` format."""
    history = History()
    for record in out.split(_RECORD):
        if "Tandem-Actor:" not in record:
            continue  # not a receipt: the user's commits, older turn commits
        sha, _, rest = record.strip("\n").partition(_FIELD)
        stamp, _, message = rest.partition(_FIELD)
        values = trailer_values(message)
        if "Actor" not in values:
            continue  # the words are in the message, not in its trailers
        try:
            history.receipts.append(parse(values, sha, int(stamp or 0)))
        except Malformed as exc:
            history.malformed.append(f"{sha[:12]}: {exc}")
    return history


def trailer_values(message: str) -> dict[str, str]:
    """The ``Tandem-*`` trailers of a commit message, keys without the prefix.

    The trailer block is the message's last paragraph after the subject, as git reads it:
    every line a ``Key: value`` trailer or a folded continuation (unfolded here), or at
    least a quarter of them trailers beside a ``Signed-off-by`` git wrote. The first of a
    repeated key wins.
    """
    _, blank, body = message.strip().partition("\n\n")
    if not blank:
        return {}  # a subject alone has no trailers
    block = body.rsplit("\n\n", 1)[-1]
    if _PLAIN_BLOCK.fullmatch(block):  # what tandem writes: one regex, no loop over lines
        plain = reversed(_PAIR.findall(block))
        if " \n" in block or "\t\n" in block:  # trailing blanks, which git drops
            return {k: v.rstrip() for k, v in plain}
        return dict(plain)
    lines = block.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if not lines[i].strip():  # a line of spaces ends a paragraph too
            lines = lines[i + 1 :]
            break
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and pairs:
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {line.strip()}")
        elif _TRAILER.match(line):
            name, _, value = line.partition(":")
            pairs.append((name, value.strip()))
    others = len(lines) - len(pairs) - sum(line[:1] in (" ", "\t") for line in lines)
    signed = any(name == "Signed-off-by" for name, _ in pairs)
    if others and not (signed and 3 * len(pairs) >= others):
        return {}
    found: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith(PREFIX):
            found.setdefault(name[len(PREFIX) :], value)
    return found

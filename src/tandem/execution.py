"""The seam between a turn and the program that runs its prompt (SPEC §5, §14.1).

Both sides import this module and nothing of each other: ``runner`` asks a
``PromptExecutor`` to run a prompt and reads the ``ExecResult``; ``agents.executor`` (and
the fakes of the tests) implement it. The agent's final report (``AgentResult``) and the
failure kinds live here because both sides speak them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tandem.logs import TurnLog
from tandem.state import Actor


class Status(enum.Enum):
    """How a run (a turn, or one prompt of it) ended."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"  # a turn only: it hit a usage or rate limit and runs again (§14.2)


class FailureKind(enum.Enum):
    """Why a run did not succeed (SPEC §14.1); decides pause, retry or stop."""

    USAGE_LIMIT = "usage_limit"  # a subscription window is spent
    RATE_LIMIT = "rate_limit"  # HTTP 429
    TRANSIENT = "transient"  # 5xx, 529 overloaded, connection reset or refused, DNS
    AUTH = "auth"  # 401/403, bad key, not logged in
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    AGENT = "agent"  # anything else: the agent's own work failed


@dataclass(frozen=True)
class AgentResult:
    """The final result a structured agent reported.

    ``kind`` is the parser's classification of an error (None: not known, which the
    executor turns into ``agent``); ``reset_at`` (Unix seconds) and ``retry_after``
    (seconds) are as the agent gave them, unchecked; ``window`` names the limit that was
    hit when the agent says (claude's ``rateLimitType``: ``five_hour``).
    """

    text: str | None = None
    is_error: bool = False
    error: str | None = None  # why, when is_error
    cost_usd: float | None = None
    usage: Mapping[str, int] = field(default_factory=dict)  # input_tokens, output_tokens, ...
    session_id: str | None = None
    turns: int | None = None
    kind: FailureKind | None = None
    reset_at: float | None = None
    retry_after: float | None = None
    window: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as stored in events and ``TurnResult.to_json``."""
        return {
            "text": self.text,
            "is_error": self.is_error,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "usage": dict(self.usage),
            "session_id": self.session_id,
            "turns": self.turns,
        }


@dataclass(frozen=True)
class TurnContext:
    """What an executor knows about the run it is asked for.

    ``agent`` is the dispatch decision (SPEC §6.2), made once per run by the caller so the
    console line, the log header and the run itself name the same agent.
    """

    actor: Actor
    iteration: int
    prompt: str  # normalized name, e.g. "supervisor.md"
    log: TurnLog
    agent: str
    purpose: str = "turn"  # "turn" or "router"
    # TANDEM_TURN_ID of every process of this turn (the router run shares its turn's)
    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class ExecResult:
    """What an executor reports about one run of a prompt."""

    agent: str
    status: Status
    exit_code: int | None = None
    failure: str | None = None  # why it failed (TurnResult.failure comes from it)
    kind: FailureKind | None = None  # set when it failed
    reset_at: datetime | None = None  # usage limit: when the window resets
    retry_after: float | None = None  # rate limit: seconds the API asked to wait
    answer: str | None = None  # final result text, or stdout of a plain agent
    result: AgentResult | None = None

    @property
    def ok(self) -> bool:
        """True if the run succeeded."""
        return self.status is Status.OK


class PromptExecutor(Protocol):
    """Runs one prompt file for one turn."""

    def agent_for(self, actor: Actor, prompt: str) -> str:
        """The name of the agent that would run ``prompt`` for ``actor``."""
        ...

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        """Run ``prompt_path``; stream output into ``turn.log``; never raise for agent faults."""
        ...

"""The agent plug-in seam: how an agent is started and how its output is read.

Each built-in agent is a module with one object satisfying ``Agent``; ``agents.BUILTINS``
registers them by name. Structured agents (claude, codex, gemini, opencode) print JSON
events; their ``Parser`` turns each stdout line into readable console lines and, at the
end, a final ``AgentResult``. Plain command agents have no parser (SPEC §6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tandem.execution import AgentResult, FailureKind


class Notice(str):
    """A console line that reports the agent's own housekeeping (an API retry), not work.

    The relay shows it like any line but does not count it as output for the silence
    heartbeat (SPEC §14.5): an agent that only retries is silent.
    """

    __slots__ = ()


class Parser(Protocol):
    """Reads one run's stdout, line by line."""

    def feed(self, line: str) -> list[str]:
        """Take one stdout line (no newline); return the console lines it renders to.

        Must not raise on any input: unknown event types render to nothing, and lines that
        are not JSON (noise, a truncated event) are shown as they are.
        """
        ...

    def result(self) -> AgentResult | None:
        """The final result once output ended; None if the agent never reported one."""
        ...

    def last_api_error(self) -> str | None:
        """The last API error the agent reported while it went on (retrying), if any."""
        ...


@dataclass(frozen=True)
class Invocation:
    """How to start one run: the argv, and whether the prompt goes on stdin."""

    argv: tuple[str, ...]
    prompt_on_stdin: bool


class Agent(Protocol):
    """A kind of agent CLI."""

    @property
    def name(self) -> str:
        """The name it is dispatched by."""
        ...

    @property
    def structured(self) -> bool:
        """True if it prints JSON events (and has a ``Parser``)."""
        ...

    @property
    def default_permissions(self) -> tuple[str, ...]:
        """Flags that let it use every tool unattended (agent.permissions.<name> replaces them)."""
        ...

    def program(self) -> str:
        """The program to look up on PATH (``<NAME>_CMD`` overrides it)."""
        ...

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """The argv for one run (``args`` are agent.args.<name>: model, extra flags)."""
        ...

    def classify(self, message: str) -> FailureKind | None:
        """The failure kind a line of its own (an error, last stderr line) shows, if known."""
        ...

    def parser(self) -> Parser | None:
        """A fresh parser for one run's stdout, or None for plain text output."""
        ...

    def setup_problem(self, env: Mapping[str, str], permissions: tuple[str, ...]) -> str | None:
        """A known reason this agent cannot run in this environment, or None."""
        ...


def json_object(line: str) -> dict[str, Any] | None:
    """``line`` parsed as a JSON object, or None if it is not one."""
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def one_line(text: Any, limit: int = 160) -> str:
    """A value squeezed onto one console line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class AgentKind:
    """What the agent kinds share by default: plain text, nothing known to check first."""

    name: str = ""
    structured: bool = False
    default_permissions: tuple[str, ...] = ()

    def program(self) -> str:
        """A built-in is found by its name."""
        return self.name

    def parser(self) -> Parser | None:
        """Plain text: no parser."""
        return None

    def classify(self, message: str) -> FailureKind | None:
        """Plain output tells nothing about why it failed."""
        return None

    def setup_problem(self, env: Mapping[str, str], permissions: tuple[str, ...]) -> str | None:
        """Nothing known that would stop it here."""
        return None


@dataclass(frozen=True)
class CommandAgent(AgentKind):
    """A plain command from ``agent.commands.<name>``: prompt on stdin, text output."""

    command: tuple[str, ...] = ()

    def program(self) -> str:
        """The first word of its command."""
        return self.command[0]

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """``[executable, *rest of the command, *args]`` with the prompt on stdin."""
        return Invocation((executable, *self.command[1:], *permissions, *args), True)

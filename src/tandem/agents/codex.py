"""Codex CLI: ``codex exec --json ... -``, prompt on stdin.

Rendered lines (formats in ``render``): agent messages as they are; one line per finished
tool call: ``→ $ <command>  (exit 0)`` (a failure adds ``: <first output line>``),
``→ file_change: <paths>``, ``→ <server>.<tool>: <arguments>``, ``→ web_search: <query>``;
``result: ok, tokens in <i> / out <o>`` when the turn completes; ``error: <message>`` for
an error event or a failed turn.

Failure kinds (SPEC §14.1), from the recordings in tests/data/recordings (codex 0.169.0
against the fake server): "You've hit your usage limit. … try again at 11:44 PM." (a 429
whose error type is ``usage_limit_reached``; codex-rs/core/src/error.rs
``UsageLimitReachedError``, whose other wordings end "try again in 3 days 6 hours 57
minutes." as users quote them in openai/codex issues) is a usage limit; "exceeded retry
limit, last status: 429 Too Many Requests" and "unexpected status 401 Unauthorized: …"
carry the HTTP status; "We're currently experiencing high demand" is how it words a 5xx;
"stream disconnected before completion" and "error sending request" (codex-rs
``CodexErr::Stream``/``ConnectionFailed``) are network failures.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

from tandem.agents.base import AgentKind, Invocation, Notice, Parser, json_object, one_line
from tandem.agents.failures import clock_reset, http_kind, relative_seconds
from tandem.agents.render import (
    int_fields,
    integer,
    items,
    mapping,
    not_json,
    outcome_line,
    result_line,
    summary,
    text,
    text_lines,
    tool_line,
)
from tandem.execution import AgentResult, FailureKind

_SHELLS = frozenset({"bash", "sh", "zsh"})
_USAGE_LIMIT = re.compile(r"You['\u2019]ve hit your usage limit", re.I)  # either apostrophe
_STATUS = re.compile(r"(?:last status|unexpected status):? (\d{3})\b")
_TRANSIENT = re.compile(
    r"high demand|stream disconnected|error sending request|connection (?:refused|reset)"
    r"|idle timeout waiting for SSE",
    re.I,
)
_RECONNECTING = re.compile(r"^Reconnecting\b", re.I)


def failure_kind(message: str) -> FailureKind | None:
    """The kind codex's wording of a failure shows (see the module docstring)."""
    if _USAGE_LIMIT.search(message):
        return FailureKind.USAGE_LIMIT
    if status := _STATUS.search(message):
        return http_kind(int(status.group(1)))
    return FailureKind.TRANSIENT if _TRANSIENT.search(message) else None


def usage_reset(message: str, now: datetime) -> float | None:
    """When "try again at 11:44 PM" or "try again in 3 days 6 hours" says the limit resets."""
    after = message.lower().rfind("try again")
    if after < 0:
        return None
    tail = message[after:]
    if (span := relative_seconds(tail)) is not None:
        return now.timestamp() + span
    return clock_reset(tail, now)


@dataclass(frozen=True)
class CodexAgent(AgentKind):
    """The ``codex`` built-in."""

    name: str = "codex"
    structured: bool = True
    default_permissions: tuple[str, ...] = ("--dangerously-bypass-approvals-and-sandbox",)

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """``codex exec --json``; ``-`` makes it read the prompt from stdin."""
        return Invocation((executable, "exec", "--json", *permissions, *args, "-"), True)

    def parser(self) -> Parser | None:
        """A JSONL parser."""
        return CodexParser()

    def classify(self, message: str) -> FailureKind | None:
        """See ``failure_kind``."""
        return failure_kind(message)


class CodexParser:
    """Reads ``codex exec --json``: one JSON event per line.

    ``thread.started`` names the session, ``item.started``/``item.completed`` carry
    messages and tool calls, ``turn.completed`` the usage; ``error`` and ``turn.failed``
    say what went wrong. A command shows when it starts (a long one is not invisible)
    and its outcome when it ends.
    """

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._now = now
        self._api_error: str | None = None
        self._running: set[str] = set()  # ids of commands shown as started
        self._session: str | None = None
        self._text: str | None = None
        self._usage: dict[str, int] = {}
        self._completed = False
        self._failure: str | None = None  # from turn.failed
        # From an error event; a later turn.completed clears it (codex reports stream
        # reconnects as error events and then carries on).
        self._error: str | None = None

    def feed(self, line: str) -> list[str]:
        """The console lines for one stdout line."""
        event = json_object(line)
        if event is None:
            return not_json(line)
        handlers = {
            "thread.started": self._thread_started,
            "item.started": self._item_started,
            "item.completed": self._item_completed,
            "turn.completed": self._turn_completed,
            "turn.failed": self._turn_failed,
            "error": self._error_event,
        }
        handler = handlers.get(text(event.get("type")) or "")
        return handler(event) if handler else []

    def result(self) -> AgentResult | None:
        """The outcome of the turn; None if it neither completed, failed nor hit an error."""
        if not (self._completed or self._failure or self._error):
            return None
        error = self._failure or self._error
        kind = failure_kind(error) if error is not None else None
        reset = (
            usage_reset(error, self._now()) if error and kind is FailureKind.USAGE_LIMIT else None
        )
        return AgentResult(
            text=self._text,
            is_error=error is not None,
            error=error,
            usage=self._usage,
            session_id=self._session,
            kind=kind,
            reset_at=reset,
        )

    def last_api_error(self) -> str | None:
        """The last error event codex went on after (``Reconnecting… 2/5 (…)``)."""
        return self._api_error

    def _thread_started(self, event: dict[str, Any]) -> list[str]:
        self._session = text(event.get("thread_id"))
        return []

    def _item_started(self, event: dict[str, Any]) -> list[str]:
        item = mapping(event.get("item"))
        if item.get("type") != "command_execution":
            return []
        self._running.add(text(item.get("id")) or "")
        return [_command_line(item)]

    def _item_completed(self, event: dict[str, Any]) -> list[str]:
        item = mapping(event.get("item"))
        kind = item.get("type")
        if kind == "command_execution":
            item_id = text(item.get("id")) or ""
            shown = [] if item_id in self._running else [_command_line(item)]
            self._running.discard(item_id)
            return [*shown, _command_outcome(item)]
        if kind == "agent_message":
            self._text = text(item.get("text")) or ""
            return text_lines(self._text)
        render = _ITEM_LINES.get(text(kind) or "")
        return [render(item)] if render else []

    def _turn_completed(self, event: dict[str, Any]) -> list[str]:
        usage = mapping(event.get("usage"))
        self._usage = int_fields(usage, usage.keys())
        self._completed = True
        self._error = None
        line = result_line(
            is_error=False,
            tokens_in=self._usage.get("input_tokens"),
            tokens_out=self._usage.get("output_tokens"),
        )
        return [line]

    def _turn_failed(self, event: dict[str, Any]) -> list[str]:
        message = text(mapping(event.get("error")).get("message")) or "turn failed"
        repeated = message == self._error
        self._failure = message
        # The error event just before usually says the same thing.
        return [] if repeated else [f"error: {one_line(message)}"]

    def _error_event(self, event: dict[str, Any]) -> list[str]:
        self._error = text(event.get("message")) or "error"
        self._api_error = self._error
        if _RECONNECTING.search(self._error):
            return [Notice(f"error: {one_line(self._error)}")]
        return [f"error: {one_line(self._error)}"]


def _command_line(item: dict[str, Any]) -> str:
    """``→ $ <command>``."""
    return f"→ $ {one_line(_unwrap_shell(text(item.get('command')) or ''))}"


def _command_outcome(item: dict[str, Any]) -> str:
    """``  ← ok (exit 0): <first output line>`` or ``  ← failed (exit N): ...``."""
    exit_code = integer(item.get("exit_code"))
    failed = item.get("status") == "failed" or exit_code not in (None, 0)
    return outcome_line(failed, text(item.get("aggregated_output")) or "", exit_code)


def _unwrap_shell(command: str) -> str:
    """``echo hi`` for ``/bin/bash -lc 'echo hi'``: codex wraps every command that way."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    wrapped = len(words) == 3 and words[1] in ("-c", "-lc")
    return words[2] if wrapped and PurePath(words[0]).name in _SHELLS else command


def _file_change_line(item: dict[str, Any]) -> str:
    """``→ file_change: <path>, <path>``."""
    changes = [mapping(change) for change in items(item.get("changes"))]
    paths = [path for change in changes if (path := text(change.get("path")))]
    line = tool_line("file_change", ", ".join(paths))
    return line + " (failed)" if item.get("status") == "failed" else line


def _mcp_line(item: dict[str, Any]) -> str:
    """``→ <server>.<tool>: <arguments>``."""
    name = f"{text(item.get('server')) or '?'}.{text(item.get('tool')) or '?'}"
    return tool_line(name, summary(item.get("arguments"), ()))


def _web_search_line(item: dict[str, Any]) -> str:
    """``→ web_search: <query>``."""
    return tool_line("web_search", text(item.get("query")) or "")


def _warning_line(item: dict[str, Any]) -> str:
    """An error item is a warning: the turn goes on (e.g. unknown model metadata)."""
    return f"warning: {one_line(text(item.get('message')) or '')}"


_ITEM_LINES: dict[str, Callable[[dict[str, Any]], str]] = {
    "file_change": _file_change_line,
    "mcp_tool_call": _mcp_line,
    "web_search": _web_search_line,
    "error": _warning_line,
}

"""Gemini CLI: ``gemini --output-format stream-json --yolo --skip-trust -p <prompt>``.

Rendered lines (formats in ``render``): assistant text, line by line; for a tool call
``→ run_shell_command: <command>``, ``→ write_file: <path>`` or ``→ <tool>: <input as
JSON>``, and ``  ← ok: <first line>`` / ``  ← failed: <error>`` for its result; ``error:
<message>`` (or ``warning:``) for an error event; ``result: ok|error, <duration>, tokens in
<i> / out <o>`` at the end, then ``error: <message>`` if it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tandem.agents.base import AgentKind, AgentResult, Invocation, Parser, json_object, one_line
from tandem.agents.render import (
    int_fields,
    mapping,
    not_json,
    number,
    outcome_line,
    result_line,
    summary,
    text,
    text_lines,
    tool_line,
)

# Input keys naming the file a tool touches (write_file, replace, read_file...).
_PATH_KEYS = ("file_path", "absolute_path", "path", "dir_path")
_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens", "cached")


@dataclass(frozen=True)
class GeminiAgent(AgentKind):
    """The ``gemini`` built-in."""

    name: str = "gemini"
    structured: bool = True
    default_permissions: tuple[str, ...] = ("--yolo", "--skip-trust")

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """The prompt text is one argv element after ``-p``."""
        argv = (executable, "--output-format", "stream-json", *permissions, *args)
        return Invocation((*argv, "-p", prompt_text), False)

    def parser(self) -> Parser | None:
        """A stream-json parser."""
        return GeminiParser()


class GeminiParser:
    """Reads ``--output-format stream-json``: one JSON event per line.

    ``init`` names the session, ``message`` events carry text, ``tool_use`` and
    ``tool_result`` the tool calls, and the last event, ``result``, the status and stats.
    Assistant text comes in deltas that may end mid-line, so a partial line is held until
    its newline or the next tool, error or result event (or a line that is not JSON).
    """

    def __init__(self) -> None:
        self._session: str | None = None
        self._texts: list[str] = []
        self._partial = ""
        self._result: AgentResult | None = None

    def feed(self, line: str) -> list[str]:
        """The console lines for one stdout line."""
        event = json_object(line)
        if event is None:
            # Held text came first; a cut-off last event must not swallow it either.
            noise = not_json(line)
            return [*self._flush(), *noise] if noise else []
        kind = text(event.get("type")) or ""
        if kind == "init":
            self._session = text(event.get("session_id"))
            return []
        if kind == "message":
            return self._message(event)
        handlers = {
            "tool_use": _tool_use_lines,
            "tool_result": _tool_result_lines,
            "error": _error_lines,
            "result": self._final_lines,
        }
        handler = handlers.get(kind)
        return [*self._flush(), *handler(event)] if handler else []

    def result(self) -> AgentResult | None:
        """From the ``result`` event; None if there was none."""
        return self._result

    def _message(self, event: dict[str, Any]) -> list[str]:
        """Whole lines of assistant text; user messages (the prompt) are not shown."""
        content = text(event.get("content"))
        if event.get("role") != "assistant" or content is None:
            return []
        self._texts.append(content)
        self._partial += content
        if event.get("delta") is not True:
            return self._flush()
        *whole, self._partial = self._partial.split("\n")
        return whole

    def _flush(self) -> list[str]:
        """The held partial line, if any."""
        partial, self._partial = self._partial, ""
        return text_lines(partial)

    def _final_lines(self, event: dict[str, Any]) -> list[str]:
        """The result line, then ``error: <message>`` when it failed."""
        stats = mapping(event.get("stats"))
        is_error = event.get("status") != "success"
        error = text(mapping(event.get("error")).get("message"))
        self._result = AgentResult(
            text="".join(self._texts) or None,
            is_error=is_error,
            error=(error or text(event.get("status")) or "unknown error") if is_error else None,
            usage=int_fields(stats, _USAGE_KEYS),
            session_id=self._session,
        )
        duration_ms = number(stats.get("duration_ms"))
        line = result_line(
            is_error=is_error,
            seconds=duration_ms / 1000 if duration_ms is not None else None,
            tokens_in=self._result.usage.get("input_tokens"),
            tokens_out=self._result.usage.get("output_tokens"),
        )
        return [line, f"error: {one_line(error)}"] if is_error and error else [line]


def _tool_use_lines(event: dict[str, Any]) -> list[str]:
    """``→ <tool>: <command or path or input>``."""
    name = text(event.get("tool_name")) or "tool"
    keys = ("command",) if name == "run_shell_command" else _PATH_KEYS
    return [tool_line(name, summary(event.get("parameters"), keys))]


def _tool_result_lines(event: dict[str, Any]) -> list[str]:
    """``  ← ok: <first output line>`` or ``  ← failed: <error>``."""
    output = text(event.get("output")) or ""
    if event.get("status") == "success":
        return [outcome_line(False, output)]
    return [outcome_line(True, text(mapping(event.get("error")).get("message")) or output)]


def _error_lines(event: dict[str, Any]) -> list[str]:
    """``error: <message>`` (or ``warning: ...``, as the event's severity says)."""
    severity = text(event.get("severity")) or "error"
    return [f"{severity}: {one_line(text(event.get('message')) or '')}"]

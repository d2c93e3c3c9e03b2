"""Gemini CLI: ``gemini --output-format stream-json --yolo --skip-trust -p <prompt>``.

Rendered lines (formats in ``render``): assistant text, line by line; for a tool call
``→ run_shell_command: <command>``, ``→ write_file: <path>`` or ``→ <tool>: <input as
JSON>``, and ``  ← ok: <first line>`` / ``  ← failed: <error>`` for its result; ``error:
<message>`` (or ``warning:``) for an error event; ``result: ok|error, <duration>, tokens in
<i> / out <o>`` at the end, then ``error: <message>`` if it failed.

The final text is the assistant's last message: text written before a tool call is shown
but is not part of the answer (a router answer must be the name alone).

Failure kinds (SPEC §14.1): gemini wraps an API failure as ``[API Error: <message>]``
(packages/core/src/utils/errorParsing.ts ``parseAndFormatApiError``), with the Google
error JSON inside (recording ``gemini-http-500.jsonl``), or for a 429 the bare message
followed by "Please wait and try again later. To increase your limits, request a quota
increase …" (recordings ``gemini-http-429.jsonl``, ``gemini-usage-limit.jsonl``, gemini
0.61.0, which then exits 173: 429 mod 256). The JSON's ``code`` or ``(Status: …)`` gives
the HTTP status; a 429 is a usage limit when it is a terminal quota
(packages/core/src/utils/googleQuotaErrors.ts ``classifyGoogleError``: a per-day quota,
"limit: 0", "exhausted your capacity"), else a rate limit, with "Please retry in 2s" as
its retry-after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tandem.agents.base import AgentKind, Invocation, Parser, json_object, one_line
from tandem.agents.failures import http_kind, relative_seconds
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
from tandem.execution import AgentResult, FailureKind

# Input keys naming the file a tool touches (write_file, replace, read_file...).
_PATH_KEYS = ("file_path", "absolute_path", "path", "dir_path")
_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens", "cached")
_CODE = re.compile(r'"code"\s*:\s*(\d{3})\b|\bstatus(?: code)?:? (\d{3})\b', re.I)
_STATUS_NAMES = {
    "RESOURCE_EXHAUSTED": 429,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
_STATUS_NAME = re.compile(r"\b(" + "|".join(_STATUS_NAMES) + r")\b")
_TERMINAL_QUOTA = re.compile(
    r"per ?day|PerDay|limit:\s*0(?![\d.])|exhausted your capacity|capacity exceeded", re.I
)
_AUTH = re.compile(r"API key not valid|invalid api key", re.I)
# errorParsing.ts appends these to a 429 only.
_RATE_LIMITED = re.compile(
    r"Please wait and try again later\. To increase your limits|Possible quota limitations"
)


def failure_kind(message: str) -> FailureKind | None:
    """The kind an ``[API Error: …]`` message shows (see the module docstring)."""
    code = _CODE.search(message)
    named = _STATUS_NAME.search(message)
    status = int(code.group(1) or code.group(2)) if code else None
    if status is None and named:
        status = _STATUS_NAMES[named.group(1)]
    if status is None and _RATE_LIMITED.search(message):
        status = 429
    kind = http_kind(status)
    if kind is FailureKind.RATE_LIMIT and _TERMINAL_QUOTA.search(message):
        return FailureKind.USAGE_LIMIT
    return kind or (FailureKind.AUTH if _AUTH.search(message) else None)


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

    def classify(self, message: str) -> FailureKind | None:
        """See ``failure_kind``."""
        return failure_kind(message)


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
        self._api_error: str | None = None

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
        if kind == "tool_use":
            self._texts = []  # what came before a tool call is not the final message
        if kind == "error":
            self._api_error = text(event.get("message")) or self._api_error
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

    def last_api_error(self) -> str | None:
        """The message of the last error event (gemini goes on after a warning)."""
        return self._api_error

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
        retry = relative_seconds(error) if error and "retry in" in error.lower() else None
        self._result = AgentResult(
            text="".join(self._texts) or None,
            is_error=is_error,
            error=(error or text(event.get("status")) or "unknown error") if is_error else None,
            usage=int_fields(stats, _USAGE_KEYS),
            session_id=self._session,
            kind=failure_kind(error) if is_error and error else None,
            retry_after=retry if is_error else None,
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

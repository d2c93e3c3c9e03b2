"""Claude Code: ``claude -p --output-format stream-json --verbose``, prompt on stdin.

Rendered lines (formats in ``render``): assistant text as it is; ``→ Bash: <command>``,
``→ Write: <file_path>`` (Edit, Read... likewise), or ``→ <Tool>: <input as JSON>`` for a
tool call; ``  ← ok: <first line>`` / ``  ← failed (exit 3): <first line>`` for its result;
``result: ok|error, <n> turns, <duration>, $<cost>, tokens in <i> / out <o>`` (input counts
cache reads and writes) followed by the final text
(unless it repeats the assistant text just shown); ``claude: API retry 3/10 in 4.1s (HTTP
500)`` for each of its own retries and ``claude: usage limit reached (five_hour)``.

Failure kinds (SPEC §14.1), from the recordings in tests/data/recordings (claude 2.1.330
against the fake server, AGENT-CLIS.md §7): a ``rate_limit_event`` whose
``rate_limit_info.status`` is ``rejected`` (reset in ``resetsAt``), the text "You've hit
your … limit · resets 11:44pm (UTC)" or the 1.0.x "Claude AI usage limit
reached|<epoch>" are a usage limit; otherwise the result's ``api_error_status`` decides
(429 "API Error: Request rejected (429)", 401 "Failed to authenticate", 500 "API Error:
500 …"), then the assistant message's ``error`` field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tandem.agents.base import AgentKind, Invocation, Notice, Parser, json_object
from tandem.agents.failures import clock_reset, http_kind
from tandem.agents.render import (
    int_fields,
    integer,
    items,
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

# Input keys naming the file a tool touches (Write, Edit, Read, NotebookEdit...).
_PATH_KEYS = ("file_path", "notebook_path")
_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_EXIT_CODE = re.compile(r"Exit code (-?\d{1,9})\n?")
_USAGE_LIMIT = re.compile(r"(?:You['\u2019]ve hit your .{0,40}limit|usage limit reached)", re.I)
_OLD_RESET = re.compile(r"usage limit reached\|(\d{9,12})\b", re.I)
_WINDOW = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")  # rateLimitType: five_hour, seven_day_opus
_AUTH = re.compile(r"Failed to authenticate|Invalid API key|Please run /login|OAuth token", re.I)
# The assistant message's ``error`` field names the API failure (recordings).
_MESSAGE_ERRORS = {
    "rate_limit": FailureKind.RATE_LIMIT,
    "authentication_failed": FailureKind.AUTH,
    "server_error": FailureKind.TRANSIENT,
    "overloaded": FailureKind.TRANSIENT,
}


@dataclass(frozen=True)
class ClaudeAgent(AgentKind):
    """The ``claude`` built-in."""

    name: str = "claude"
    structured: bool = True
    default_permissions: tuple[str, ...] = ("--dangerously-skip-permissions",)

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """Print mode with JSON events; the prompt arrives on stdin."""
        argv = (executable, "-p", "--output-format", "stream-json", "--verbose")
        return Invocation((*argv, *permissions, *args), True)

    def parser(self) -> Parser | None:
        """A stream-json parser."""
        return ClaudeParser()

    def classify(self, message: str) -> FailureKind | None:
        """A usage-limit or authentication message (on stderr, or a failed result)."""
        if _USAGE_LIMIT.search(message):
            return FailureKind.USAGE_LIMIT
        return FailureKind.AUTH if _AUTH.search(message) else None

    def setup_problem(self, env: Mapping[str, str], permissions: tuple[str, ...]) -> str | None:
        """As root, claude refuses to skip permissions unless IS_SANDBOX=1."""
        bypass = (
            "--dangerously-skip-permissions" in permissions or "bypassPermissions" in permissions
        )
        sandbox = env.get("IS_SANDBOX")
        if bypass and os.geteuid() == 0 and sandbox != "1":
            # Measured: claude 2.1 accepts exactly "1"; "yes" or "true" are refused.
            seen = f" (IS_SANDBOX is {sandbox!r}; claude accepts only 1)" if sandbox else ""
            return (
                f"claude refuses --dangerously-skip-permissions when run as root{seen}; set "
                "IS_SANDBOX=1 (inside a container or VM you trust), or set "
                "agent.permissions.claude to [--permission-mode, acceptEdits, --allowedTools, "
                '"Bash Edit Write"]'
            )
        return None


class ClaudeParser:
    """Reads ``--output-format stream-json``: one JSON event per line.

    ``assistant`` events carry text and tool calls, ``user`` events the tool results, and
    the last event, ``result``, the final answer, cost and usage.
    """

    def __init__(self, now: Callable[[], datetime] = datetime.now) -> None:
        self._now = now
        self._result: AgentResult | None = None
        self._last_text: str | None = None
        self._limit_reset: float | None = None  # set by a rejected rate_limit_event
        self._window: str | None = None  # its rateLimitType: five_hour, seven_day ...
        self._limited = False
        self._message_error: str | None = None
        self._api_error: str | None = None

    def feed(self, line: str) -> list[str]:
        """The console lines for one stdout line."""
        event = json_object(line)
        if event is None:
            return not_json(line)
        blocks = items(mapping(event.get("message")).get("content"))
        kind = event.get("type")
        if kind == "assistant":
            self._message_error = text(event.get("error")) or self._message_error
            return [shown for block in blocks for shown in self._block(block)]
        if kind == "user":
            return [_outcome(block) for block in blocks if _is_result(block)]
        if kind == "result":
            self._result = self._classified(_final(event), event)
            return self._final_lines(event, self._result)
        if kind == "rate_limit_event":
            return self._rate_limit(mapping(event.get("rate_limit_info")))
        if kind == "system" and event.get("subtype") == "api_retry":
            return [self._retry(event)]
        return []

    def result(self) -> AgentResult | None:
        """From the ``result`` event; None if there was none."""
        return self._result

    def last_api_error(self) -> str | None:
        """From the last ``api_retry`` event: ``429 rate_limit_error``."""
        return self._api_error

    def _rate_limit(self, info: dict[str, Any]) -> list[str]:
        """A rejected window is a usage limit; other statuses (allowed, warning) say nothing."""
        if info.get("status") != "rejected":
            return []
        self._limited = True
        self._limit_reset = number(info.get("resetsAt"))
        window = self._window = _window(info.get("rateLimitType"))
        return [Notice("claude: usage limit reached" + (f" ({window})" if window else ""))]

    def _retry(self, event: dict[str, Any]) -> str:
        """``claude: API retry 3/10 in 4.1s (HTTP 500)``; remembers the error for a timeout."""
        status = integer(event.get("error_status"))
        error = event.get("error")
        name = text(error) or text(mapping(error).get("type")) or ""
        self._api_error = " ".join(str(part) for part in (status, name) if part) or None
        delay = number(event.get("retry_delay_ms"))
        line = f"claude: API retry {integer(event.get('attempt')) or '?'}"
        if (limit := integer(event.get("max_retries"))) is not None:
            line += f"/{limit}"
        if delay is not None:
            line += f" in {max(delay, 0.0) / 1000:.1f}s"
        return Notice(line + (f" (HTTP {status})" if status is not None else ""))

    def _classified(self, result: AgentResult, event: dict[str, Any]) -> AgentResult:
        """The failure kind and reset time of an error result."""
        if not result.is_error:
            return result
        message = result.error or ""
        reset = self._limit_reset
        if self._limited or _USAGE_LIMIT.search(message):
            if reset is None and (old := _OLD_RESET.search(message)):
                reset = float(old.group(1))
            if reset is None:
                reset = clock_reset(message, self._now().astimezone())
            return replace(
                result, kind=FailureKind.USAGE_LIMIT, reset_at=reset, window=self._window
            )
        kind = http_kind(integer(event.get("api_error_status")))
        kind = kind or _MESSAGE_ERRORS.get(self._message_error or "")
        return replace(result, kind=kind or (FailureKind.AUTH if _AUTH.search(message) else None))

    def _block(self, value: Any) -> list[str]:
        """An assistant content block: its text, or one line for a tool call."""
        block = mapping(value)
        if block.get("type") == "text":
            self._last_text = text(block.get("text")) or ""
            return text_lines(self._last_text)
        if block.get("type") == "tool_use":
            name = text(block.get("name")) or "tool"
            keys = ("command",) if name == "Bash" else _PATH_KEYS
            return [tool_line(name, summary(block.get("input"), keys))]
        return []

    def _final_lines(self, event: dict[str, Any], result: AgentResult) -> list[str]:
        """The result line, then the final text unless it was just shown as assistant text."""
        duration_ms = number(event.get("duration_ms"))
        tokens_in = sum(result.usage.get(key, 0) for key in _USAGE_KEYS if key != "output_tokens")
        line = result_line(
            is_error=result.is_error,
            turns=result.turns,
            seconds=duration_ms / 1000 if duration_ms is not None else None,
            cost_usd=result.cost_usd,
            tokens_in=tokens_in if result.usage else None,
            tokens_out=result.usage.get("output_tokens"),
        )
        if result.text is None or result.text == self._last_text:
            return [line]
        return [line, *text_lines(result.text)]


def _window(value: Any) -> str | None:
    """A ``rateLimitType`` fit for a console line: a short word (``five_hour``), else None."""
    name = text(value)
    if name is None or not _WINDOW.fullmatch(name):
        return None
    return name


def _is_result(block: Any) -> bool:
    return mapping(block).get("type") == "tool_result"


def _outcome(value: Any) -> str:
    """``  ← ok: ...`` or ``  ← failed (exit N): ...`` for a ``tool_result`` block."""
    block = mapping(value)
    content = block.get("content")
    output = text(content)
    if output is None:
        output = "\n".join(text(mapping(part).get("text")) or "" for part in items(content))
    failed = block.get("is_error") is True
    exit_code = None
    # Bash failures read "Exit code 3\n<output>"; the code goes in the status instead.
    if failed and (match := _EXIT_CODE.match(output)):
        exit_code, output = int(match.group(1)), output[match.end() :]
    return outcome_line(failed, output, exit_code)


def _final(event: dict[str, Any]) -> AgentResult:
    """The ``result`` event as an ``AgentResult``.

    An API error ends with ``subtype: success`` but ``is_error: true``: is_error wins.
    """
    answer = text(event.get("result"))
    subtype = text(event.get("subtype")) or ""
    is_error = event.get("is_error") is True or subtype.startswith("error")
    return AgentResult(
        text=answer,
        is_error=is_error,
        error=(answer or subtype or "unknown error") if is_error else None,
        cost_usd=number(event.get("total_cost_usd")),
        usage=int_fields(event.get("usage"), _USAGE_KEYS),
        session_id=text(event.get("session_id")),
        turns=integer(event.get("num_turns")),
    )

"""opencode: ``opencode run --format json <prompt>``.

Rendered lines (formats in ``render``): text parts as they are; ``→ bash: <command>``,
``→ write: <filePath>`` or ``→ <tool>: <input as JSON>`` for a tool call, followed by
``  ← ok: <first line>`` / ``  ← failed (exit 3): <first line>``; ``error: <message>``
for an error event; ``result: ok|error, <n> turns, $<cost>, tokens in <i> / out <o>``
after the last step (the first whose finish reason is not ``tool-calls``).

The final text is the last message: text written before a tool call is shown but is not
part of the answer.

Failure kinds (SPEC §14.1): an ``error`` event carries the provider's failure as
``error.data`` with ``statusCode``, ``isRetryable`` and ``responseHeaders`` (recording
``opencode-http-400.jsonl`` from opencode 1.18.33; the ``APIError`` schema of opencode's
session messages, also in its SDK's ``MessageErrorSchema``): the status decides, and
``retry-after`` is kept. An error named ``ProviderAuthError`` (same schemas) is auth.

opencode retries HTTP 429 and 5xx answers by itself without end (its session/retry.ts);
the one limit it gives up on at once is an account out of quota: OpenAI's error code
``insufficient_quota`` in an error chunk of the stream, which its provider/error.ts
(``parseStreamError``) marks not retryable. opencode 1.18.33 reports it as an
``UnknownError`` whose ``data.message`` is the provider's error object as JSON (recording
``opencode-insufficient-quota.jsonl``); later versions as an ``APIError`` with the message
"Quota exceeded. Check your plan and billing details." and the object in
``responseBody``. Either is a usage limit without a reset time: tandem backs off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tandem.agents.base import AgentKind, Invocation, Parser, json_object, one_line
from tandem.agents.failures import http_kind
from tandem.agents.render import (
    integer,
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

# Input keys naming the file a tool touches (write, edit, read...).
_PATH_KEYS = ("filePath", "path")
_OUTPUT_KEYS = frozenset({"output_tokens", "reasoning_tokens"})
_NO_QUOTA = "insufficient_quota"
_NO_QUOTA_TEXT = re.compile(r"^Quota exceeded\. Check your plan and billing details\.")


@dataclass(frozen=True)
class OpencodeAgent(AgentKind):
    """The ``opencode`` built-in."""

    name: str = "opencode"
    structured: bool = True

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """The prompt text is the last argv element."""
        argv = (executable, "run", "--format", "json", *permissions, *args)
        return Invocation((*argv, prompt_text), False)

    def parser(self) -> Parser | None:
        """A JSON events parser."""
        return OpencodeParser()


class OpencodeParser:
    """Reads ``opencode run --format json``: one JSON event per line, most with a ``part``.

    ``text`` parts carry the answer, ``tool_use`` parts a finished tool call with its
    output, ``step_finish`` parts each model call's finish reason, tokens and cost; an
    ``error`` event ends the run.
    """

    def __init__(self) -> None:
        self._session: str | None = None
        self._texts: list[str] = []
        self._steps = 0
        self._reason: str | None = None
        self._usage: dict[str, int] = {}
        self._cost: float | None = None
        self._error: str | None = None
        self._kind: FailureKind | None = None
        self._retry_after: float | None = None

    def feed(self, line: str) -> list[str]:
        """The console lines for one stdout line."""
        event = json_object(line)
        if event is None:
            return not_json(line)
        self._session = text(event.get("sessionID")) or self._session
        handlers = {
            "text": self._text_part,
            "tool_use": self._tool_part,
            "step_finish": self._step_finish,
            "error": self._error_event,
        }
        handler = handlers.get(text(event.get("type")) or "")
        return handler(mapping(event.get("part")), event) if handler else []

    def result(self) -> AgentResult | None:
        """The run's outcome; None unless an error was reported or a last step finished.

        A step that finished asking for tools is not the last one: output that ends there
        was cut off.
        """
        if self._error is None and self._reason in (None, "tool-calls"):
            return None
        error = self._error or ("finished with reason error" if self._reason == "error" else None)
        return AgentResult(
            text="\n".join(self._texts) or None,
            is_error=error is not None,
            error=error,
            cost_usd=self._cost,
            usage=dict(self._usage),
            session_id=self._session,
            turns=self._steps,
            kind=self._kind,
            retry_after=self._retry_after,
        )

    def last_api_error(self) -> str | None:
        """opencode reports an API error only when it gives up: never while it retries."""
        return None

    def _tool_part(self, part: dict[str, Any], event: dict[str, Any]) -> list[str]:
        self._texts = []  # what came before a tool call is not the final message
        return _tool_lines(part, event)

    def _text_part(self, part: dict[str, Any], event: dict[str, Any]) -> list[str]:
        answer = text(part.get("text")) or ""
        self._texts.append(answer)
        return text_lines(answer)

    def _step_finish(self, part: dict[str, Any], event: dict[str, Any]) -> list[str]:
        """Counts the step; the last one (not ``tool-calls``) gives the result line."""
        self._steps += 1
        self._reason = text(part.get("reason"))
        tokens = mapping(part.get("tokens"))
        cache = mapping(tokens.get("cache"))
        for key, value in (
            ("input_tokens", tokens.get("input")),
            ("output_tokens", tokens.get("output")),
            ("reasoning_tokens", tokens.get("reasoning")),
            ("cache_read_input_tokens", cache.get("read")),
            ("cache_creation_input_tokens", cache.get("write")),
        ):
            if (count := integer(value)) is not None:
                self._usage[key] = self._usage.get(key, 0) + count
        if (cost := number(part.get("cost"))) is not None:
            self._cost = (self._cost or 0.0) + cost
        if self._reason == "tool-calls":
            return []
        tokens_in = sum(v for k, v in self._usage.items() if k not in _OUTPUT_KEYS)
        line = result_line(
            is_error=self._reason == "error" or self._error is not None,
            turns=self._steps,
            cost_usd=self._cost,
            tokens_in=tokens_in if self._usage else None,
            tokens_out=self._usage.get("output_tokens"),
        )
        return [line]

    def _error_event(self, part: dict[str, Any], event: dict[str, Any]) -> list[str]:
        error = mapping(event.get("error"))
        data = mapping(error.get("data"))
        message = text(data.get("message")) or text(error.get("name"))
        self._error = message or "error"
        auth = text(error.get("name")) == "ProviderAuthError"
        self._kind = FailureKind.AUTH if auth else http_kind(integer(data.get("statusCode")))
        if _out_of_quota(data):
            self._kind = FailureKind.USAGE_LIMIT
        headers = {str(k).lower(): v for k, v in mapping(data.get("responseHeaders")).items()}
        retry_after = text(headers.get("retry-after"))
        if retry_after is not None and retry_after.strip().isdigit():
            self._retry_after = float(retry_after.strip()[:9])
        return [f"error: {one_line(self._error)}"]


def _out_of_quota(data: dict[str, Any]) -> bool:
    """The provider's ``insufficient_quota``, as opencode passes it on (see the module)."""
    if _NO_QUOTA_TEXT.match(text(data.get("message")) or ""):
        return True
    for field in ("message", "responseBody"):
        found = _json_object(text(data.get(field)))
        inner = mapping(found.get("error")) or found
        if _NO_QUOTA in (inner.get("code"), inner.get("type")):
            return True
    return False


def _json_object(value: str | None) -> dict[str, Any]:
    if not value or not value.lstrip().startswith("{"):
        return {}
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def _tool_lines(part: dict[str, Any], event: dict[str, Any]) -> list[str]:
    """``→ <tool>: <command or path or input>``, then how it ended if it has."""
    tool = text(part.get("tool")) or "tool"
    state = mapping(part.get("state"))
    keys = ("command",) if tool == "bash" else _PATH_KEYS
    lines = [tool_line(tool, summary(state.get("input"), keys))]
    if state.get("status") == "completed":
        exit_code = integer(mapping(state.get("metadata")).get("exit"))
        failed = exit_code not in (None, 0)
        output = text(state.get("output")) or ""
        lines.append(outcome_line(failed, output, exit_code if failed else None))
    elif state.get("status") == "error":
        lines.append(outcome_line(True, text(state.get("error")) or ""))
    return lines

"""Failure kinds (SPEC §14.1) from real agent output, and reset times that make no sense."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fakes.events import recorded_events, recording, render
from tandem.agents.claude import ClaudeParser
from tandem.agents.codex import CodexParser
from tandem.agents.failures import checked_reset, clock_reset, relative_seconds
from tandem.agents.gemini import GeminiParser
from tandem.agents.opencode import OpencodeParser
from tandem.execution import AgentResult, FailureKind

NOW = datetime(2026, 12, 1, 22, 0, tzinfo=timezone.utc)


def claude(name: str) -> tuple[list[str], AgentResult]:
    parser = ClaudeParser(now=lambda: NOW)
    shown = render(parser, recording(name))
    result = parser.result()
    assert result is not None
    return shown, result


def codex(lines: list[str]) -> AgentResult:
    parser = CodexParser(now=lambda: NOW)
    render(parser, lines)
    result = parser.result()
    assert result is not None
    return result


def test_claude_subscription_limit_is_a_usage_limit_with_its_reset_time() -> None:
    shown, result = claude("claude-usage-limit")
    event = next(
        e for e in recorded_events("claude-usage-limit") if e["type"] == "rate_limit_event"
    )
    assert result.kind is FailureKind.USAGE_LIMIT
    assert result.reset_at == event["rate_limit_info"]["resetsAt"]
    assert "claude: usage limit reached (five_hour)" in shown


def test_claude_limit_text_alone_gives_the_reset_time_of_its_clock() -> None:
    lines = [line for line in recording("claude-usage-limit") if '"rate_limit_event"' not in line]
    parser = ClaudeParser(now=lambda: NOW)
    render(parser, lines)
    result = parser.result()
    assert result is not None
    assert result.kind is FailureKind.USAGE_LIMIT
    text = result.error or ""
    assert "You've hit your limit · resets" in text
    assert result.reset_at == clock_reset(text, NOW)


def test_claude_old_usage_limit_wording_carries_its_epoch() -> None:
    event = {
        "type": "result",
        "is_error": True,
        "result": "Claude AI usage limit reached|1796169600",
    }
    parser = ClaudeParser(now=lambda: NOW)
    parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    assert (result.kind, result.reset_at) == (FailureKind.USAGE_LIMIT, 1796169600)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("claude-http-429", FailureKind.RATE_LIMIT),
        ("claude-http-401", FailureKind.AUTH),
        ("claude-http-500", FailureKind.TRANSIENT),
        ("claude-api-retry", FailureKind.TRANSIENT),
        ("claude-failing-command", None),
    ],
)
def test_claude_api_errors_have_their_kind(name: str, kind: FailureKind | None) -> None:
    _, result = claude(name)
    assert result.kind is kind
    assert result.reset_at is None


def test_claude_api_retries_render_as_one_line_each_and_name_the_last_error() -> None:
    parser = ClaudeParser()
    shown = render(parser, recording("claude-api-retry"))
    assert shown[:2] == [
        "claude: API retry 1/2 in 0.5s (HTTP 500)",
        "claude: API retry 2/2 in 1.2s (HTTP 500)",
    ]
    assert parser.last_api_error() == "500 server_error"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("codex-usage-limit", FailureKind.USAGE_LIMIT),
        ("codex-http-429", FailureKind.RATE_LIMIT),
        ("codex-http-401", FailureKind.AUTH),
        ("codex-http-500", FailureKind.TRANSIENT),
    ],
)
def test_codex_failures_have_their_kind(name: str, kind: FailureKind) -> None:
    assert codex(recording(name)).kind is kind


def test_codex_usage_limit_resets_at_the_clock_time_it_names() -> None:
    result = codex(recording("codex-usage-limit"))
    assert "try again at 11:44 PM" in (result.error or "")
    assert result.reset_at == clock_reset("at 11:44 PM", NOW)


def test_codex_usage_limit_in_days_and_hours_is_relative() -> None:
    message = (
        "You've hit your usage limit. To get more access now, send a request to your admin "
        "or try again in 3 days 6 hours 57 minutes."
    )
    failed = json.dumps({"type": "turn.failed", "error": {"message": message}})
    result = codex([failed])
    assert result.kind is FailureKind.USAGE_LIMIT
    assert result.reset_at == NOW.timestamp() + 3 * 86400 + 6 * 3600 + 57 * 60


def gemini_result(message: str) -> AgentResult:
    parser = GeminiParser()
    event = {"type": "result", "status": "error", "error": {"type": "unknown", "message": message}}
    parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("name", "kind", "retry_after"),
    [
        ("gemini-http-500", FailureKind.TRANSIENT, None),
        ("gemini-http-429", FailureKind.RATE_LIMIT, 2.0),
        ("gemini-usage-limit", FailureKind.USAGE_LIMIT, None),
    ],
)
def test_gemini_recordings_have_their_kind(
    name: str, kind: FailureKind, retry_after: float | None
) -> None:
    parser = GeminiParser()
    render(parser, recording(name))
    result = parser.result()
    assert result is not None
    assert (result.kind, result.retry_after) == (kind, retry_after)


# Wordings built as gemini builds them (packages/core/src/utils/errorParsing.ts: "[API
# Error: <google error JSON>]"; googleQuotaErrors.ts: per-day quota is terminal, "Please
# retry in Ns" is the retry delay).
PER_MINUTE = (
    '[API Error: {"error":{"code":429,"message":"Resource has been exhausted (e.g. check '
    'quota). Please retry in 12.5s.","status":"RESOURCE_EXHAUSTED"}}]'
)
PER_DAY = (
    '[API Error: {"error":{"code":429,"message":"Quota exceeded for quota metric '
    "'Generate Content API requests per day' and limit 'GenerateContent request limit per "
    'day per user\'","status":"RESOURCE_EXHAUSTED"}}]'
)


def test_gemini_per_minute_quota_is_a_rate_limit_with_its_retry_delay() -> None:
    result = gemini_result(PER_MINUTE)
    assert (result.kind, result.retry_after) == (FailureKind.RATE_LIMIT, 12.5)


def test_gemini_per_day_quota_is_a_usage_limit() -> None:
    assert gemini_result(PER_DAY).kind is FailureKind.USAGE_LIMIT


def test_gemini_bad_key_is_auth() -> None:
    message = "[API Error: API key not valid. Please pass a valid API key. (Status: 400)]"
    assert gemini_result(message).kind is FailureKind.AUTH


def opencode_error(status: int, headers: dict[str, str]) -> AgentResult:
    event = next(e for e in recorded_events("opencode-http-400") if e["type"] == "error")
    event["error"]["data"].update(statusCode=status, responseHeaders=headers)
    parser = OpencodeParser()
    parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    return result


def test_opencode_errors_are_classified_by_their_status_code() -> None:
    assert opencode_error(400, {}).kind is None  # the recording: a bad request is the agent's
    limited = opencode_error(429, {"Retry-After": "30"})
    assert (limited.kind, limited.retry_after) == (FailureKind.RATE_LIMIT, 30.0)
    assert opencode_error(503, {}).kind is FailureKind.TRANSIENT
    assert opencode_error(401, {}).kind is FailureKind.AUTH
    event = {"type": "error", "error": {"name": "ProviderAuthError", "data": {"message": "no key"}}}
    parser = OpencodeParser()
    parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    assert (result.kind, result.error) == (FailureKind.AUTH, "no key")


def test_opencode_out_of_quota_is_a_usage_limit_without_a_reset() -> None:
    parser = OpencodeParser()
    shown = render(parser, recording("opencode-insufficient-quota"))
    assert shown == [
        'error: {"message":"You exceeded your current quota, please check your plan and '
        'billing details.","type":"insufficient_quota","code":"insufficient_quota"}'
    ]
    result = parser.result()
    assert result is not None
    assert (result.kind, result.reset_at, result.retry_after) == (
        FailureKind.USAGE_LIMIT,
        None,
        None,
    )


@pytest.mark.parametrize(
    "data",
    [  # later opencode versions: an APIError naming it, the provider's object in the body
        {"message": "Quota exceeded. Check your plan and billing details.", "isRetryable": False},
        {"message": "x", "responseBody": '{"type":"error","error":{"code":"insufficient_quota"}}'},
    ],
)
def test_opencode_quota_errors_of_later_versions_are_usage_limits(data: dict[str, Any]) -> None:
    parser = OpencodeParser()
    parser.feed(json.dumps({"type": "error", "error": {"name": "APIError", "data": data}}))
    result = parser.result()
    assert result is not None
    assert result.kind is FailureKind.USAGE_LIMIT


@pytest.mark.parametrize(
    "message",
    [  # other unknown errors stay the agent's; a JSON that is no quota error changes nothing
        '{"message":"Rate limit reached","code":"rate_limit_exceeded"}',
        '{"code": ["insufficient_quota"]}',
        "{not json",
        "insufficient_quota somewhere in prose",
    ],
)
def test_opencode_other_unknown_errors_stay_unclassified(message: str) -> None:
    parser = OpencodeParser()
    parser.feed(
        json.dumps(
            {"type": "error", "error": {"name": "UnknownError", "data": {"message": message}}}
        )
    )
    result = parser.result()
    assert result is not None
    assert result.kind is None


@pytest.mark.parametrize(
    "message",
    [
        "Something went wrong in a way nobody has seen before",
        "limit of 3 reached in your config",
        "HTTP 418 teapot",
    ],
)
def test_an_unknown_wording_is_not_guessed(message: str) -> None:
    assert codex([json.dumps({"type": "turn.failed", "error": {"message": message}})]).kind is None
    assert gemini_result(message).kind is None
    event = {"type": "result", "is_error": True, "result": message}
    parser = ClaudeParser(now=lambda: NOW)
    parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    assert result.kind is None


@pytest.mark.parametrize(
    "resets_at", [0, -5, NOW.timestamp() - 60, 1e300, float("nan"), float("inf"), 4102444800e3]
)
def test_absurd_reset_times_are_dropped(resets_at: float) -> None:
    assert checked_reset(resets_at, NOW) is None


def test_a_sensible_reset_time_is_kept() -> None:
    assert checked_reset(NOW.timestamp() + 3600, NOW) == NOW + timedelta(hours=1)


def test_a_rate_limit_event_with_a_reset_that_is_not_a_number_parses() -> None:
    events = [
        {"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": "soon"}},
        {"type": "result", "is_error": True, "result": "You've hit your limit"},
    ]
    parser = ClaudeParser(now=lambda: NOW)
    for event in events:
        parser.feed(json.dumps(event))
    result = parser.result()
    assert result is not None
    assert (result.kind, result.reset_at) == (FailureKind.USAGE_LIMIT, None)


def test_relative_spans() -> None:
    assert relative_seconds("Please retry in 2.5s.") == 2.5
    assert relative_seconds("retry in 500ms") == 0.5
    assert relative_seconds("try again in a moment") is None
    assert relative_seconds("try again in 2 fortnights") is None


def with_text_before_the_tool_call(name: str, event: Mapping[str, object]) -> list[str]:
    lines = recording(name)
    at = next(i for i, line in enumerate(lines) if '"tool_use"' in line)
    return [*lines[:at], json.dumps(event), *lines[at:]]


def test_gemini_answer_is_the_last_message_not_text_before_a_tool_call() -> None:
    first = {"type": "message", "role": "assistant", "content": "Let me look first.", "delta": True}
    parser = GeminiParser()
    shown = render(parser, with_text_before_the_tool_call("gemini-tool-call", first))
    result = parser.result()
    assert result is not None
    assert "Let me look first." in shown
    assert result.text == "Done: created hello.txt"


def test_opencode_answer_is_the_last_message_not_text_before_a_tool_call() -> None:
    first = {"type": "text", "part": {"type": "text", "text": "Let me look first."}}
    parser = OpencodeParser()
    shown = render(parser, with_text_before_the_tool_call("opencode-tool-call", first))
    result = parser.result()
    assert result is not None
    assert "Let me look first." in shown
    assert result.text == "Done: created hello.txt"


def test_clock_times_need_am_or_pm_as_a_word() -> None:
    assert clock_reset("10 amazing things", NOW) is None
    assert (
        clock_reset("resets 2pm (Asia/Shanghai)", NOW)
        == datetime(2026, 12, 2, 6, 0, tzinfo=timezone.utc).timestamp()
    )
    assert clock_reset("resets 9:15 a.m. (Not/AZone)", NOW) is not None  # unknown zone: local

"""GeminiParser against real gemini 0.61.0 stream-json output (tests/fakes/record.py).

The recordings were made with gemini installed outside the repository (see record.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fakes.events import agent_templates, event_lines, recorded_events, recording, render
from tandem.agents.gemini import GeminiParser
from tandem.execution import AgentResult

RESULT = '{"type":"result","status":"success","stats":{"input_tokens":4,"output_tokens":2}}'


def parsed(lines: list[str]) -> tuple[list[str], AgentResult | None]:
    """What a fresh parser renders for ``lines``, and its result."""
    parser = GeminiParser()
    return render(parser, lines), parser.result()


def delta(content: str, **fields: Any) -> str:
    """An assistant ``message`` delta line."""
    event = {"type": "message", "role": "assistant", "content": content, "delta": True}
    return json.dumps({**event, **fields})


def test_tool_call_recording_renders_call_outcome_text_and_result() -> None:
    shown, _ = parsed(recording("gemini-tool-call"))
    assert shown[:3] == [
        "→ run_shell_command: echo hello | tee hello.txt",
        "  ← ok: hello",
        "Done: created hello.txt",
    ]
    assert re.fullmatch(r"result: ok, \d+\.\ds, tokens in 30 / out 15", shown[3])
    assert len(shown) == 4


def test_tool_call_recording_result() -> None:
    _, result = parsed(recording("gemini-tool-call"))
    assert result is not None
    assert (result.text, result.is_error, result.error) == ("Done: created hello.txt", False, None)
    assert result.usage == {
        "input_tokens": 30,
        "output_tokens": 15,
        "total_tokens": 45,
        "cached": 0,
    }
    assert result.session_id == recorded_events("gemini-tool-call")[0]["session_id"]


def test_api_error_recording_is_an_error() -> None:
    shown, result = parsed(recording("gemini-http-500"))
    assert result is not None
    assert result.is_error
    assert result.error is not None
    assert "boom" in result.error
    assert shown[0].startswith("result: error, ")
    assert shown[1] == f"error: {result.error}"


def test_deltas_are_joined_into_whole_lines() -> None:
    parser = GeminiParser()
    assert parser.feed(delta("Hel")) == []
    assert parser.feed(delta("lo\nWor")) == ["Hello"]
    assert parser.feed(delta("ld")) == []
    assert parser.feed(RESULT) == ["World", "result: ok, tokens in 4 / out 2"]
    result = parser.result()
    assert result is not None
    assert result.text == "Hello\nWorld"


def test_user_messages_are_not_shown() -> None:
    shown, result = parsed([delta("the prompt", role="user", delta=False), RESULT])
    assert shown == ["result: ok, tokens in 4 / out 2"]
    assert result is not None
    assert result.text is None


def test_failed_tool_shows_its_error_and_error_events_their_severity() -> None:
    lines = [
        json.dumps(
            {"type": "tool_use", "tool_name": "write_file", "parameters": {"file_path": "a.md"}}
        ),
        json.dumps({"type": "tool_result", "status": "error", "error": {"message": "denied"}}),
        json.dumps({"type": "error", "severity": "warning", "message": "loop detected"}),
    ]
    assert parsed(lines)[0] == [
        "→ write_file: a.md",
        "  ← failed: denied",
        "warning: loop detected",
    ]


def test_noise_unknown_events_empty_and_truncated_lines() -> None:
    lines = recording("gemini-tool-call")
    truncated = lines[-1][:30]
    shown, result = parsed(
        ["YOLO mode is enabled.", "", '{"type":"future"}', *lines[:-1], truncated]
    )
    assert shown[0] == "YOLO mode is enabled."
    assert shown[-2:] == ["Done: created hello.txt", truncated]
    assert result is None


# Shapes the recordings lack, so that fuzzing reaches their branches too.
MORE_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "tool_result",
        "tool_id": "t",
        "status": "error",
        "error": {"type": "x", "message": "m"},
    },
    {"type": "error", "severity": "warning", "message": "m"},
    {"type": "message", "role": "assistant", "content": "a\nb", "delta": False},
]


@given(st.lists(event_lines([*agent_templates("gemini"), *MORE_TEMPLATES]), max_size=4))
def test_feed_never_raises(lines: list[str]) -> None:
    parser = GeminiParser()
    for line in lines:
        shown = parser.feed(line)
        assert isinstance(shown, list)
        assert all(isinstance(each, str) for each in shown)
    assert parser.result() is None or isinstance(parser.result(), AgentResult)

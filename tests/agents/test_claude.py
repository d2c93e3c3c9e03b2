"""ClaudeParser against real claude 2.1.330 stream-json output (tests/fakes/record.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.events import agent_templates, event_lines, recorded_events, recording, render
from tandem.agents.claude import ClaudeParser
from tandem.execution import AgentResult

RESULT_LINE = re.compile(r"result: ok, 2 turns, \d+\.\ds, \$0\.0003, tokens in 20 / out 10")


def parsed(lines: list[str]) -> tuple[list[str], AgentResult | None]:
    """What a fresh parser renders for ``lines``, and its result."""
    parser = ClaudeParser()
    return render(parser, lines), parser.result()


def test_tool_call_recording_renders_call_outcome_text_and_result() -> None:
    shown, _ = parsed(recording("claude-tool-call"))
    assert shown[:3] == [
        "→ Bash: echo hello | tee hello.txt",
        "  ← ok: hello",
        "Done: created hello.txt",
    ]
    assert RESULT_LINE.fullmatch(shown[3])
    assert len(shown) == 4  # the final text equals the assistant text just shown


def test_tool_call_recording_result() -> None:
    _, result = parsed(recording("claude-tool-call"))
    assert result is not None
    assert (result.text, result.is_error, result.error) == ("Done: created hello.txt", False, None)
    assert result.usage == {
        "input_tokens": 20,
        "output_tokens": 10,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    }
    assert result.turns == 2
    assert result.cost_usd == pytest.approx(0.00028)
    assert result.session_id == recorded_events("claude-tool-call")[0]["session_id"]


def test_failing_command_shows_the_exit_code_and_first_output_line() -> None:
    shown, result = parsed(recording("claude-failing-command"))
    assert shown[:3] == [
        "→ Bash: echo oops >&2; exit 3",
        "  ← failed (exit 3): oops",
        "The command failed",
    ]
    assert result is not None
    assert not result.is_error


def test_api_error_is_an_error_although_its_subtype_says_success() -> None:
    final = recorded_events("claude-http-500")[-1]
    assert (final["subtype"], final["is_error"]) == ("success", True)
    shown, result = parsed(recording("claude-http-500"))
    assert result is not None
    assert result.is_error
    assert result.error is not None
    assert result.error.startswith("API Error: 500 boom")
    assert shown[0].startswith("API Error: 500 boom")
    assert shown[1].startswith("result: error, 1 turn, ")


def test_error_subtype_without_text_reports_the_subtype() -> None:
    event = {"type": "result", "subtype": "error_max_turns", "is_error": True, "num_turns": 3}
    shown, result = parsed([json.dumps(event)])
    assert shown == ["result: error, 3 turns"]
    assert result is not None
    assert (result.is_error, result.error, result.text) == (True, "error_max_turns", None)


def test_final_text_differing_from_the_last_assistant_text_is_shown() -> None:
    shown, _ = parsed([json.dumps({"type": "result", "result": "line one\nline two"})])
    assert shown == ["result: ok", "line one", "line two"]


def test_file_tools_show_their_path_and_others_their_input() -> None:
    blocks = [
        {"type": "thinking", "thinking": "hmm"},
        {"type": "tool_use", "name": "Write", "input": {"file_path": "/w/a.md", "content": "x"}},
        {"type": "tool_use", "name": "Glob", "input": {"pattern": "**/*.py"}},
    ]
    event = {"type": "assistant", "message": {"content": blocks}}
    shown, _ = parsed([json.dumps(event)])
    assert shown == ["→ Write: /w/a.md", '→ Glob: {"pattern": "**/*.py"}']


def test_tool_result_content_blocks_are_read() -> None:
    content = [{"type": "text", "text": "\nfirst\nsecond"}]
    block = {"type": "tool_result", "tool_use_id": "t", "content": content, "is_error": True}
    shown, _ = parsed([json.dumps({"type": "user", "message": {"content": [block]}})])
    assert shown == ["  ← failed: first"]


def test_noise_unknown_events_and_empty_lines() -> None:
    lines = ["warming up", '{"type": "system", "subtype": "task_started"}', "", "  ", "[1, 2]"]
    shown, result = parsed(lines)
    assert shown == ["warming up", "[1, 2]"]
    assert result is None


def test_truncated_last_line_is_shown_and_gives_no_result() -> None:
    lines = recording("claude-tool-call")
    truncated = lines[-1][:40]
    shown, result = parsed([*lines[:-1], truncated])
    assert shown[-1] == truncated
    assert result is None


# Shapes the recordings lack, so that fuzzing reaches their branches too.
MORE_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "assistant",
        "message": {
            "content": [{"type": "tool_use", "name": "Write", "input": {"file_path": "a"}}]
        },
    },
    {
        "type": "user",
        "message": {
            "content": [
                {
                    "type": "tool_result",
                    "content": [{"type": "text", "text": "Exit code 2\nx"}],
                    "is_error": True,
                }
            ]
        },
    },
]


@given(st.lists(event_lines([*agent_templates("claude"), *MORE_TEMPLATES]), max_size=4))
def test_feed_never_raises(lines: list[str]) -> None:
    parser = ClaudeParser()
    for line in lines:
        shown = parser.feed(line)
        assert isinstance(shown, list)
        assert all(isinstance(item, str) for item in shown)
    assert parser.result() is None or isinstance(parser.result(), AgentResult)

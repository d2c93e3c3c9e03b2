"""OpencodeParser against real opencode 1.18.33 ``run --format json`` output.

The recordings were made with opencode installed outside the repository (see
tests/fakes/record.py). Its error recording uses HTTP 400: opencode retries a 500 forever.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fakes.events import agent_templates, event_lines, recorded_events, recording, render
from tandem.agents.opencode import OpencodeParser
from tandem.execution import AgentResult


def parsed(lines: list[str]) -> tuple[list[str], AgentResult | None]:
    """What a fresh parser renders for ``lines``, and its result."""
    parser = OpencodeParser()
    return render(parser, lines), parser.result()


def tool(name: str, state: dict[str, Any]) -> str:
    """A ``tool_use`` line."""
    return json.dumps({"type": "tool_use", "part": {"type": "tool", "tool": name, "state": state}})


def step_finish(reason: str, cost: float = 0.5) -> str:
    """A ``step_finish`` line with a few tokens."""
    tokens = {"input": 3, "output": 2, "reasoning": 1, "cache": {"read": 4, "write": 0}}
    part = {"type": "step-finish", "reason": reason, "tokens": tokens, "cost": cost}
    return json.dumps({"type": "step_finish", "sessionID": "ses_1", "part": part})


def test_tool_call_recording_renders_call_outcome_text_and_result() -> None:
    shown, _ = parsed(recording("opencode-tool-call"))
    assert shown == [
        "→ bash: echo hello | tee hello.txt",
        "  ← ok: hello",
        "Done: created hello.txt",
        "result: ok, 2 turns, $0.0000, tokens in 20 / out 10",
    ]


def test_tool_call_recording_result() -> None:
    _, result = parsed(recording("opencode-tool-call"))
    assert result is not None
    assert (result.text, result.is_error, result.error) == ("Done: created hello.txt", False, None)
    assert result.turns == 2
    assert result.usage["input_tokens"] == 20
    assert result.usage["output_tokens"] == 10
    assert result.session_id == recorded_events("opencode-tool-call")[0]["sessionID"]


def test_failing_command_shows_the_exit_code() -> None:
    shown, _ = parsed(recording("opencode-failing-command"))
    assert shown[:2] == ["→ bash: echo oops >&2; exit 3", "  ← failed (exit 3): oops"]


def test_error_event_recording_is_an_error() -> None:
    shown, result = parsed(recording("opencode-http-400"))
    assert shown == ["error: bad request boom"]
    assert result is not None
    assert (result.is_error, result.error, result.text) == (True, "bad request boom", None)


def test_steps_add_up_tokens_and_cost() -> None:
    shown, result = parsed([step_finish("tool-calls"), step_finish("stop")])
    assert shown == ["result: ok, 2 turns, $1.0000, tokens in 14 / out 4"]
    assert result is not None
    assert result.cost_usd == 1.0
    assert result.usage["cache_read_input_tokens"] == 8
    assert result.session_id == "ses_1"


def test_finish_reason_error_is_an_error() -> None:
    _, result = parsed([step_finish("error")])
    assert result is not None
    assert result.is_error


def test_tool_states() -> None:
    lines = [
        tool("write", {"status": "completed", "input": {"filePath": "/w/a.md"}, "output": ""}),
        tool("edit", {"status": "error", "input": {"filePath": "b.py"}, "error": "no match"}),
        tool("glob", {"status": "running", "input": {"pattern": "*.py"}}),
    ]
    assert parsed(lines)[0] == [
        "→ write: /w/a.md",
        "  ← ok",
        "→ edit: b.py",
        "  ← failed: no match",
        '→ glob: {"pattern": "*.py"}',
    ]


def test_no_result_without_a_finished_step_or_error() -> None:
    start = '{"type":"step_start","part":{"type":"step-start"}}'
    assert parsed([start]) == ([], None)


def test_noise_unknown_events_empty_and_truncated_lines() -> None:
    lines = recording("opencode-tool-call")
    truncated = lines[-1][:30]
    shown, result = parsed(["booting", "", '{"type":"future"}', *lines[:-1], truncated])
    assert shown[0] == "booting"
    assert shown[-1] == truncated
    assert result is None  # the step before the cut finished asking for tools


# Shapes the recordings lack, so that fuzzing reaches their branches too.
MORE_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "tool_use",
        "part": {
            "tool": "edit",
            "state": {"status": "error", "input": {"filePath": "b"}, "error": "e"},
        },
    },
    {
        "type": "step_finish",
        "part": {"reason": "error", "tokens": {"input": 1, "cache": {"read": 1}}, "cost": 0.1},
    },
]


@given(st.lists(event_lines([*agent_templates("opencode"), *MORE_TEMPLATES]), max_size=4))
def test_feed_never_raises(lines: list[str]) -> None:
    parser = OpencodeParser()
    for line in lines:
        shown = parser.feed(line)
        assert isinstance(shown, list)
        assert all(isinstance(each, str) for each in shown)
    assert parser.result() is None or isinstance(parser.result(), AgentResult)

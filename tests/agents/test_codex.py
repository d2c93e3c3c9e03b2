"""CodexParser against real codex 0.169.0 ``exec --json`` output (tests/fakes/record.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fakes.events import agent_templates, event_lines, recorded_events, recording, render
from tandem.agents.codex import CodexParser
from tandem.execution import AgentResult

STARTED = [
    '{"type":"thread.started","thread_id":"t-1"}',
    '{"type":"turn.started"}',
]
COMPLETED = '{"type":"turn.completed","usage":{"input_tokens":7,"output_tokens":3}}'


def parsed(lines: list[str]) -> tuple[list[str], AgentResult | None]:
    """What a fresh parser renders for ``lines``, and its result."""
    parser = CodexParser()
    return render(parser, lines), parser.result()


def item(**fields: Any) -> str:
    """An ``item.completed`` line."""
    return json.dumps({"type": "item.completed", "item": {"id": "item_0", **fields}})


def test_tool_call_recording_shows_the_command_when_it_starts_and_its_outcome() -> None:
    shown, _ = parsed(recording("codex-tool-call"))
    assert shown == [
        "→ $ echo hello | tee hello.txt",
        "  ← ok (exit 0): hello",
        "Done: created hello.txt",
        "result: ok, tokens in 20 / out 10",
    ]


def test_a_running_command_is_shown_before_it_ends() -> None:
    started = json.dumps(
        {
            "type": "item.started",
            "item": {
                "id": "item_0",
                "type": "command_execution",
                "command": "/bin/bash -lc 'make test'",
                "status": "in_progress",
            },
        }
    )
    assert parsed([started])[0] == ["→ $ make test"]


def test_tool_call_recording_result() -> None:
    _, result = parsed(recording("codex-tool-call"))
    assert result is not None
    assert (result.text, result.is_error, result.error) == ("Done: created hello.txt", False, None)
    assert result.usage["input_tokens"] == 20
    assert result.usage["output_tokens"] == 10
    assert result.session_id == recorded_events("codex-tool-call")[0]["thread_id"]


def test_failing_command_shows_exit_code_and_first_output_line() -> None:
    shown, result = parsed(recording("codex-failing-command"))
    assert shown[:2] == ["→ $ echo oops >&2; exit 3", "  ← failed (exit 3): oops"]
    assert result is not None
    assert not result.is_error


def test_turn_failed_is_an_error_shown_once() -> None:
    message = recorded_events("codex-http-500")[-1]["error"]["message"]
    shown, result = parsed(recording("codex-http-500"))
    assert shown == [f"error: {message}"]
    assert result is not None
    assert (result.is_error, result.error, result.text) == (True, message, None)


def test_error_event_then_completed_turn_is_not_an_error() -> None:
    reconnect = '{"type":"error","message":"Reconnecting... 1/5"}'
    shown, result = parsed([*STARTED, reconnect, item(type="agent_message", text="hi"), COMPLETED])
    assert shown == ["error: Reconnecting... 1/5", "hi", "result: ok, tokens in 7 / out 3"]
    assert result is not None
    assert not result.is_error


def test_error_event_without_completed_turn_is_an_error() -> None:
    _, result = parsed([*STARTED, '{"type":"error","message":"stream closed"}'])
    assert result is not None
    assert (result.is_error, result.error) == (True, "stream closed")


def test_no_result_until_the_turn_ends() -> None:
    _, result = parsed([*STARTED, item(type="agent_message", text="partial")])
    assert result is None


def test_other_tool_items_render_one_line_each() -> None:
    changes = [{"path": "notes/a.md", "kind": "add"}, {"path": "b.py", "kind": "update"}]
    lines = [
        item(type="file_change", changes=changes, status="completed"),
        item(type="mcp_tool_call", server="docs", tool="search", arguments={"q": "x"}),
        item(type="web_search", query="python shlex"),
        item(type="reasoning", text="thinking"),
        item(type="error", message="Model metadata not found"),
    ]
    assert parsed(lines)[0] == [
        "→ file_change: notes/a.md, b.py",
        '→ docs.search: {"q": "x"}',
        "→ web_search: python shlex",
        "warning: Model metadata not found",
    ]


def test_only_a_shell_wrapper_is_unwrapped() -> None:
    lines = [
        item(type="command_execution", command="python3 -c 'print(1)'", exit_code=0),
        item(type="command_execution", command="/bin/bash -lc 'unbalanced", exit_code=0),
    ]
    assert parsed(lines)[0] == [
        "→ $ python3 -c 'print(1)'",
        "  ← ok (exit 0)",
        "→ $ /bin/bash -lc 'unbalanced",
        "  ← ok (exit 0)",
    ]


def test_noise_unknown_events_empty_and_truncated_lines() -> None:
    lines = recording("codex-tool-call")
    truncated = lines[-1][:30]
    noise = "Reading additional input from stdin..."
    shown, result = parsed([noise, "", '{"type":"turn.future"}', *lines[:-1], truncated])
    assert shown[0] == noise
    assert shown[-1] == truncated
    assert result is None


# Shapes the recordings lack, so that fuzzing reaches their branches too.
MORE_TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "item.completed",
        "item": {
            "type": "file_change",
            "changes": [{"path": "a", "kind": "add"}],
            "status": "failed",
        },
    },
    {
        "type": "item.completed",
        "item": {"type": "mcp_tool_call", "server": "s", "tool": "t", "arguments": {}},
    },
    {"type": "item.completed", "item": {"type": "web_search", "query": "q"}},
    {"type": "item.completed", "item": {"type": "error", "message": "m"}},
    {"type": "error", "message": "Reconnecting... 1/5"},
]


@given(st.lists(event_lines([*agent_templates("codex"), *MORE_TEMPLATES]), max_size=4))
def test_feed_never_raises(lines: list[str]) -> None:
    parser = CodexParser()
    for line in lines:
        shown = parser.feed(line)
        assert isinstance(shown, list)
        assert all(isinstance(each, str) for each in shown)
    assert parser.result() is None or isinstance(parser.result(), AgentResult)

"""tandem driving the real ``codex`` binary (tools/agent-clis) against a fake Responses API."""

from __future__ import annotations

import pytest

from e2e.e2e_support import (
    ACTORS,
    CODEX,
    Lab,
    Setup,
    api_error,
    interrupted,
    one_iteration,
    router_after_tool_call,
    secret_redacted,
    stalled_stream,
    stuck_tool,
)


def commands(setup: Setup, actor: str) -> list[dict[str, object]]:
    """The finished ``command_execution`` items in ``actor``'s turn log."""
    return [
        event["item"]
        for event in setup.raw_events(actor)
        if event.get("type") == "item.completed" and event["item"]["type"] == "command_execution"
    ]


@pytest.mark.e2e
def test_an_iteration_commits_each_turns_tool_work(lab: Lab) -> None:
    setup = one_iteration(lab, CODEX)
    for actor in ACTORS:
        result = setup.turn_end(actor)["result"]
        completed = setup.raw_event(actor, "turn.completed")
        assert result["text"] == "Done"
        assert result["usage"] == completed["usage"]
        assert result["usage"]["input_tokens"] > 0
        assert result["session_id"] == setup.raw_event(actor, "thread.started")["thread_id"]
        assert result["session_id"]
        assert [item["exit_code"] for item in commands(setup, actor)] == [0]


@pytest.mark.e2e
def test_an_api_error_fails_the_turn_with_codexs_message(lab: Lab) -> None:
    setup, reason = api_error(lab, CODEX)
    # codex words a 500 its own way ("high demand"); tandem passes on what codex said.
    failed = setup.raw_event("galph", "turn.failed")
    assert failed["error"]["message"]
    assert failed["error"]["message"] in reason


@pytest.mark.e2e
def test_a_stalled_stream_is_ended_by_the_wall_clock_timeout(lab: Lab) -> None:
    stalled_stream(lab, CODEX)


@pytest.mark.e2e
def test_a_stuck_tool_in_its_own_session_is_killed_at_the_timeout(lab: Lab) -> None:
    stuck_tool(lab, CODEX)


@pytest.mark.e2e
def test_ctrl_c_fails_the_turn_releases_the_lease_and_leaves_nothing(lab: Lab) -> None:
    interrupted(lab, CODEX)


@pytest.mark.e2e
def test_a_secret_the_agent_prints_is_masked_everywhere(lab: Lab) -> None:
    setup, _ = secret_redacted(lab, CODEX)
    for actor in ACTORS:
        assert [item["aggregated_output"] for item in commands(setup, actor)] == ["***\n"]
        assert setup.raw_event(actor, "item.completed")["item"]["text"] == "The token is ***."


@pytest.mark.e2e
def test_the_router_answer_after_a_tool_call_is_the_final_message(lab: Lab) -> None:
    router_after_tool_call(lab, CODEX)

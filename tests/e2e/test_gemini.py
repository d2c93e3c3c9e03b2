"""tandem driving the real ``gemini`` binary (tools/agent-clis) against a fake Gemini API."""

from __future__ import annotations

import pytest

from e2e.e2e_support import (
    ACTORS,
    GEMINI,
    Lab,
    api_error,
    one_iteration,
    router_after_tool_call,
)


@pytest.mark.e2e
def test_an_iteration_commits_each_turns_tool_work(lab: Lab) -> None:
    setup = one_iteration(lab, GEMINI)
    for actor in ACTORS:
        result = setup.turn_end(actor)["result"]
        final = setup.raw_event(actor, "result")
        assert result["text"] == "Done"
        assert final["status"] == "success"
        assert result["usage"]["input_tokens"] == final["stats"]["input_tokens"] > 0
        assert result["usage"]["output_tokens"] == final["stats"]["output_tokens"] > 0
        assert result["session_id"] == setup.raw_event(actor, "init")["session_id"]
        assert result["session_id"]
        assert [e["status"] for e in setup.raw_events(actor) if e["type"] == "tool_result"] == [
            "success"
        ]


@pytest.mark.e2e
def test_an_api_error_fails_the_turn_with_geminis_message(lab: Lab) -> None:
    # general.maxAttempts 1 (fakes.servers): one try, no backoff.
    setup, reason = api_error(lab, GEMINI)
    final = setup.raw_event("galph", "result")
    assert final["status"] == "error"
    assert "boom" in final["error"]["message"]
    assert "boom" in reason


@pytest.mark.e2e
def test_the_router_answer_after_a_tool_call_is_the_final_message(lab: Lab) -> None:
    router_after_tool_call(lab, GEMINI)

"""tandem driving the real ``opencode`` binary (tools/agent-clis) against fake Chat Completions."""

from __future__ import annotations

import pytest

from e2e.e2e_support import ACTORS, OPENCODE, Lab, one_iteration, router_after_tool_call


@pytest.mark.e2e
def test_an_iteration_commits_each_turns_tool_work(lab: Lab) -> None:
    setup = one_iteration(lab, OPENCODE)
    for actor in ACTORS:
        result = setup.turn_end(actor)["result"]
        steps = [e["part"] for e in setup.raw_events(actor) if e["type"] == "step_finish"]
        assert [step["reason"] for step in steps] == ["tool-calls", "stop"]
        assert result["text"] == "Done"
        assert result["turns"] == 2
        assert result["usage"]["input_tokens"] == sum(s["tokens"]["input"] for s in steps) > 0
        assert result["usage"]["output_tokens"] == sum(s["tokens"]["output"] for s in steps) > 0
        assert result["session_id"] == setup.raw_event(actor, "text")["sessionID"]
        assert result["session_id"]
        tools = [e["part"]["state"] for e in setup.raw_events(actor) if e["type"] == "tool_use"]
        assert [(t["status"], t["metadata"]["exit"]) for t in tools] == [("completed", 0)]
    # Its npm registry lookups came to the fake server (NPM_CONFIG_REGISTRY), not the internet.
    assert any(request["method"] == "GET" for request in setup.server.requests())


@pytest.mark.e2e
def test_the_router_answer_after_a_tool_call_is_the_final_message(lab: Lab) -> None:
    router_after_tool_call(lab, OPENCODE)

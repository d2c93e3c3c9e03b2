"""tandem driving the real ``claude`` binary (tools/agent-clis) against a fake Anthropic API."""

from __future__ import annotations

import uuid

import pytest

from e2e.e2e_support import (
    ACTORS,
    CLAUDE,
    Lab,
    api_error,
    galph_failed,
    interrupted,
    one_iteration,
    router_after_tool_call,
    secret_redacted,
    stalled_stream,
    stuck_tool,
)
from helpers import git


@pytest.mark.e2e
def test_an_iteration_commits_each_turns_tool_work(lab: Lab) -> None:
    setup = one_iteration(lab, CLAUDE)
    for actor in ACTORS:
        result = setup.turn_end(actor)["result"]
        final = setup.raw_event(actor, "result")
        init = setup.raw_event(actor, "system")
        assert result["text"] == final["result"] == "Done"
        assert result["cost_usd"] == final["total_cost_usd"]
        assert result["cost_usd"] > 0
        assert result["usage"]["input_tokens"] == final["usage"]["input_tokens"] > 0
        assert result["usage"]["output_tokens"] == final["usage"]["output_tokens"] > 0
        assert result["session_id"] == init["session_id"]
        assert result["session_id"]
        assert result["turns"] == final["num_turns"] == 2


@pytest.mark.e2e
def test_an_api_error_fails_the_turn_with_claudes_message(lab: Lab) -> None:
    setup, reason = api_error(lab, CLAUDE)
    final = setup.raw_event("galph", "result")
    assert final["is_error"] is True
    assert final["result"] in reason
    assert "boom" in reason


@pytest.mark.e2e
def test_a_stalled_stream_is_ended_by_the_wall_clock_timeout(lab: Lab) -> None:
    stalled_stream(lab, CLAUDE)


@pytest.mark.e2e
def test_a_stuck_tool_in_its_own_session_is_killed_at_the_timeout(lab: Lab) -> None:
    stuck_tool(lab, CLAUDE)


@pytest.mark.e2e
def test_ctrl_c_fails_the_turn_releases_the_lease_and_leaves_nothing(lab: Lab) -> None:
    interrupted(lab, CLAUDE)


@pytest.mark.e2e
def test_a_secret_the_agent_prints_is_masked_everywhere(lab: Lab) -> None:
    setup, run = secret_redacted(lab, CLAUDE)
    assert "  ← ok: ***" in run.out
    for actor in ACTORS:
        results = [
            block
            for event in setup.raw_events(actor)
            if event.get("type") == "user"
            for block in event["message"]["content"]
            if block.get("type") == "tool_result"
        ]
        assert [block["content"] for block in results] == ["***"]
        assert setup.raw_event(actor, "result")["result"] == "The token is ***."


@pytest.mark.e2e
def test_a_secret_in_an_api_error_is_masked_in_the_failure_state_and_commit(lab: Lab) -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    script = [{"error": {"status": 500, "message": f"boom {secret}"}}]
    setup = lab.setup(CLAUDE, script, extra_env={"MY_SERVICE_TOKEN": secret})
    run, _ = setup.tandem("run", "--iterations", "1")
    reason = galph_failed(setup, run)
    assert "boom ***" in reason
    assert secret not in run.out + run.err
    assert secret not in (setup.root / "sync" / "state.json").read_text()
    assert secret not in git(setup.root, "log", "--format=%B")
    for path in (setup.root / "logs").rglob("*"):
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


@pytest.mark.e2e
def test_the_router_answer_after_a_tool_call_is_the_final_message(lab: Lab) -> None:
    router_after_tool_call(lab, CLAUDE)

"""The agent executor with real child processes: reasons, kinds, heartbeats, waiting."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

from fakes.events import recorded_events
from tandem.agents import BUILTINS
from tandem.agents.dispatch import Dispatch
from tandem.agents.executor import AgentExecutor
from tandem.config import AgentConfig
from tandem.execution import ExecResult, FailureKind, Status, TurnContext
from tandem.logs import Console, TurnLog
from tandem.redaction import Redactor


def fake(tmp_path: Path, name: str, body: str, **config: object) -> AgentExecutor:
    """An executor whose agent ``name`` is a Python script with ``body``: the built-in of
    that name through ``<NAME>_CMD``, or a command agent if there is no such built-in."""
    program = tmp_path / f"fake-{name}"
    program.write_text(f"#!{sys.executable}\nimport json, os, sys, time\n{body}\n")
    program.chmod(0o755)
    env: dict[str, str] = {}
    if name in BUILTINS:
        env[f"{name.upper()}_CMD"] = str(program)
    else:
        config["commands"] = {name: (str(program),)}
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    full = {**os.environ, "IS_SANDBOX": "1", **env}
    redactor = Redactor(full)
    return AgentExecutor(
        config=AgentConfig(default=name, **config),  # type: ignore[arg-type]
        dispatch=Dispatch(default=name),
        root=root,
        env=full,
        console=Console(redactor, out=io.BytesIO(), err=io.StringIO()),
        redactor=redactor,
    )


def run(agents: AgentExecutor, turn_id: str = "turn-1") -> ExecResult:
    prompt = agents.root.parent / "prompt.md"
    prompt.write_text("do the thing\n")
    log = TurnLog(agents.root.parent / f"{turn_id}.log", f"{turn_id}.log", agents.redactor)
    try:
        turn = TurnContext("galph", 1, "prompt.md", log, agents.config.default, turn_id=turn_id)
        return agents.execute(prompt, turn)
    finally:
        log.close()


def console_out(agents: AgentExecutor) -> str:
    out = agents.console.out
    assert isinstance(out, io.BytesIO)
    return out.getvalue().decode()


def printing(events: list[dict[str, object]], pause: float = 0.0, then: str = "") -> str:
    """A script body that prints ``events`` (one per ``pause`` seconds), then runs ``then``."""
    return (
        f"for line in {[json.dumps(e) for e in events]!r}:\n"
        f"    print(line, flush=True)\n"
        f"    time.sleep({pause})\n"
        f"{then}"
    )


RETRY: dict[str, object] = {
    "type": "system",
    "subtype": "api_retry",
    "attempt": 1,
    "max_retries": 10,
    "retry_delay_ms": 4100,
    "error_status": 429,
    "error": "rate_limit_error",
}
SUCCESS: dict[str, object] = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "done",
}
TEXT: dict[str, object] = {
    "type": "assistant",
    "message": {"content": [{"type": "text", "text": "working"}]},
}


def test_a_timed_out_run_names_the_last_api_error(tmp_path: Path) -> None:
    body = printing([RETRY], then="time.sleep(60)")
    agents = fake(tmp_path, "claude", body, timeout_secs=1.5, kill_grace_secs=1)
    done = run(agents)
    assert done.status is Status.FAILED
    assert done.kind is FailureKind.TIMEOUT
    assert done.failure is not None
    assert done.failure.startswith("timed out after ")
    assert done.failure.endswith("; last API error: 429 rate_limit_error")
    assert "claude: API retry 1/10 in 4.1s (HTTP 429)" in console_out(agents)


def test_api_retries_do_not_count_as_output_for_the_heartbeat(tmp_path: Path) -> None:
    body = printing([RETRY] * 12 + [SUCCESS], pause=0.25)
    retrying = fake(tmp_path, "claude", body, heartbeat_secs=1)
    assert run(retrying).ok
    assert "still running: galph prompt.md" in console_out(retrying)
    body = printing([TEXT] * 12 + [SUCCESS], pause=0.25)
    working = fake(tmp_path, "claude", body, heartbeat_secs=1)
    assert run(working).ok
    assert "still running" not in console_out(working)


def test_codex_failing_at_start_up_says_why(tmp_path: Path) -> None:
    why = "Error: CODEX_HOME points to '/nope', but that path does not exist"
    body = (
        "print('Reading additional input from stdin...', file=sys.stderr)\n"
        f"print({why!r}, file=sys.stderr)\n"
        "sys.exit(1)"
    )
    done = run(fake(tmp_path, "codex", body))
    assert (done.status, done.kind) == (Status.FAILED, FailureKind.AGENT)
    assert done.failure == f"exited with 1: {why}"


def test_a_run_without_a_final_result_gives_its_last_stderr_line(tmp_path: Path) -> None:
    body = "print('fatal: model overloaded, giving up', file=sys.stderr)"
    done = run(fake(tmp_path, "claude", body))
    assert done.failure == (
        "the agent's output has no final result; last stderr line: "
        "fatal: model overloaded, giving up"
    )


def limit_lines(resets_at: object) -> list[dict[str, object]]:
    events = [e for e in recorded_events("claude-usage-limit") if e.get("subtype") != "init"]
    for event in events:
        if event["type"] == "rate_limit_event":
            event["rate_limit_info"]["resetsAt"] = resets_at
    return events


def test_a_usage_limit_carries_its_reset_time(tmp_path: Path) -> None:
    reset = int(time.time()) + 3600
    done = run(fake(tmp_path, "claude", printing(limit_lines(reset), then="sys.exit(1)")))
    assert done.kind is FailureKind.USAGE_LIMIT
    assert done.reset_at is not None
    assert done.reset_at.timestamp() == reset


def test_an_absurd_reset_time_is_dropped_not_waited_for(tmp_path: Path) -> None:
    for absurd in (10**15, 1, "tomorrow"):
        events = [e for e in limit_lines(absurd) if e["type"] != "assistant"]
        events[-1]["result"] = "usage limit reached"
        done = run(fake(tmp_path, "claude", printing(events, then="sys.exit(1)")))
        assert (done.kind, done.reset_at) == (FailureKind.USAGE_LIMIT, None), absurd


def test_an_agent_that_closes_its_output_and_works_on_is_waited_for(tmp_path: Path) -> None:
    body = (
        "os.close(1); os.close(2)\n"
        "time.sleep(2)\n"
        "open('late.txt', 'w').write('written after the pipes closed')"
    )
    agents = fake(tmp_path, "worker", body)
    started = time.monotonic()
    done = run(agents)
    assert done.ok, done.failure
    assert time.monotonic() - started >= 2
    assert (agents.root / "late.txt").read_text() == "written after the pipes closed"


def test_an_agent_with_closed_output_still_times_out(tmp_path: Path) -> None:
    body = "os.close(1); os.close(2)\ntime.sleep(60)"
    done = run(fake(tmp_path, "worker", body, timeout_secs=1, kill_grace_secs=1))
    assert done.kind is FailureKind.TIMEOUT


def test_every_process_of_a_turn_carries_its_turn_id_and_tree(tmp_path: Path) -> None:
    body = (
        "marks = {k: os.environ.get(k) for k in ('TANDEM_TURN_ID', 'TANDEM_ROOT')}\n"
        "open('marks.json', 'w').write(json.dumps(marks))"
    )
    agents = fake(tmp_path, "worker", body)
    assert run(agents, "turn-42").ok
    marks = json.loads((agents.root / "marks.json").read_text())
    assert marks == {"TANDEM_TURN_ID": "turn-42", "TANDEM_ROOT": str(agents.root.resolve())}


def rate_limited(retry_after: str) -> dict[str, object]:
    data = {"message": "slow down", "statusCode": 429, "isRetryable": True}
    data["responseHeaders"] = {"retry-after": retry_after}
    return {"type": "error", "error": {"name": "APIError", "data": data}}


def test_a_sensible_retry_after_is_kept_and_an_absurd_one_dropped(tmp_path: Path) -> None:
    kept = run(fake(tmp_path, "opencode", printing([rate_limited("30")], then="sys.exit(1)")))
    assert (kept.kind, kept.retry_after) == (FailureKind.RATE_LIMIT, 30.0)
    body = printing([rate_limited("999999999")], then="sys.exit(1)")
    dropped = run(fake(tmp_path, "opencode", body))
    assert (dropped.kind, dropped.retry_after) == (FailureKind.RATE_LIMIT, None)

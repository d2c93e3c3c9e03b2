"""Unattended runs in the loop (SPEC §14.2 to §14.4, §16): pauses, retries, budgets and
notifications, on real git repositories with a scripted executor at the executor seam."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import git, make_host, open_test_host, tandem
from scripted import CtrlC, FastInterrupt, Outcome, ScriptedExecutor
from tandem.errors import Interrupted, StateError, TurnFailed
from tandem.execution import FailureKind
from tandem.interrupts import Interrupt
from tandem.notify import Notifier
from tandem.orchestrator import run_combined
from tandem.router import RouterContext
from tandem.statefile import parse

USAGE = FailureKind.USAGE_LIMIT


def combined(
    root: Path, iterations: int, executor: ScriptedExecutor, interrupt: Interrupt | None = None
) -> int:
    host = open_test_host(root)
    ctx = RouterContext.from_config(host.config)
    return run_combined(
        host, ctx, executor, iterations=iterations, interrupt=interrupt or Interrupt()
    )


def subjects(root: Path) -> list[str]:
    return git(root, "log", "--reverse", "--format=%s").splitlines()[1:]


def test_a_usage_limit_pauses_then_the_same_turn_runs_again_and_completes(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path)
    agent = ScriptedExecutor(host.root, {"galph": [Outcome(USAGE, reset_in=1.5)]})
    began = time.monotonic()
    assert combined(host.root, 1, agent) == 0
    assert time.monotonic() - began >= 1.4  # the reset was waited for
    assert agent.runs == [("galph", 1), ("galph", 1), ("ralph", 1)]
    assert [s.split(" prompt=")[0] for s in subjects(host.root)] == [
        "[SYNC i=1] actor=galph status=paused",
        "[SYNC i=1] actor=galph → next=ralph status=ok",
        "[SYNC i=2] actor=ralph → next=galph status=ok",
    ]
    paused = json.loads(git(host.root, "show", "HEAD~2:sync/state.json"))
    assert (paused["status"], paused["expected_actor"]) == ("paused", "galph")
    assert paused["pause"]["kind"] == "usage_limit"
    assert paused["lease_owner"] is not None  # the pausing process keeps the turn
    # the file the agent wrote before the limit is in the pause commit
    assert git(host.root, "show", "HEAD~2:input.md") == "step 1\n"
    assert host.state()["status"] == "complete"
    assert "pause" not in host.state()
    assert host.state()["spent"]["turns"] == 3
    receipt = git(host.root, "log", "-1", "--format=%B", "HEAD~2")
    assert "Tandem-Result: pause:usage_limit" in receipt


def test_ctrl_c_during_a_pause_leaves_it_paused_and_a_restart_waits_out_the_rest(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path)
    agent = ScriptedExecutor(host.root, {"galph": [Outcome(USAGE, reset_in=2.5)]})
    with pytest.raises(Interrupted):
        combined(host.root, 1, agent, CtrlC())
    state = host.state()
    assert (state["status"], state["pause"]["kind"]) == ("paused", "usage_limit")
    shown = tandem(host.root, "status", env=host.env())
    assert "paused: galph usage_limit until" in shown.out
    assert "the turn reruns then" in shown.out
    assert "spent: $0.00, 0 tokens, 1 turns" in shown.out
    assert combined(host.root, 1, agent) == 0
    assert agent.runs == [("galph", 1), ("galph", 1), ("ralph", 1)]  # no extra run
    assert host.state()["status"] == "complete"


def test_max_pause_secs_ends_the_pause_with_the_turn_failed_with_its_kind(tmp_path: Path) -> None:
    host = make_host(tmp_path, "limits:\n  max_pause_secs: 2\n")
    agent = ScriptedExecutor(host.root, {"galph": [Outcome(USAGE, reset_in=3600)]})
    with pytest.raises(TurnFailed, match=r"later than limits\.max_pause_secs"):
        combined(host.root, 1, agent)
    assert agent.runs == [("galph", 1)]
    assert host.state()["status"] == "failed"


def test_no_pause_restores_fail_fast(tmp_path: Path) -> None:
    host = make_host(tmp_path, "limits:\n  pause: false\n")
    agent = ScriptedExecutor(host.root, {"galph": [Outcome(USAGE, reset_in=1)]})
    with pytest.raises(TurnFailed, match="usage_limit reported"):
        combined(host.root, 1, agent)
    assert host.state()["status"] == "failed"


def test_transient_failures_retry_and_recover_on_the_third_attempt(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  retries: 2\n")
    transient = Outcome(FailureKind.TRANSIENT)
    agent = ScriptedExecutor(host.root, {"galph": [transient, transient]})
    sleeps = FastInterrupt()
    assert combined(host.root, 1, agent, sleeps) == 0
    assert agent.runs == [("galph", 1)] * 3 + [("ralph", 1)]
    assert len(sleeps.skipped) == 2
    assert 24 <= sleeps.skipped[0] <= 36
    assert 48 <= sleeps.skipped[1] <= 72
    retries = [e for e in events(host.root) if e["event"] == "retry"]
    assert [e["attempt"] for e in retries] == [2, 3]
    assert len(subjects(host.root)) == 2  # the retries made no commits of their own


@pytest.mark.parametrize("kind", [FailureKind.AUTH, FailureKind.AGENT, FailureKind.TIMEOUT])
def test_auth_agent_and_timeout_never_retry(tmp_path: Path, kind: FailureKind) -> None:
    host = make_host(tmp_path, agent="  retries: 2\n")
    agent = ScriptedExecutor(host.root, {"galph": [Outcome(kind)]})
    with pytest.raises(TurnFailed):
        combined(host.root, 1, agent, FastInterrupt())
    assert agent.runs == [("galph", 1)]


def test_a_budget_stops_the_run_at_the_check_point_after_the_turn_that_reached_it(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, "limits:\n  max_cost_usd: 1.0\n")
    agent = ScriptedExecutor(host.root, cost_usd=0.4)
    assert combined(host.root, 5, agent) == 0
    assert len(agent.runs) == 3  # 0.4, 0.8, 1.2: stop after the third turn
    assert host.state()["spent"]["cost_usd"] == pytest.approx(1.2)
    stops = [e for e in events(host.root) if e["event"] == "stop"]
    assert stops[-1]["kind"] == "budget"
    assert "budget reached: $1.20 spent of limits.max_cost_usd $1.00" in stops[-1]["reason"]
    again = ScriptedExecutor(host.root, cost_usd=0.4)
    assert combined(host.root, 5, again) == 0
    assert again.runs == []  # the check before the first turn stops a restart too


def test_the_notify_command_receives_pause_budget_stop_failure_and_done(tmp_path: Path) -> None:
    got = tmp_path / "events.jsonl"
    listener = tmp_path / "listen.py"
    listener.write_text(f"import sys\nopen({str(got)!r}, 'a').write(sys.stdin.read())\n")
    host = make_host(tmp_path, "limits:\n  max_turns: 3\n")
    command = (sys.executable, str(listener))
    paused = ScriptedExecutor(host.root, {"galph": [Outcome(USAGE, reset_in=1)]})
    assert notified(host.root, 2, paused, command) == 0  # paused, ok, ralph ok: 3 turns
    config = host.root / "orchestration.yaml"
    config.write_text(config.read_text().replace("max_turns: 3", "max_turns: 10"))
    failing = ScriptedExecutor(host.root, {"galph": [Outcome(FailureKind.AGENT)]})
    with pytest.raises(TurnFailed):
        notified(host.root, 1, failing, command)
    assert notified(host.root, 1, ScriptedExecutor(host.root), command) == 0
    sent = [json.loads(line) for line in got.read_text().splitlines()]
    assert [e["event"] for e in sent] == ["pause", "budget", "stop", "failure", "done"]
    assert sent[0]["kind"] == "usage_limit"
    assert sent[0]["actor"] == "galph"
    assert sent[2]["kind"] == "budget"
    assert sent[3]["kind"] == "agent"


def notified(root: Path, iterations: int, agent: ScriptedExecutor, command: tuple[str, ...]) -> int:
    host = open_test_host(root)
    notifier = Notifier(command=command, redactor=host.console.redactor, warn=host.console.warn)
    host = dataclasses.replace(host, notifier=notifier)
    ctx = RouterContext.from_config(host.config)
    try:
        return run_combined(host, ctx, agent, iterations=iterations, interrupt=Interrupt())
    finally:
        assert notifier.close(timeout=30)


def events(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "logs/main/events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("pause", "says"),
    [
        (None, "field 'pause' must be an object (the status is paused)"),
        ({"actor": "galph", "iteration": 1, "kind": "agent", "until": "x"}, "usage_limit"),
        ({"actor": "galph", "iteration": 1, "kind": "rate_limit", "until": 5}, "ISO 8601"),
    ],
)
def test_a_bad_pause_in_the_state_file_is_an_error_naming_the_field(
    pause: object, says: str
) -> None:
    data = {"iteration": 1, "expected_actor": "ralph", "status": "paused", "pause": pause}
    with pytest.raises(StateError, match="pause") as raised:
        parse(json.dumps(data), "sync/state.json")
    assert says in str(raised.value)


def test_a_pause_round_trips_through_the_file_with_either_actor() -> None:
    data = {
        "iteration": 4,
        "expected_actor": "ralph",
        "status": "paused",
        "pause": {"actor": "ralph", "iteration": 4, "prompt": "main.md", "kind": "rate_limit",
                  "reason": "codex rate limit", "until": "2026-12-03T20:40:00Z"},
        "spent": {"cost_usd": 1.5, "tokens": 10, "turns": 7},
    }  # fmt: skip
    state = parse(json.dumps(data), "s")
    assert state.pause is not None
    assert state.pause.until == pytest.approx(1796330400.0)
    again = parse(state.dumps(), "s")
    assert again == state
    assert again.to_json()["spent"] == {"cost_usd": 1.5, "tokens": 10, "turns": 7}

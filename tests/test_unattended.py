"""Unattended runs in the loop (SPEC §14.2 to §14.4, §16): pauses, retries, budgets and
notifications, on real git repositories with a scripted executor at the executor seam."""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import git, make_host, open_test_host, tandem
from scripted import CtrlC, FastInterrupt, Outcome, ScriptedExecutor
from tandem import limits
from tandem.configfile import load
from tandem.errors import ConfigError, Interrupted, StateError, TurnFailed
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


def test_the_pause_names_the_limit_window_in_the_console_state_event_and_status(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, agent="  heartbeat_secs: 0.5\n")
    window = Outcome(USAGE, reset_in=1.5, window="five_hour")
    run = open_test_host(host.root)
    agent = ScriptedExecutor(host.root, {"galph": [window]})
    ctx = RouterContext.from_config(run.config)
    assert run_combined(run, ctx, agent, iterations=1, interrupt=Interrupt()) == 0
    shown = run.console.out.getvalue().decode()
    line = "paused: scripted usage limit (five_hour) until "
    assert shown.count(line) >= 2, shown  # the pause, then its heartbeat
    paused = json.loads(git(host.root, "show", "HEAD~2:sync/state.json"))["pause"]
    assert (paused["reason"], paused["window"]) == ("scripted usage limit (five_hour)", "five_hour")
    [pause] = [e for e in events(host.root) if e["event"] == "pause"]
    assert pause["window"] == "five_hour"
    # a restart into a pause still to come shows it in status as well
    later = Outcome(USAGE, reset_in=30, window="seven_day")
    again = ScriptedExecutor(host.root, {"galph": [later]})
    with pytest.raises(Interrupted):
        combined(host.root, 1, again, CtrlC())
    status = tandem(host.root, "status", env=host.env())
    assert "paused: galph usage_limit until" in status.out
    assert ": scripted usage limit (seven_day)" in status.out


def test_the_peer_line_names_the_window_when_known() -> None:
    at = 1796330400.0  # 2026-12-03T20:40:00Z
    assert limits.peer_line("galph", "usage_limit", at, at - 60, "five_hour") == (
        "galph paused until 20:40Z (usage limit, five_hour)"
    )
    assert limits.peer_line("galph", "rate_limit", at, at - 60) == (
        "galph paused until 20:40Z (rate limit)"
    )


def test_what_retried_attempts_spent_counts_in_spent_and_in_the_turns_receipt(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, agent="  retries: 2\n")
    failed = Outcome(FailureKind.TRANSIENT, cost_usd=0.25, tokens=40)
    agent = ScriptedExecutor(host.root, {"galph": [failed, failed]}, cost_usd=0.4)
    assert combined(host.root, 1, agent, FastInterrupt()) == 0
    assert agent.runs == [("galph", 1)] * 3 + [("ralph", 1)]
    spent = host.state()["spent"]
    assert spent["cost_usd"] == pytest.approx(0.25 + 0.25 + 0.4 + 0.4)
    assert (spent["tokens"], spent["turns"]) == (40 + 40 + 100 + 100, 2)
    receipt = git(host.root, "log", "-1", "--format=%B", "HEAD~1")
    assert "Tandem-Cost-USD: 0.900000" in receipt
    assert "Tandem-Tokens: in=180 " in receipt
    [end] = [e for e in events(host.root) if e["event"] == "turn_end" and e["actor"] == "galph"]
    assert [r["cost_usd"] for r in end["earlier_results"]] == [0.25, 0.25]


def test_a_paused_attempt_that_reported_a_cost_counts_it(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    limited = Outcome(USAGE, reset_in=1, cost_usd=0.3, tokens=7)
    agent = ScriptedExecutor(host.root, {"galph": [limited]}, cost_usd=0.5)
    assert combined(host.root, 1, agent) == 0
    pause_receipt = git(host.root, "log", "-1", "--format=%B", "HEAD~2")
    assert "Tandem-Result: pause:usage_limit" in pause_receipt
    assert "Tandem-Cost-USD: 0.300000" in pause_receipt
    assert host.state()["spent"]["cost_usd"] == pytest.approx(0.3 + 0.5 + 0.5)
    assert host.state()["spent"]["tokens"] == 7 + 100 + 100


def test_retry_delay_secs_sets_the_first_wait_and_the_doubling_follows(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  retries: 3\n  retry_delay_secs: 0.5\n")
    transient = Outcome(FailureKind.TRANSIENT)
    agent = ScriptedExecutor(host.root, {"galph": [transient] * 3})
    began = time.monotonic()
    assert combined(host.root, 1, agent) == 0
    assert time.monotonic() - began >= 0.4 + 0.8 + 1.6  # really waited, no fast-forward
    delays = [e["delay_secs"] for e in events(host.root) if e["event"] == "retry"]
    assert len(delays) == 3
    for delay, base in zip(delays, (0.5, 1.0, 2.0), strict=True):
        assert base * 0.8 <= delay <= base * 1.2


@pytest.mark.parametrize("value", ["-1", "soon", "true", "1e9"])
def test_a_bad_retry_delay_secs_is_a_config_error_naming_the_key(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "orchestration.yaml").write_text(f"agent:\n  retry_delay_secs: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={})
    message = str(caught.value)
    assert "agent.retry_delay_secs: must be a number" in message
    assert value in message


class Middle(random.Random):
    """Every draw is the middle of its range: no jitter."""

    def random(self) -> float:
        return 0.5


def test_retry_delay_keeps_30_60_120_by_default_and_scales_with_its_first_wait() -> None:
    fixed = Middle()
    assert [limits.retry_delay("transient", n, 5, fixed) for n in range(3)] == [30, 60, 120]
    assert [limits.retry_delay("transient", n, 5, fixed, 2.0) for n in range(3)] == [2, 4, 8]
    assert limits.retry_delay("auth", 0, 5, fixed, 2.0) is None

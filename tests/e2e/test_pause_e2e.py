"""Pauses with the real claude and gemini against the fake model server (SPEC §14.2): a
subscription limit that resets a few seconds ahead pauses the turn, keeps what the agent
wrote, and the same turn then completes; in combined mode, across two clones in sync mode,
and across a Ctrl-C; gemini's per-minute quota pauses for the time it asks; opencode's
account out of quota pauses and backs off."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from e2e.e2e_support import CLAUDE, GEMINI, OPENCODE, WRITE_WORK, Lab, Setup, wait_for
from fakes.record import (
    CLAUDE_LIMIT_HEADERS,
    CLAUDE_OAUTH,
    GEMINI_PER_MINUTE,
    OPENCODE_NO_QUOTA,
    RATE_LIMITED,
)
from helpers import git, start_tandem

Step = dict[str, Any]


def limit(reset_in: int) -> Step:
    """Anthropic's subscription limit, resetting ``reset_in`` seconds from now: the fake
    server answers it until then, and the step after it from then on."""
    lifts = int(time.time()) + reset_in
    headers = dict(CLAUDE_LIMIT_HEADERS)
    for name in ("anthropic-ratelimit-unified-reset", "anthropic-ratelimit-unified-5h-reset"):
        headers[name] = str(lifts)
    error = {"status": 429, "type": "rate_limit_error", "message": RATE_LIMITED}
    return {"error": {**error, "headers": headers}, "lifts_at": lifts}


TURN = [{"shell": WRITE_WORK}, {"text": "Done"}]


def signed_in(lab: Lab, script: list[Step], config: str = "") -> Setup:
    """A host whose claude is signed in by OAuth (its limits are usage limits)."""
    setup = lab.setup(CLAUDE, script, extra_config=config)
    for name, value in CLAUDE_OAUTH.items():
        setup.env.pop(name, None)
        if value is not None:
            setup.env[name] = value
    return setup


def paused_commit(root: Path) -> str:
    lines = git(root, "log", "--format=%H %s").splitlines()
    found = [line.split()[0] for line in lines if "status=paused" in line]
    assert len(found) == 1, lines
    return found[0]


@pytest.mark.e2e
def test_a_usage_limit_after_the_agent_wrote_pauses_keeps_the_file_then_completes(
    lab: Lab,
) -> None:
    setup = signed_in(lab, [TURN[0], limit(8), TURN[1]])
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.err
    assert "paused: claude usage limit (five_hour) until" in run.out + run.err
    assert "the turn reruns then" in run.out + run.err
    commit = paused_commit(setup.root)
    assert git(setup.root, "show", f"{commit}:input.md") == "do step 1\n"
    paused = json.loads(git(setup.root, "show", f"{commit}:sync/state.json"))
    assert (paused["status"], paused["pause"]["kind"]) == ("paused", "usage_limit")
    assert "Tandem-Result: pause:usage_limit" in git(setup.root, "log", "-1", "--format=%B", commit)
    state = setup.state()
    assert (state["iteration"], state["status"], state["failure"]) == (2, "complete", None)
    assert [e["actor"] for e in setup.events("turn_end")] == ["galph", "galph", "ralph"]


@pytest.mark.e2e
def test_max_pause_secs_ends_a_limit_that_resets_later(lab: Lab) -> None:
    setup = signed_in(lab, [limit(3600)], "limits:\n  max_pause_secs: 60\n")
    run, seconds = setup.tandem("run", "--iterations", "1")
    assert run.code == 1, run.err
    assert "later than limits.max_pause_secs (60) allows" in run.err
    assert setup.state()["status"] == "failed"
    assert seconds < 30


@pytest.mark.e2e
def test_ctrl_c_during_a_pause_exits_130_and_a_restart_resumes_it(lab: Lab) -> None:
    setup = signed_in(lab, [limit(10), *TURN])
    child = lab.start(setup, "run", "--iterations", "1")
    wait_for(lambda: "paused: claude" in lab.output(), 30, "the pause")
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 130
    assert setup.state()["status"] == "paused"
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.err
    assert (
        "paused: claude usage limit (five_hour) until" in run.out + run.err
    )  # the rest of the wait
    assert setup.state()["status"] == "complete"
    assert len([e for e in setup.events("turn_end") if e["actor"] == "galph"]) == 2


@pytest.mark.e2e
def test_sync_mode_the_peer_waits_out_the_pause_and_never_fails(lab: Lab, tmp_path: Path) -> None:
    setup = signed_in(lab, [limit(10), *TURN])
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(setup.root, "remote", "add", "origin", str(remote))
    git(setup.root, "push", "--quiet", "origin", "main")
    clones = {}
    for actor in ("galph", "ralph"):
        git(tmp_path, "clone", "--quiet", str(remote), f"clone-{actor}")
        clones[actor] = tmp_path / f"clone-{actor}"
    sync = ("--sync-via-git", "--poll-interval", "0.3", "--iterations", "1")
    logs = {actor: tmp_path / f"{actor}.out" for actor in clones}
    procs = {
        actor: start_tandem(
            clones[actor],
            "loop" if actor == "ralph" else "supervisor",
            *sync,
            env=setup.env,
            log=logs[actor],
        )
        for actor in ("ralph", "galph")
    }
    lab.children.extend(procs.values())
    codes = {actor: proc.wait(timeout=120) for actor, proc in procs.items()}
    shown = {actor: path.read_text() for actor, path in logs.items()}
    assert codes == {"ralph": 0, "galph": 0}, shown
    assert "paused: claude usage limit (five_hour) until" in shown["galph"]
    assert "galph paused until" in shown["ralph"]
    assert "(usage limit, five_hour)" in shown["ralph"]
    subjects = git(remote, "log", "--reverse", "--format=%s", "main").splitlines()
    assert any("actor=galph status=paused" in s for s in subjects), subjects
    final = json.loads(git(remote, "show", "main:sync/state.json"))
    assert (final["iteration"], final["status"]) == (2, "complete")
    assert final["spent"]["turns"] == 3  # the pause, galph's rerun and ralph's turn


@pytest.mark.e2e
def test_gemini_a_per_minute_quota_pauses_then_the_turn_completes(lab: Lab) -> None:
    # general.maxAttempts is 1 (fakes.servers): gemini gives up at once and says when to
    # retry ("Please retry in 2s"); tandem pauses that long, then reruns the turn until
    # the fake quota lifts.
    quota = {**GEMINI_PER_MINUTE[0], "lifts_at": int(time.time()) + 20}
    setup = lab.setup(GEMINI, [quota, *TURN])
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.err
    pauses = setup.events("pause")
    assert pauses, run.out
    assert {p["kind"] for p in pauses} == {"rate_limit"}
    assert "paused: gemini rate limit until" in run.out + run.err
    state = setup.state()
    assert (state["iteration"], state["status"]) == (2, "complete")


@pytest.mark.e2e
def test_opencode_out_of_quota_pauses_then_the_turn_completes(lab: Lab) -> None:
    # opencode retries 429s and 5xx without end, but not insufficient_quota (fakes.record):
    # it fails at once, tandem pauses (no reset time: the back-off, here cut short by
    # max_pause_secs) and reruns the turn, which the quota no longer stops.
    quota = {**OPENCODE_NO_QUOTA[0], "times": 1}
    setup = lab.setup(OPENCODE, [quota, *TURN], extra_config="limits:\n  max_pause_secs: 6\n")
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.out + run.err
    [pause] = setup.events("pause")
    assert (pause["kind"], pause["reason"]) == ("usage_limit", "opencode usage limit")
    assert "paused: opencode usage limit until" in run.out + run.err
    commit = paused_commit(setup.root)
    assert "Tandem-Result: pause:usage_limit" in git(setup.root, "log", "-1", "--format=%B", commit)
    assert [e["actor"] for e in setup.events("turn_end")] == ["galph", "galph", "ralph"]
    state = setup.state()
    assert (state["iteration"], state["status"]) == (2, "complete")

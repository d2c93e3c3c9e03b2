"""A stop request during a pause (SPEC §3.5, §14.2): honoured within a poll, not at the
pause's end, in combined mode (``tandem stop`` from another terminal) and in sync mode (a
stop pushed from another clone); a restart after the stop waits out the rest of the pause
and completes the same turn. Real processes and real git; galph's agent is a small
program that speaks claude's stream-json (``CLAUDE_CMD``), ralph's the fake agent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import (
    HostRepo,
    Run,
    git,
    make_host,
    remote_file,
    start_tandem,
    tandem,
    with_fake_agent,
)

# claude as tandem sees it: the first run hits a five-hour window that resets at
# $LIMIT_LIFTS_AT (Unix seconds); each run appends to $CLAUDE_RUNS and to input.md.
FAKE_CLAUDE = r"""
import json, os, sys, time
if "--version" in sys.argv:
    print("2.0.0 (Claude Code)"); sys.exit(0)
sys.stdin.read()
runs = os.environ["CLAUDE_RUNS"]
first = not os.path.exists(runs)
with open(runs, "a") as log:
    log.write(f"{time.time():.3f}\n")
with open("input.md", "a") as work:
    work.write("galph was here\n")
def out(event): print(json.dumps(event), flush=True)
if first:
    out({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected",
         "resetsAt": int(os.environ["LIMIT_LIFTS_AT"]), "rateLimitType": "five_hour"}})
    out({"type": "result", "is_error": True, "result": "You've hit your limit"})
    sys.exit(1)
out({"type": "result", "is_error": False, "result": "Done", "total_cost_usd": 0.01,
     "usage": {"input_tokens": 10, "output_tokens": 1}, "num_turns": 1})
"""
CONFIG = "sync:\n  poll_interval: 0.3\n"  # heartbeat_secs stays 60: the stop is not left to it
GALPH_CLAUDE = "  roles: {galph: claude}\n"


def claude_env(host: HostRepo, tmp_path: Path, lifts_in: float) -> dict[str, str]:
    program = tmp_path / "claude"
    if not program.exists():
        program.write_text(f"#!{sys.executable}\n{FAKE_CLAUDE}")
        program.chmod(0o755)
    return host.env(
        CLAUDE_CMD=str(program),
        CLAUDE_RUNS=str(tmp_path / "claude-runs"),
        LIMIT_LIFTS_AT=str(int(time.time() + lifts_in)),
        IS_SANDBOX="1",
    )


def wait_for_text(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in {path} after {timeout}s:\n{path.read_text()}")


def stop_the_pause(
    run: subprocess.Popen[bytes],
    out: Path,
    stop: Callable[[], Run],
    before: Callable[[], None] = lambda: None,
) -> tuple[float, str]:
    """Once ``run`` says it paused (and ``before`` returned), ask ``stop`` and wait for the
    run to end: seconds from the request to the end, and what the run printed."""
    try:
        wait_for_text(out, "paused: claude usage limit (five_hour) until", 30)
        before()
        asked = time.monotonic()
        stopped = stop()
        assert stopped.code == 0, stopped.err
        assert run.wait(timeout=20) == 0, out.read_text()
    finally:
        if run.poll() is None:
            run.kill()
    return time.monotonic() - asked, out.read_text()


def claude_runs(tmp_path: Path) -> int:
    return len((tmp_path / "claude-runs").read_text().splitlines())


def test_combined_tandem_stop_during_a_pause_stops_within_a_poll_and_a_restart_resumes_it(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, CONFIG, agent=GALPH_CLAUDE)
    env = claude_env(host, tmp_path, lifts_in=12)
    out = tmp_path / "run.out"
    run = start_tandem(host.root, "run", "--iterations", "1", env=env, log=out)
    took, shown = stop_the_pause(
        run, out, lambda: tandem(host.root, "stop", "--reason", "night over", env=env)
    )
    assert took < 5, f"the stop took {took:.1f}s:\n{shown}"  # the pause had ~10 s left
    assert "stopping: night over" in shown
    state = host.state()
    assert (state["status"], state.get("exit", False), state["pause"]["window"]) == (
        "paused",
        False,
        "five_hour",
    )
    assert claude_runs(tmp_path) == 1  # the turn did not run again at the stop
    assert "stop: night over" in git(host.root, "log", "-1", "--format=%s")
    again = tandem(host.root, "run", "--iterations", "1", env=env, timeout=60)
    assert again.code == 0, again.err
    assert "paused: claude usage limit (five_hour) until" in again.out + again.err
    assert claude_runs(tmp_path) == 2
    final = host.state()
    assert (final["iteration"], final["status"]) == (2, "complete")
    assert "pause" not in final


def test_sync_a_stop_pushed_from_another_clone_ends_the_pause_and_a_restart_resumes_it(
    tmp_path: Path,
) -> None:
    seed = make_host(tmp_path, CONFIG, name="seed", agent=GALPH_CLAUDE)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(seed.root, "push", "--quiet", str(remote), "main")
    for name in ("galph", "other"):
        git(tmp_path, "clone", "--quiet", str(remote), name)
    galph, other = (with_fake_agent(tmp_path, name, tmp_path / name) for name in ("galph", "other"))
    env = claude_env(galph, tmp_path, lifts_in=15)
    out = tmp_path / "galph.out"
    sync = ("--sync-via-git", "--poll-interval", "0.3", "--iterations", "1")
    run = start_tandem(galph.root, "supervisor", *sync, env=env, log=out)

    def pushed() -> None:
        """The pause is said, then pushed: the stop is asked once the remote has it."""
        deadline = time.monotonic() + 20
        while (paused := json.loads(remote_file(remote, "sync/state.json")))["status"] != "paused":
            assert time.monotonic() < deadline, paused
            time.sleep(0.1)
        assert paused["pause"]["window"] == "five_hour"

    took, shown = stop_the_pause(
        run,
        out,
        lambda: tandem(other.root, "stop", "--sync-via-git", "--reason", "from afar", env=env),
        before=pushed,
    )
    assert took < 6, f"the stop took {took:.1f}s:\n{shown}"  # the pause had ~12 s left
    assert "stopping: from afar" in shown
    assert claude_runs(tmp_path) == 1
    subjects = git(remote, "log", "--format=%s", "main").splitlines()
    assert subjects[0].endswith("stop: from afar"), subjects  # the stop, honoured and pushed
    assert "stop requested: from afar" in subjects[1]
    state = json.loads(remote_file(remote, "sync/state.json"))
    assert (state["status"], state.get("exit", False), state["expected_actor"]) == (
        "paused",
        False,
        "galph",
    )
    again = tandem(galph.root, "supervisor", *sync, env=env, timeout=90)
    assert again.code == 0, again.out + again.err
    assert "paused: claude usage limit (five_hour) until" in again.out + again.err
    assert claude_runs(tmp_path) == 2
    final = json.loads(remote_file(remote, "sync/state.json"))
    assert (final["iteration"], final["expected_actor"], final["status"]) == (
        1,
        "ralph",
        "waiting-ralph",
    )

"""A running loop: leases, the run lock, Ctrl-C, heartbeats, secrets, console modes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from helpers import HostRepo, assert_one_line_error, git, make_host, start_tandem, tandem
from tandem import proc


def running_state(host: HostRepo, owner: str, expires: str) -> None:
    host.put_state(
        {
            "iteration": 2,
            "expected_actor": "galph",
            "status": "running-galph",
            "lease_owner": owner,
            "lease_expires_at": expires,
        }
    )


def test_live_lease_of_another_process_is_refused(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = f"{socket.gethostname()}:{holder.pid}"
        running_state(host, owner, "2999-01-01T00:00:00Z")
        result = tandem(host.root, "run", env=host.env())
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 1
    assert_one_line_error(
        result.err,
        f"galph's turn at iteration 2 is held by {owner} (lease until 2999-01-01T00:00:00Z); "
        "wait for it to finish, or stop that process; an expired lease is taken over",
    )
    assert host.calls() == []
    assert host.state()["lease_owner"] == owner


def test_stale_turn_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running_state(host, f"{socket.gethostname()}:{dead.pid}", "2999-01-01T00:00:00Z")
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 0, result.err
    assert f"recovering stale turn (owner {socket.gethostname()}:{dead.pid})" in result.out
    assert host.turns() == [("galph", "supervisor.md"), ("ralph", "main.md")]
    events = (host.root / "logs/main/events.jsonl").read_text()
    assert '"event": "recover"' in events


def test_expired_lease_of_another_host_is_taken_over(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    running_state(host, "elsewhere:1", "2000-01-01T00:00:00Z")
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 0, result.err
    assert "recovering stale turn (owner elsewhere:1)" in result.out


def test_second_run_in_the_same_work_tree_is_refused(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"sleep": 3}})
    first = start_tandem(host.root, "run", env=host.env(), log=tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 20
        while not host.calls():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = tandem(host.root, "run", env=host.env())
    finally:
        first.wait(timeout=60)
    assert second.code == 1
    assert "another tandem run (" in second.err
    assert "is using this work tree" in second.err
    assert len(host.calls()) == 2  # only the first run's two turns


def test_ctrl_c_during_a_turn_records_it_and_exits_130(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  kill_grace_secs: 1\n")
    host.plan({"galph": {"spawn": 120, "sleep": 60}})
    proc = start_tandem(host.root, "run", env=host.env(), log=tmp_path / "run.log")
    deadline = time.monotonic() + 20
    while not host.pids.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    out = (tmp_path / "run.log").read_text()
    last = out.strip().splitlines()[-1]
    assert last == "tandem: interrupted: galph turn interrupted at iteration 1"
    state = host.state()
    assert (state["status"], state["failure"]["reason"]) == ("failed", "interrupted")
    assert state["lease_owner"] is None
    for pid in host.pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state_of(int(pid))
    assert host.subjects()[-1] == "[SYNC i=1] actor=galph status=fail prompt=supervisor.md"


def _state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def test_processes_the_agent_leaves_behind_are_ended(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"default": {"spawn": 120}})
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 0, result.err
    pids = [int(p) for p in host.pids.read_text().split()]
    assert len(pids) == 2
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    log = (host.root / "logs/main/galph/latest.log").read_text()
    assert "ended 1 process(es) the agent left running" in log


def test_heartbeat_during_a_silent_agent(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  heartbeat_secs: 0.4\n")
    host.plan({"galph": {"sleep": 1.5}})
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    beats = [line for line in lines if "still running: galph supervisor.md" in line]
    assert 2 <= len(beats) <= 4
    assert "last output" in beats[0]


def test_agent_timeout_fails_the_turn(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  kill_grace_secs: 0.5\n")
    host.plan({"galph": {"sleep": 30}})
    started = time.monotonic()
    result = tandem(host.root, "run", "--agent-timeout", "1", env=host.env())
    assert result.code == 1
    assert "timed out after 1." in result.err
    assert time.monotonic() - started < 15
    assert host.state()["failure"]["reason"].startswith("timed out after")


def test_secrets_never_reach_console_logs_or_events(tmp_path: Path) -> None:
    secret = "tok-8c1d5e2f9a7b"  # noqa: S105 - a made-up token the test hunts for
    host = make_host(tmp_path)
    host.plan(
        {"default": {"stdout": f"the token is {secret}\n", "stderr": f"err {secret}\n", "exit": 3}}
    )
    result = tandem(host.root, "run", env=host.env(MY_SERVICE_TOKEN=secret))
    assert result.code == 1
    assert secret not in result.out + result.err
    assert "the token is ***" in result.out
    for path in (host.root / "logs").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    assert "the token is ***" in (host.root / "logs/main/galph/latest.log").read_text()


def test_quiet_hides_agent_output_and_verbose_shows_detail(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"default": {"stdout": "agent says hi\n"}})
    quiet = tandem(host.root, "run", "--quiet", env=host.env())
    assert quiet.code == 0
    assert "agent says hi" not in quiet.out
    assert "agent says hi" in (host.root / "logs/main/galph/latest.log").read_text()
    verbose = tandem(host.root, "run", "--verbose", env=host.env())
    assert "agent says hi" in verbose.out
    assert "tandem: committed " in verbose.out


def test_commit_dry_run_prints_and_commits_nothing(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"write": {"input.md": "x"}}, "ralph": {"write": {"a.py": "y"}}})
    before = host.subjects()
    result = tandem(host.root, "run", "--commit-dry-run", env=host.env())
    assert result.code == 0, result.err
    assert "would commit ([SYNC i=1] actor=galph" in result.out
    assert "sync/state.json, input.md" in result.out
    assert host.subjects() == before


def test_push_in_combined_mode_publishes_each_turn(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(host.root, "remote", "add", "origin", str(remote))
    git(host.root, "push", "--quiet", "origin", "main")
    result = tandem(host.root, "run", "--push", env=host.env())
    assert result.code == 0, result.err
    assert git(remote, "log", "-1", "--format=%s", "main").startswith(
        "[SYNC i=2] actor=ralph → next=galph status=ok"
    )


def test_a_restart_ends_what_the_killed_run_left_running_in_the_tree(tmp_path: Path) -> None:
    """tandem SIGKILLed mid-turn while a tool of its agent runs in its own session: the
    next start ends that tool before its own agent starts, and says so (rule 2)."""
    host = make_host(tmp_path)
    host.plan({"galph": {"spawn": 120, "kill_parent": True, "sleep": 5}})
    crashed = tandem(host.root, "run", env=host.env())
    assert crashed.code == -signal.SIGKILL
    tool = int(host.pids.read_text().split()[0])
    try:
        assert proc.pid_alive(tool)
        host.plan({})
        restarted = tandem(host.root, "run", env=host.env())
        assert restarted.code == 0, restarted.err
        assert not proc.pid_alive(tool)
        assert "tandem: warning: ended 1 process(es) of an earlier turn" in restarted.err
        assert f"still running in this work tree: pid {tool}" in restarted.err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(tool, signal.SIGKILL)

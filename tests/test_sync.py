"""Sync via git (SPEC §8): real clones of a real bare remote, real concurrent processes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from crashes import crashing_env
from git_gate import gated_env
from helpers import (
    ANY,
    SYNC,
    HostRepo,
    Pair,
    assert_line,
    assert_one_line_error,
    git,
    last_line,
    make_pair,
    matches,
    remote_file,
    remote_subjects,
    start_tandem,
    tandem,
    wait_for,
)


def supervisor(host: HostRepo, *args: str, timeout: float = 60, **env: str) -> tuple[int, str]:
    result = tandem(host.root, "supervisor", *SYNC, *args, env=host.env(**env), timeout=timeout)
    return result.code, result.out + result.err


def loop(host: HostRepo, *args: str, timeout: float = 60, **env: str) -> tuple[int, str]:
    result = tandem(host.root, "loop", *SYNC, *args, env=host.env(**env), timeout=timeout)
    return result.code, result.out + result.err


def turn_subjects(remote: Path) -> list[str]:
    return [s for s in remote_subjects(remote) if s.startswith("[SYNC")]


def assert_nothing_half_done(root: Path) -> None:
    gdir = root / ".git"
    for leftover in ("rebase-merge", "rebase-apply", "MERGE_HEAD", "index.lock"):
        assert not (gdir / leftover).exists(), leftover


def test_two_machines_alternate_strictly(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    ralph.plan({"ralph": {"append": {"work.txt": "done\n"}, "commit": "ralph's own commit"}})
    procs = [
        start_tandem(
            galph.root,
            "supervisor",
            *SYNC,
            "--iterations",
            "3",
            env=galph.env(),
            log=tmp_path / "galph.log",
        ),
        start_tandem(
            ralph.root,
            "loop",
            *SYNC,
            "--iterations",
            "3",
            env=ralph.env(),
            log=tmp_path / "ralph.log",
        ),
    ]
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0], (tmp_path / "galph.log").read_text() + (
        tmp_path / "ralph.log"
    ).read_text()
    subjects = turn_subjects(pair.remote)
    expected = []
    for i in range(1, 4):
        expected += [
            f"[SYNC i={i}] actor=galph status=running",
            f"[SYNC i={i}] actor=galph → next=ralph status=ok",
            f"[SYNC i={i}] actor=ralph status=running",
            f"[SYNC i={i + 1}] actor=ralph → next=galph status=ok",
        ]
    stamps = [s for s in subjects if "init" not in s]
    assert [s.split(" prompt=")[0] for s in stamps] == expected
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["iteration"], state["expected_actor"], state["status"]) == (
        4,
        "galph",
        "complete",
    )
    assert remote_subjects(pair.remote).count("ralph's own commit") == 3
    assert remote_file(pair.remote, "work.txt") == "done\n" * 3
    assert [c["iteration"] for c in galph.calls()] == [1, 2, 3]
    assert [c["iteration"] for c in ralph.calls()] == [1, 2, 3]


def test_over_a_real_network_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The remote is a git daemon on 127.0.0.1 (git://), not a file path."""
    pair = make_pair(tmp_path)
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file:git")
    port = _free_port()
    # `timeout` makes the daemon stop by itself even if this test dies first.
    daemon = subprocess.Popen(
        [
            "timeout",
            "120",
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={tmp_path}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"git://127.0.0.1:{port}/remote.git"
        deadline = time.monotonic() + 10
        while not git(tmp_path, "ls-remote", url, check=False):
            assert time.monotonic() < deadline, "git daemon did not come up"
            time.sleep(0.1)
        for host in pair.clones.values():
            git(host.root, "remote", "set-url", "origin", url)
        procs = [
            start_tandem(
                pair.clones["galph"].root,
                "supervisor",
                *SYNC,
                "--iterations",
                "2",
                env=pair.clones["galph"].env(),
                log=tmp_path / "g.log",
            ),
            start_tandem(
                pair.clones["ralph"].root,
                "loop",
                *SYNC,
                "--iterations",
                "2",
                env=pair.clones["ralph"].env(),
                log=tmp_path / "r.log",
            ),
        ]
        codes = [p.wait(timeout=120) for p in procs]
        assert codes == [0, 0], (tmp_path / "g.log").read_text() + (tmp_path / "r.log").read_text()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert state["iteration"] == 3
    assert "git://127.0.0.1" in git(pair.clones["galph"].root, "remote", "get-url", "origin")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lost_race_lines(iteration: int) -> tuple[str, ...]:
    """The one line of the process that lost the race for galph's turn at ``iteration``."""
    return (
        f"tandem: error: turn claimed elsewhere: origin/main now says {ANY} at iteration "
        f"{iteration}{ANY}; nothing ran here; let that process finish",
        f"tandem: error: galph's turn at iteration {iteration} is held by {ANY} (lease until "
        f"{ANY}); wait for it to finish, or stop that process; an expired lease is taken over",
        f"tandem: error: gave up waiting for galph's turn after {ANY} (--max-wait-sec); "
        "check that ralph is running, then restart",
    )


def test_split_brain_never_runs_one_turn_twice(tmp_path: Path) -> None:
    """Two galph processes race for each turn, many rounds: exactly one runs it."""
    pair = make_pair(tmp_path, names=("g1", "g2", "ralph"))
    g1, g2, ralph = pair.clones["g1"], pair.clones["g2"], pair.clones["ralph"]
    for name, host in (("g1", g1), ("g2", g2)):
        host.plan({"galph": {"append": {"galph_memory.md": f"{name}\n"}}})
    rounds = 50
    outcomes: list[tuple[int, int]] = []
    # A loser that comes late finds ralph's turn, and no wait can end well before the
    # round's stamp: the least wait (one poll) gives up at once, where 1 s cost a second.
    args = ("supervisor", *SYNC, "--max-wait-sec", "0.05")
    for i in range(rounds):
        procs = [
            start_tandem(h.root, *args, env=h.env(), log=tmp_path / f"{n}-{i}.log")
            for n, h in (("g1", g1), ("g2", g2))
        ]
        codes = (procs[0].wait(timeout=60), procs[1].wait(timeout=60))
        outcomes.append(codes)
        loser = next((n for n, c in zip(("g1", "g2"), codes, strict=True) if c != 0), None)
        if loser is not None:
            line = last_line((tmp_path / f"{loser}-{i}.log").read_text())
            assert any(matches(line, lost) for lost in lost_race_lines(i + 1)), line
        stamped = tandem(ralph.root, "stamp", "ralph", "ok", "--sync-via-git", env=ralph.env())
        assert stamped.code == 0, stamped.err
    subjects = turn_subjects(pair.remote)
    for i in range(1, rounds + 1):
        assert (
            sum(s.startswith(f"[SYNC i={i}] actor=galph → next=ralph status=ok") for s in subjects)
            == 1
        )
        assert subjects.count(f"[SYNC i={i}] actor=galph status=running") == 1
    assert all(sorted(codes) == [0, 1] for codes in outcomes), outcomes
    runs = len(g1.calls()) + len(g2.calls())
    assert runs == rounds
    memory = remote_file(pair.remote, "galph_memory.md").split()
    assert len(memory) == rounds  # every winner's work arrived; nothing was lost


def test_two_first_starts_at_once_keep_the_state_file_that_reached_the_remote_first(
    tmp_path: Path,
) -> None:
    """Two galphs create the missing state file at once; the one whose push lost the race
    drops its own and goes on from the remote's, as the loser of a claim does."""
    pair = make_pair(tmp_path, names=("g1", "g2", "ralph"))
    g1, g2 = pair.clones["g1"], pair.clones["g2"]
    gate = tmp_path / "gate"
    gate.mkdir()
    plan = {"match": "[SYNC init]", "mode": "hold", "dir": str(gate)}
    env = gated_env(g1.env(), tmp_path / "shim", plan)
    late = start_tandem(
        g1.root, "supervisor", *SYNC, "--max-wait-sec", "2", env=env, log=tmp_path / "g1.log"
    )
    wait_for((gate / "at").exists, "g1 never pushed the state file it created")
    time.sleep(1.1)  # created in the same second, the two files would be one commit
    code, out = supervisor(g2)  # meanwhile g2 creates it too, and runs the turn
    assert code == 0, out
    (gate / "go").touch()
    assert late.wait(timeout=60) == 1
    shown = (tmp_path / "g1.log").read_text()
    assert "tandem: another galph created sync/state.json first; using the remote's" in shown
    assert_line(
        last_line(shown),
        f"tandem: error: gave up waiting for galph's turn after {ANY} (--max-wait-sec); "
        "check that ralph is running, then restart",
    )
    subjects = turn_subjects(pair.remote)
    assert subjects.count("[SYNC init] actor=galph status=idle") == 1
    assert sum("[SYNC i=1] actor=galph → next=ralph status=ok" in s for s in subjects) == 1
    assert (len(g1.calls()), len(g2.calls())) == (0, 1)
    assert g1.dirty() == []


@pytest.mark.parametrize(
    ("where", "plan", "recovers", "runs_again"),
    [
        ("claim written, not pushed", {"before": True, "match": "status=running"}, False, True),
        ("right after the claim push", {"before": False, "match": "status=running"}, True, True),
        ("finish committed, not pushed", {"before": True, "match": "status=ok"}, False, False),
    ],
)
def test_crash_at_a_push_then_a_plain_restart_continues(
    tmp_path: Path, where: str, plan: dict[str, object], recovers: bool, runs_again: bool
) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"append": {"input.md": "work\n"}}})
    env, crash_plan = crashing_env(tmp_path, galph, plan)
    first = tandem(galph.root, "supervisor", *SYNC, env=env)
    assert first.code == -9, where  # SIGKILL
    assert not crash_plan.exists()
    code, out = supervisor(galph, "--max-wait-sec", "1")
    if runs_again:
        assert code == 0, out  # the turn that never started ran now
    else:
        assert code == 1  # the stamp was published; galph then waited for its next turn
        assert "gave up waiting for galph's turn" in out
    assert ("recovering stale turn" in out) is recovers, out
    assert ("dropped 1 unpublished claim commit" in out) is (where == "claim written, not pushed")
    assert len(galph.calls()) == 1
    subjects = turn_subjects(pair.remote)
    assert sum("actor=galph → next=ralph status=ok" in s for s in subjects) == 1
    assert remote_file(pair.remote, "input.md") == "work\n"
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["expected_actor"], state["status"], state["lease_owner"]) == (
        "ralph",
        "waiting-ralph",
        None,
    )
    assert_nothing_half_done(galph.root)
    assert galph.dirty() == []


def test_crash_during_the_agent_then_restart_takes_the_stale_turn_over(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "half\n"}, "kill_parent": True, "sleep": 5}})
    first = tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    assert first.code == -9
    galph.plan({"galph": {}})  # the rerun finishes normally
    code, out = supervisor(galph)
    assert code == 0, out
    assert "recovering stale turn" in out
    assert len(galph.calls()) == 2  # the interrupted turn ran again, once
    subjects = turn_subjects(pair.remote)
    assert sum("actor=galph → next=ralph status=ok" in s for s in subjects) == 1
    assert remote_file(pair.remote, "input.md") == "half\n"  # the half-done work was kept
    assert_nothing_half_done(galph.root)


def test_agent_is_not_left_running_when_tandem_is_killed(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    marker = tmp_path / "agent-finished"
    galph.plan(
        {"galph": {"kill_parent": True, "sleep": 3, "write_after_sleep": {str(marker): "x"}}}
    )
    tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    time.sleep(3.5)
    assert not marker.exists()  # the agent died with tandem instead of running on


def test_remote_unreachable_then_restart_publishes_the_pending_stamp(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "x\n"}, "sleep": 0.5}})
    moved = tmp_path / "remote-away.git"
    args = ("supervisor", *SYNC, "--max-offline-secs", "2")
    proc = start_tandem(galph.root, *args, env=galph.env(), log=tmp_path / "g.log")
    _wait_until_agent_started(galph)
    pair.remote.rename(moved)
    assert proc.wait(timeout=60) == 1
    out = (tmp_path / "g.log").read_text()
    assert "remote unreachable since" in out  # the heartbeat, then the end after 2 s
    assert_line(
        last_line(out),
        f"tandem: error: turn stamped locally but not pushed (remote unreachable since {ANY} "
        f"({ANY}, at the publish): remote 'origin' unreachable: '{pair.remote}' does not "
        "appear to be a git repository (git push); gave up after sync.max_offline_secs); "
        "rerun to publish (the next start pushes it first)",
    )
    local = galph.subjects()[-1]
    assert "actor=galph → next=ralph status=ok" in local
    moved.rename(pair.remote)
    code, out = supervisor(galph, "--max-wait-sec", "1")
    assert "gave up waiting" in out  # published, then waited for galph's next turn
    assert code == 1
    assert "actor=galph → next=ralph status=ok" in turn_subjects(pair.remote)[-1]
    assert len(galph.calls()) == 1


def _wait_until_agent_started(host: HostRepo) -> None:
    deadline = time.monotonic() + 30
    while not host.calls():
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)


def test_unrelated_push_during_the_turn_is_rebased_over(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, names=("galph", "human"))
    galph, human = pair.clones["galph"], pair.clones["human"]
    galph.plan({"galph": {"write": {"input.md": "x\n"}, "sleep": 1}})
    proc = start_tandem(galph.root, "supervisor", *SYNC, env=galph.env(), log=tmp_path / "g.log")
    _wait_until_agent_started(galph)
    git(human.root, "pull", "--quiet")
    (human.root / "README.txt").write_text("a human was here\n")
    git(human.root, "add", "README.txt")
    git(human.root, "commit", "--quiet", "-m", "unrelated human commit")
    git(human.root, "push", "--quiet", "origin", "main")
    assert proc.wait(timeout=60) == 0, (tmp_path / "g.log").read_text()
    subjects = remote_subjects(pair.remote)
    assert "unrelated human commit" in subjects
    assert "actor=galph → next=ralph status=ok" in subjects[-1]


def test_rebase_conflict_on_a_file_the_agent_touched(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, names=("galph", "human"))
    galph, human = pair.clones["galph"], pair.clones["human"]
    galph.plan({"galph": {"write": {"input.md": "galph's version\n"}, "sleep": 1}})
    proc = start_tandem(galph.root, "supervisor", *SYNC, env=galph.env(), log=tmp_path / "g.log")
    _wait_until_agent_started(galph)
    git(human.root, "pull", "--quiet")
    (human.root / "input.md").write_text("the human's version\n")
    git(human.root, "add", "input.md")
    git(human.root, "commit", "--quiet", "-m", "human edits input.md")
    git(human.root, "push", "--quiet", "origin", "main")
    assert proc.wait(timeout=60) == 1
    out = (tmp_path / "g.log").read_text()
    assert_line(
        last_line(out),
        f"tandem: error: turn stamped locally but not pushed (rebasing local commits onto {ANY} "
        "hit a conflict in input.md; the rebase was aborted and nothing changed); "
        "rerun to publish (the next start pushes it first)",
    )
    assert_nothing_half_done(galph.root)
    assert (galph.root / "input.md").read_text() == "galph's version\n"  # tree as before
    assert galph.dirty() == []


def test_peer_failure_stops_the_wait_with_its_reason(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"exit": 3}})
    code, out = supervisor(galph)
    assert code == 1
    code, out = loop(ralph)
    assert code == 1
    line = last_line(out)
    assert line == (
        "tandem: error: galph failed at iteration 1: exited with 3; fix it there and "
        "restart galph (or pass --wait-on-peer-failure)"
    )
    code, out = loop(ralph, "--wait-on-peer-failure", "--max-wait-sec", "0.5")
    assert "gave up waiting for ralph's turn" in out


def test_max_wait_expires_with_a_clear_error(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    started = time.monotonic()
    code, out = loop(pair.clones["ralph"], "--max-wait-sec", "1")
    assert code == 1
    assert "gave up waiting for ralph's turn after" in out
    assert time.monotonic() - started < 20


def test_galph_creates_a_missing_state_and_ralph_waits_for_it(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    code, out = loop(pair.clones["ralph"], "--max-wait-sec", "0.5")
    assert "waiting for origin/main to get a state file" in out
    code, out = supervisor(pair.clones["galph"])
    assert code == 0, out
    assert "[SYNC init] actor=galph status=idle" in remote_subjects(pair.remote)


def prepare(host: HostRepo, how: str) -> None:
    root = host.root
    if how == "wrong branch":
        git(root, "checkout", "--quiet", "-b", "other")
    elif how == "detached HEAD":
        git(root, "checkout", "--quiet", "--detach")
    elif how == "dirty tree":
        (root / "src.py").write_text("uncommitted")
    elif how == "rebase in progress":
        (root / ".git" / "rebase-merge").mkdir()
    elif how == "remote missing":
        git(root, "remote", "remove", "origin")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (
            "wrong branch",
            "on branch 'other', but --branch/sync.branch is 'main'; "
            "git switch main, or drop --branch",
        ),
        ("detached HEAD", "HEAD is detached; check out the branch to sync (git switch <branch>)"),
        (
            "dirty tree",
            "the work tree has changes galph may not commit: src.py; "
            "commit or move them first (see autocommit.galph)",
        ),
        (
            "rebase in progress",
            f"a rebase is in progress in {ANY}/galph; finish it (git rebase --continue) "
            "or abort it (git rebase --abort), then restart",
        ),
        (
            "remote missing",
            "remote 'origin' does not exist; git remote add origin <url>, or pass --remote",
        ),
    ],
)
def test_start_up_checks(tmp_path: Path, how: str, message: str) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    prepare(galph, how)
    before_remote = remote_subjects(pair.remote)
    head = git(galph.root, "rev-parse", "HEAD")
    code, out = supervisor(galph, "--branch", "main")
    assert code == 1
    assert_one_line_error(out, message)
    assert remote_subjects(pair.remote) == before_remote
    assert git(galph.root, "rev-parse", "HEAD") == head
    assert galph.calls() == []


def push_state(pair: Pair, text: str) -> None:
    human = pair.clones["ralph"]
    git(human.root, "pull", "--quiet")
    (human.root / "sync").mkdir(exist_ok=True)
    (human.root / "sync" / "state.json").write_text(text)
    git(human.root, "add", "sync/state.json")
    git(human.root, "commit", "--quiet", "-m", "the other side's state")
    git(human.root, "push", "--quiet", "origin", "main")


_COMMIT_A_VALID_STATE = "commit a valid sync/state.json to origin/main, then restart"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{not json",
            "refused the remote's state: origin/main:sync/state.json is not valid JSON (Expecting "
            f"property name enclosed in double quotes at line 1); {_COMMIT_A_VALID_STATE}",
        ),
        (
            '{"iteration": "2", "expected_actor": "galph", "status": "idle"}',
            "refused the remote's state: origin/main:sync/state.json: field 'iteration' must be "
            f'an integer ≥ 1, not "2"; {_COMMIT_A_VALID_STATE}',
        ),
        (
            '{"iteration": 1, "expected_actor": "galph", "status": "idle"}',
            "refused the remote's state: its iteration went back from 3 to 1 "
            "(origin/main:sync/state.json); find out who rewrote the remote; "
            "restore its state file, then restart",
        ),
    ],
)
def test_bad_state_from_the_other_side_is_refused(tmp_path: Path, text: str, message: str) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    push_state(pair, '{"iteration": 3, "expected_actor": "galph", "status": "complete"}\n')
    git(galph.root, "pull", "--quiet")
    push_state(pair, text)
    code, out = supervisor(galph)
    assert code == 1
    assert_one_line_error(out, message)
    assert galph.calls() == []
    assert json.loads((galph.root / "sync/state.json").read_text())["iteration"] == 3


def test_stamp_recovers_a_failed_turn_by_hand(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"exit": 1}})
    supervisor(galph)
    refused = tandem(ralph.root, "stamp", "ralph", "ok", "--sync-via-git", env=ralph.env())
    assert refused.code == 1
    assert "it is galph's turn" in refused.err
    (galph.root / "input.md").write_text("written by a human\n")
    stamped = tandem(galph.root, "stamp", "galph", "ok", "--sync-via-git", env=galph.env())
    assert stamped.code == 0, stamped.err
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["expected_actor"], state["status"], state["failure"]) == (
        "ralph",
        "waiting-ralph",
        None,
    )
    assert remote_file(pair.remote, "input.md") == "written by a human\n"
    code, out = loop(ralph)
    assert code == 0, out


def test_status_shows_the_remote_view(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"sleep": 3}})
    proc = start_tandem(galph.root, "supervisor", *SYNC, env=galph.env(), log=tmp_path / "g.log")
    _wait_until_agent_started(galph)
    shown = tandem(ralph.root, "status", env=ralph.env())
    proc.wait(timeout=60)
    assert shown.code == 0, shown.err
    assert "remote (origin/main): iteration 1, galph's turn, running-galph" in shown.out
    assert "lease: " in shown.out
    assert "running for" in shown.out


def test_stop_request_pushed_from_elsewhere_stops_the_waiting_side(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, names=("galph", "ralph", "human"))
    ralph, human = pair.clones["ralph"], pair.clones["human"]
    supervisor(pair.clones["galph"])  # galph's turn done: ralph's turn next
    git(human.root, "pull", "--quiet")
    stopped = tandem(human.root, "stop", "--sync-via-git", "--reason", "lunch", env=human.env())
    assert stopped.code == 0, stopped.err
    code, out = loop(ralph)
    assert code == 0
    assert "stopping: lunch" in out
    assert ralph.calls() == []
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert "exit" not in state


def test_handoff_is_refused_when_the_turn_leaves_files_it_may_not_commit(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "task\n", "src/oops.py": "x = 1\n"}}})
    code, out = supervisor(galph)
    assert code == 1
    assert_line(
        last_line(out),
        "tandem: galph turn failed at iteration 1 (prompt supervisor.md, agent fake): galph's "
        "turn left dirty paths it may not commit: src/oops.py (see autocommit.galph; nothing "
        f"was discarded); log: logs/main/galph/iter-00001_{ANY}_supervisor.log",
    )
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["expected_actor"], state["status"]) == ("galph", "failed")
    assert remote_file(pair.remote, "input.md") == "task\n"  # what galph may commit went out
    assert (galph.root / "src" / "oops.py").read_text() == "x = 1\n"  # nothing discarded

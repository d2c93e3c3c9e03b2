"""Never stuck (SPEC §13.1 rules 1, 3, 4, 5): crashes between the state write and the
commit, stop requests from elsewhere, agents that misuse git, and commands on the wrong
branch; real processes, real git, a real bare remote."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from crashes import (
    assert_no_agent_alive,
    assert_stamped_once,
    crashing_env,
    killed_inside_state_write,
    ok_stamps,
)
from helpers import (
    SYNC,
    HostRepo,
    git,
    last_line,
    make_host,
    make_pair,
    remote_file,
    remote_subjects,
    start_tandem,
    tandem,
)


def remote_state(remote: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads(remote_file(remote, "sync/state.json"))
    return state


# -- rule 1: the state write and the commit are one unit ------------------------------------
def test_combined_kill_between_state_write_and_commit_is_completed_on_restart(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"write": {"input.md": "plan\n"}}, "ralph": {"append": {"w.txt": "x\n"}}})
    env, plan = crashing_env(
        tmp_path, host, {"command": "commit", "match": "status=ok", "before": True}
    )
    first = tandem(host.root, "run", "--iterations", "2", env=env)
    assert first.code == -9
    assert not plan.exists()
    assert host.state()["status"] == "waiting-ralph"  # written, its commit missing
    again = tandem(host.root, "run", env=host.env())
    assert again.code == 0, again.err
    assert "recorded galph's finished turn that an interrupted run did not commit" in again.err
    assert_stamped_once(host.subjects(), 1)
    assert [c["actor"] for c in host.calls()] == ["galph", "ralph"]  # galph did not run twice
    stamp = git(host.root, "show", "--name-only", "--format=", "HEAD~1").split()
    assert sorted(stamp) == ["input.md", "sync/state.json"]  # the turn's work went with it
    assert host.dirty() == []


def test_sync_kill_between_state_write_and_commit_is_completed_and_published(
    tmp_path: Path,
) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "plan\n"}}})
    env, _ = crashing_env(
        tmp_path, galph, {"command": "commit", "match": "status=ok", "before": True}
    )
    assert tandem(galph.root, "supervisor", *SYNC, env=env).code == -9
    again = tandem(galph.root, "supervisor", *SYNC, "--max-wait-sec", "1", env=galph.env())
    assert again.code == 1, again.err
    assert "gave up waiting for galph's turn" in again.err
    subjects = remote_subjects(pair.remote)
    assert ok_stamps(subjects) == {(1, "galph"): 1}
    assert remote_file(pair.remote, "input.md") == "plan\n"
    state = remote_state(pair.remote)
    assert (state["expected_actor"], state["status"], state["lease_owner"]) == (
        "ralph",
        "waiting-ralph",
        None,
    )
    assert len(galph.calls()) == 1
    assert galph.dirty() == []


def test_sync_kill_while_honouring_a_stop_does_not_lose_it(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, names=("galph", "ralph", "human"))
    galph, ralph, human = (pair.clones[n] for n in ("galph", "ralph", "human"))
    assert tandem(galph.root, "supervisor", *SYNC, env=galph.env()).code == 0
    git(human.root, "pull", "--quiet")
    assert (
        tandem(human.root, "stop", "--sync-via-git", "--reason", "lunch", env=human.env()).code == 0
    )
    env, _ = crashing_env(
        tmp_path, ralph, {"command": "commit", "match": "stop: lunch", "before": True}
    )
    assert tandem(ralph.root, "loop", *SYNC, env=env).code == -9
    again = tandem(ralph.root, "loop", *SYNC, env=ralph.env())
    assert again.code == 0, again.err
    assert "stopping: lunch" in again.out
    assert ralph.calls() == []
    assert remote_subjects(pair.remote)[-1] == "[SYNC i=1] stop: lunch"
    assert "exit" not in remote_state(pair.remote)


@pytest.mark.parametrize("mode", ["combined", "sync"])
def test_kill_inside_the_state_write_of_a_finish_then_restart(tmp_path: Path, mode: str) -> None:
    """The rename never happened: the turn is not recorded, so the restart runs it again,
    and it is stamped ok once; the temp file is removed, never committed."""
    if mode == "combined":
        host = make_host(tmp_path)
        args: tuple[str, ...] = ("run",)
    else:
        host = make_pair(tmp_path).clones["galph"]
        args = ("supervisor", *SYNC)
    host.plan({"galph": {"write": {"input.md": "plan\n"}}})
    assert killed_inside_state_write(host, '"waiting-ralph"', *args) == -9
    assert list((host.root / "sync").glob(".state.json.*.tmp"))  # the write was cut short
    again = tandem(host.root, *args, env=host.env())
    assert again.code == 0, again.err
    assert "recovering stale turn" in again.out
    assert ok_stamps(host.subjects())[(1, "galph")] == 1
    assert len([c for c in host.calls() if c["actor"] == "galph"]) == 2
    assert not list((host.root / "sync").glob(".state.json.*.tmp"))
    assert ".tmp" not in git(host.root, "log", "--all", "--name-only", "--format=")
    assert host.dirty() == []


@pytest.mark.parametrize("mode", ["combined", "sync"])
def test_temp_file_of_an_interrupted_state_write_is_removed_never_committed(
    tmp_path: Path, mode: str
) -> None:
    if mode == "combined":
        host = make_host(tmp_path)
        args: tuple[str, ...] = ("run",)
    else:
        host = make_pair(tmp_path).clones["galph"]
        args = ("supervisor", *SYNC)
    # what SIGKILL inside StateFile.write leaves: a temp file, the rename never done
    leftover = host.root / "sync" / ".state.json.k1ll3d.tmp"
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_text('{"iteration": 1, "expected_a')
    done = tandem(host.root, *args, env=host.env())
    assert done.code == 0, done.err
    assert "removed sync/.state.json.k1ll3d.tmp (an interrupted write)" in done.err
    assert not leftover.exists()
    assert ".state.json.k1ll3d.tmp" not in git(host.root, "log", "--all", "--stat")
    assert host.dirty() == []


# -- rule 3: the state file never conflicts ----------------------------------------------------
def _wait_for(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_stop_pushed_from_a_third_clone_mid_turn_is_merged_and_honoured(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, names=("galph", "ralph", "human"))
    galph, human = pair.clones["galph"], pair.clones["human"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}, "sleep": 3}})
    proc = start_tandem(
        galph.root, "supervisor", *SYNC, "--iterations", "3", env=galph.env(), log=tmp_path / "g"
    )
    _wait_for(galph.calls, "the agent never started")
    time.sleep(1.1)  # the stop's last_update differs from the claim's: both sides change it
    git(human.root, "pull", "--quiet")
    stop = tandem(human.root, "stop", "--sync-via-git", "--reason", "lunch", env=human.env())
    assert stop.code == 0, stop.err
    assert proc.wait(timeout=60) == 0, (tmp_path / "g").read_text()
    out = (tmp_path / "g").read_text()
    assert "stopping: lunch" in out
    assert len(galph.calls()) == 1  # stopped right after the turn, not at the next one
    subjects = remote_subjects(pair.remote)
    assert subjects[-1] == "[SYNC i=1] stop: lunch"
    assert ok_stamps(subjects) == {(1, "galph"): 1}
    state = remote_state(pair.remote)
    assert (state["expected_actor"], state["status"]) == ("ralph", "waiting-ralph")
    assert "exit" not in state
    assert remote_file(pair.remote, "input.md") == "task\n"


def _human_edits_the_state(human: HostRepo) -> None:
    git(human.root, "pull", "--quiet")
    data = json.loads((human.root / "sync" / "state.json").read_text())
    (human.root / "sync" / "state.json").write_text(json.dumps({**data, "note": "by hand"}))
    git(human.root, "commit", "--quiet", "-am", "a human edits the state")
    git(human.root, "push", "--quiet", "origin", "main")


def test_local_stop_while_the_remote_moves_is_honoured_and_published(tmp_path: Path) -> None:
    """A local `tandem stop` and a push to the state file: the catch-up merges them."""
    pair = make_pair(tmp_path, names=("galph", "ralph", "human"))
    galph, ralph, human = (pair.clones[n] for n in ("galph", "ralph", "human"))
    assert tandem(galph.root, "supervisor", *SYNC, env=galph.env()).code == 0
    git(ralph.root, "pull", "--quiet")
    _human_edits_the_state(human)
    assert tandem(ralph.root, "stop", "--reason", "lunch", env=ralph.env()).code == 0
    done = tandem(ralph.root, "loop", *SYNC, env=ralph.env())
    assert done.code == 0, done.err
    assert "stopping: lunch" in done.out
    assert ralph.calls() == []
    assert remote_subjects(pair.remote)[-1] == "[SYNC i=1] stop: lunch"
    state = remote_state(pair.remote)
    assert state["note"] == "by hand"
    assert "exit" not in state
    assert (state["expected_actor"], state["status"]) == ("ralph", "waiting-ralph")
    assert ralph.dirty() == []


def test_local_stop_while_waiting_stops_the_loop_cleanly(tmp_path: Path) -> None:
    """ralph waits for galph; the remote moves and a local stop arrives in one poll."""
    pair = make_pair(tmp_path, names=("galph", "ralph", "human"))
    galph, ralph, human = (pair.clones[n] for n in ("galph", "ralph", "human"))
    assert tandem(galph.root, "supervisor", *SYNC, env=galph.env()).code == 0
    assert tandem(galph.root, "stamp", "ralph", "ok", "--sync-via-git", env=galph.env()).code == 0
    log = tmp_path / "r"
    args = ("loop", "--sync-via-git", "--poll-interval", "2")
    proc = start_tandem(ralph.root, *args, env=ralph.env(), log=log)
    _wait_for(lambda: "waiting for ralph's turn" in log.read_text(), "ralph never waited")
    time.sleep(5)  # the polls have backed off to 2 s: both changes land in one interval
    _human_edits_the_state(human)
    assert tandem(ralph.root, "stop", "--reason", "lunch", env=ralph.env()).code == 0
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert "stopping: lunch" in log.read_text()
    assert ralph.calls() == []
    assert remote_subjects(pair.remote)[-1] == "[SYNC i=2] stop: lunch"
    state = remote_state(pair.remote)
    assert "exit" not in state
    assert state["note"] == "by hand"


# -- rule 4: what the agent did to git -------------------------------------------------------
def _side_branch(host: HostRepo) -> None:
    git(host.root, "branch", "side")
    git(host.root, "switch", "--quiet", "side")
    (host.root / "side.txt").write_text("side\n")
    git(host.root, "add", "side.txt")
    git(host.root, "commit", "--quiet", "-m", "side work")
    git(host.root, "switch", "--quiet", "main")


@pytest.mark.parametrize(
    ("action", "needle", "repair"),
    [
        (
            {"git": [["switch", "--quiet", "-c", "feature"]]},
            "the agent left the turn's branch main for branch feature",
            ["switch", "--quiet", "main"],
        ),
        (
            {"git": [["reset", "--quiet", "--hard", "HEAD~1"]]},
            "the agent moved HEAD below the turn's claim commit",
            None,
        ),
        (
            {"git": [["merge", "--quiet", "--no-ff", "--no-commit", "side"]]},
            "the agent left a merge in progress; finish it (git merge --continue) or abort "
            "it (git merge --abort)",
            ["merge", "--abort"],
        ),
        (
            {"write": {".git/index.lock": ""}},
            "index.lock behind (a git command of its turn was killed)",
            None,
        ),
    ],
)
def test_agent_git_actions_fail_the_turn_and_push_nothing(
    tmp_path: Path, action: dict[str, object], needle: str, repair: list[str] | None
) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    _side_branch(galph)
    galph.plan({"galph": {"write": {"input.md": "task\n"}, **action}})
    done = tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    assert done.code == 1, done.err
    line = last_line(done.err)
    assert line.startswith("tandem: galph turn failed at iteration 1"), line
    assert needle in line
    assert "Traceback" not in done.err
    subjects = remote_subjects(pair.remote)
    assert subjects[-1] == "[SYNC i=1] actor=galph status=running"  # nothing else pushed
    assert "feature" not in git(pair.remote, "branch", "--list")
    if repair is None:
        return
    git(galph.root, *repair)
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    again = tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    assert again.code == 0, again.err
    assert "recorded galph's finished turn" in again.err
    subjects = remote_subjects(pair.remote)
    assert sum(s.startswith("[SYNC i=1] actor=galph status=fail") for s in subjects) == 1
    assert ok_stamps(subjects) == {(1, "galph"): 1}


def test_combined_merge_left_by_the_agent_then_restarts(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    _side_branch(host)
    host.plan({"galph": {"git": [["merge", "--quiet", "--no-ff", "--no-commit", "side"]]}})
    first = tandem(host.root, "run", env=host.env())
    assert first.code == 1
    assert "the agent left a merge in progress" in last_line(first.err)
    host.plan({"galph": {}})
    refused = tandem(host.root, "run", env=host.env())
    assert refused.code == 1
    assert refused.err.strip().startswith("tandem: error: a merge is in progress in ")
    git(host.root, "merge", "--abort")
    again = tandem(host.root, "run", env=host.env())
    assert again.code == 0, again.err
    subjects = host.subjects()
    assert sum(s.startswith("[SYNC i=1] actor=galph status=fail") for s in subjects) == 1
    assert_stamped_once(subjects, 1)
    assert "side work" not in git(host.root, "log", "--format=%s", "main")


def test_a_restart_never_follows_the_agent_onto_its_branch(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"git": [["switch", "--quiet", "-c", "feature"]]}})
    assert tandem(galph.root, "supervisor", *SYNC, env=galph.env()).code == 1
    galph.plan({"galph": {}})
    again = tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    assert again.code == 1
    assert again.err.strip() == (
        "tandem: error: origin/feature does not exist, but this branch carries a loop "
        "(sync/state.json); switch to the loop's branch (git switch <branch>), or pass "
        "--branch feature to sync this one"
    )
    assert git(pair.remote, "branch", "--list", "--format=%(refname:short)").split() == ["main"]
    assert len(galph.calls()) == 1


def test_agent_rewriting_tandems_state_fields_fails_the_turn(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"state": {"status": "idle", "lease_owner": None, "mine": 1}}})
    done = tandem(galph.root, "supervisor", *SYNC, env=galph.env())
    assert done.code == 1
    assert (
        "the agent rewrote tandem's fields of sync/state.json (lease_identity, lease_owner, status)"
        in (last_line(done.err))
    )
    state = remote_state(pair.remote)
    assert (state["expected_actor"], state["status"], state["mine"]) == ("galph", "failed", 1)


# -- rule 5: one checked session for every remote-touching command ------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ("stamp", "galph", "ok", "--sync-via-git", "--branch", "main"),
        ("stop", "--sync-via-git", "--branch", "main", "--reason", "x"),
    ],
)
def test_remote_commands_on_a_feature_branch_are_refused(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    git(galph.root, "switch", "--quiet", "-c", "feature")
    (galph.root / "feature.txt").write_text("not for main\n")
    git(galph.root, "add", "feature.txt")
    git(galph.root, "commit", "--quiet", "-m", "feature work")
    before = remote_subjects(pair.remote)
    done = tandem(galph.root, *command, env=galph.env())
    assert done.code == 1
    assert done.err.strip() == (
        "tandem: error: on branch 'feature', but --branch/sync.branch is 'main'; "
        "git switch main, or drop --branch"
    )
    assert remote_subjects(pair.remote) == before


def test_push_in_combined_mode_runs_the_start_up_checks(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    done = tandem(host.root, "run", "--push", env=host.env())
    assert done.code == 1
    assert done.err.strip().startswith("tandem: error: remote 'origin' does not exist")
    assert host.calls() == []
    assert_no_agent_alive(host)

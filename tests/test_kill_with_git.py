"""SIGKILL of tandem together with its git child (SPEC §13.1): a commit cut off holding
``index.lock``, a push cut off mid-transfer; plain restarts finish the loop, nothing is
lost and no turn is stamped twice."""

from __future__ import annotations

from pathlib import Path

from crashes import assert_stamped_once, crashing_env, ok_stamps
from helpers import git, make_host, make_pair, remote_subjects, tandem

SYNC = ("--sync-via-git", "--poll-interval", "0.3")


def test_combined_kill_with_git_mid_commit_names_the_lock_then_finishes(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"write": {"input.md": "plan\n"}}, "ralph": {"append": {"w.txt": "x\n"}}})
    env, _ = crashing_env(
        tmp_path, host, {"command": "commit", "match": "status=ok", "with_git": True}
    )
    assert tandem(host.root, "run", "--iterations", "2", env=env).code == -9
    lock = Path(git(host.root, "rev-parse", "--absolute-git-dir").strip()) / "index.lock"
    assert lock.exists()
    refused = tandem(host.root, "run", "--iterations", "2", env=host.env())
    assert refused.code == 1
    [line] = refused.err.strip().splitlines()
    assert line.startswith("tandem: error: ")
    assert f"rm {lock}" in line
    lock.unlink()  # what the line says to do
    done = tandem(host.root, "run", "--iterations", "2", env=host.env())
    assert done.code == 0, done.err
    assert_stamped_once(host.subjects(), 2)
    assert [c["actor"] for c in host.calls()] == ["galph", "ralph", "galph", "ralph"]
    assert git(host.root, "show", "HEAD:input.md") == "plan\n"
    assert host.dirty() == []


def test_sync_kill_with_git_mid_push_is_published_by_the_restart(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "plan\n"}}})
    env, _ = crashing_env(tmp_path, galph, {"match": "status=ok", "with_git": True})
    assert tandem(galph.root, "supervisor", *SYNC, env=env).code == -9
    again = tandem(galph.root, "supervisor", *SYNC, "--max-wait-sec", "1", env=galph.env())
    assert again.code == 1, again.err  # its turn is done: it waits for ralph, then gives up
    assert "gave up waiting for galph's turn" in again.err
    assert tandem(ralph.root, "loop", *SYNC, env=ralph.env()).code == 0
    subjects = remote_subjects(pair.remote)
    assert ok_stamps(subjects) == {(1, "galph"): 1, (1, "ralph"): 1}
    assert len(galph.calls()) == 1
    assert git(pair.remote, "show", "main:input.md") == "plan\n"

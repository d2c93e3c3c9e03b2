"""Randomized crashes (SPEC §13, §13.1): SIGKILL tandem at random moments of combined and
sync runs, then restart it plainly, and check that no commit is lost, no turn is stamped
ok twice, no agent outlives its tandem, and the loop finishes its iterations.

Seeded: ``TANDEM_CRASH_SEED`` (default 7) picks the moments, ``TANDEM_CRASH_ROUNDS`` how
many rounds each mode runs (default 2, for CI; raise it to hunt).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from crashes import (
    assert_no_agent_alive,
    assert_reachable,
    assert_stamped_once,
    ok_stamps,
    work_commits,
)
from helpers import HostRepo, Run, git, make_host, make_pair, remote_subjects, start_tandem, tandem

SEED = int(os.environ.get("TANDEM_CRASH_SEED", "7"))
ROUNDS = int(os.environ.get("TANDEM_CRASH_ROUNDS", "2"))
ITERATIONS = 2
SYNC = ("--sync-via-git", "--poll-interval", "0.2")
PLAN = {
    "galph": {"write": {"input.md": "plan\n"}},
    "ralph": {"append": {"work.txt": "step\n"}, "commit": "ralph's own commit"},
}


def killed_run(host: HostRepo, args: tuple[str, ...], delay: float, log: Path) -> Run:
    """Start ``tandem ARGS``, SIGKILL it after ``delay`` seconds unless it ended first."""
    proc = start_tandem(host.root, *args, env=host.env(), log=log)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    return Run(proc.returncode, log.read_text(), "")


def plain_run(host: HostRepo, args: tuple[str, ...], log: Path) -> Run:
    """A restart as a user types it; a stale index.lock is removed as its error says."""
    for _ in range(3):
        proc = start_tandem(host.root, *args, env=host.env(), log=log)
        code = proc.wait(timeout=120)
        out = log.read_text()
        if code != 1 or "index.lock exists" not in out:
            return Run(code, out, "")
        (host.root / ".git" / "index.lock").unlink()
    raise AssertionError(out)


def peer_turn(peer: HostRepo, *args: str) -> None:
    """The peer's turn, which must succeed (a crash log is shown if it does not)."""
    done = tandem(peer.root, *args, env=peer.env())
    crashes = [p.read_text() for p in (peer.root / "logs").glob("tandem-crash-*.log")]
    assert done.code == 0, done.err + "".join(crashes)


def remaining(host: HostRepo) -> int:
    """Iterations left to reach ITERATIONS by the recorded (committed) state; a restart
    may then record one more turn that a killed run finished but did not commit."""
    text = git(host.root, "show", "HEAD:sync/state.json", check=False)
    done = json.loads(text)["iteration"] - 1 if text else 0
    return ITERATIONS - done


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_combined_mode_survives_random_kills(tmp_path: Path, round_number: int) -> None:
    rng = random.Random(f"combined-{SEED}-{round_number}")  # noqa: S311 - moments, not secrets
    host = make_host(tmp_path)
    host.plan(PLAN)
    seen: set[str] = set()
    for kill in range(2):
        if remaining(host) == 0:
            break
        args = ("run", "--iterations", str(remaining(host)))
        run = killed_run(host, args, rng.uniform(0.3, 1.6), tmp_path / f"kill-{kill}.log")
        assert run.code in (0, -9), run.out
        assert_no_agent_alive(host)
        seen |= work_commits(host.root)
    if remaining(host) > 0:
        args = ("run", "--iterations", str(remaining(host)))
        final = plain_run(host, args, tmp_path / "final.log")
        assert final.code == 0, f"seed {SEED} round {round_number}: {final.out}"
    assert_stamped_once(host.subjects(), ITERATIONS)
    assert_reachable(host.root, seen)
    assert (host.root / "work.txt").read_text().count("step") >= ITERATIONS
    assert host.dirty() == []


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_sync_mode_survives_random_kills(tmp_path: Path, round_number: int) -> None:
    """One actor is killed at random moments; its peer's turns are stamped by hand."""
    rng = random.Random(f"sync-{SEED}-{round_number}")  # noqa: S311 - moments, not secrets
    name = rng.choice(["galph", "ralph"])
    pair = make_pair(tmp_path)
    victim = pair.clones[name]
    peer = pair.clones["ralph" if name == "galph" else "galph"]
    victim.plan(PLAN)
    args = ("supervisor" if name == "galph" else "loop", *SYNC, "--max-wait-sec", "2")
    on_remote: set[str] = set()
    for i in range(1, ITERATIONS + 1):
        if name == "ralph":  # galph's turn first: a real one creates the state file
            first = ("supervisor", *SYNC) if i == 1 else ("stamp", "galph", "ok", "--sync-via-git")
            peer_turn(peer, *first)
        killed = killed_run(victim, args, rng.uniform(0.3, 1.5), tmp_path / f"kill-{i}.log")
        assert killed.code in (0, -9), killed.out
        assert_no_agent_alive(victim)
        on_remote |= work_commits(pair.remote)
        while ok_stamps(remote_subjects(pair.remote))[(i, name)] == 0:
            again = plain_run(victim, args, tmp_path / f"again-{i}.log")
            assert again.code == 0 or "gave up waiting" in again.out, again.out
        if name == "galph":
            peer_turn(peer, "stamp", "ralph", "ok", "--sync-via-git")
    assert_stamped_once(remote_subjects(pair.remote), ITERATIONS)
    assert_reachable(pair.remote, on_remote)
    assert_no_agent_alive(victim)

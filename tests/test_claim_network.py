"""The claim push over a network that fails at exactly that moment (SPEC §8.2.5, §8.7).

Real tandem processes, real git, a real ``git daemon`` behind the fault proxy of
``netrig``, and ``git_gate.py`` as ``git``: it holds the claim push (the push of
``status=running``) until the test has set the fault, so the cut lands on that push and
no other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from git_gate import gated_env
from helpers import REPO_ROOT, HostRepo, make_pair, remote_file, remote_subjects, tandem, wait_for
from netrig import network_env, served

BOUND = 1.5
CONFIG = f"sync:\n  lease_secs: 30\n  git_timeout_secs: {BOUND}\n"
SYNC = ("--sync-via-git", "--poll-interval", "0.3", "--heartbeat-secs", "0.5")
SLACK = 8.0  # a loaded CI machine
CLAIM = "[SYNC i=1] actor=galph status=running"


def start(host: HostRepo, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tandem", "supervisor", *SYNC],
            cwd=host.root,
            env={**env, "PYTHONPATH": str(REPO_ROOT / "src")},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def one_turn_landed(remote: Path, galph: HostRepo) -> None:
    subjects = remote_subjects(remote)
    assert subjects.count(CLAIM) == 1, subjects
    assert sum(s.startswith("[SYNC i=1] actor=galph → next=ralph status=ok") for s in subjects) == 1
    assert remote_file(remote, "input.md") == "task\n"
    assert len(galph.calls()) == 1


@pytest.mark.parametrize("peer_pushes", [False, True], ids=["quiet", "peer-stop"])
def test_a_claim_push_whose_answer_was_lost_is_adopted(tmp_path: Path, peer_pushes: bool) -> None:
    """The remote took the claim, the answer never came: the bound ends the push and the
    retry finds this process's own claim there (up to date, or under the peer's stop
    request when the peer pushed meanwhile) and goes on with the turn: it ran once."""
    pair = make_pair(tmp_path, CONFIG)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    gate = tmp_path / "gate"
    gate.mkdir()
    log = tmp_path / "galph.log"
    with served(pair.remote, [galph.root]):
        plan = {"match": "status=running", "mode": "lost", "dir": str(gate)}
        env = gated_env(network_env(galph.env()), tmp_path / "shim", plan)
        proc = start(galph, env, log)
        wait_for((gate / "at").exists, "the claim push never came")
        assert (gate / "at").read_text() == "0"  # the real push went through
        assert CLAIM in remote_subjects(pair.remote)
        if peer_pushes:  # ralph's machine asks for a stop while galph's push hangs
            stop = tandem(ralph.root, "stop", "--sync-via-git", "--reason", "peer asked")
            assert stop.code == 0, stop.err
        (gate / "go").touch()
        assert proc.wait(timeout=60) == 0, log.read_text()
    out = log.read_text()
    assert "turn claimed elsewhere" not in out, out
    assert "retrying (claim)" in out  # the bound ended the push, the outage retried it
    if peer_pushes:
        assert "the claim push had reached the remote; going on with the turn" in out
        assert "stopping: peer asked" in out
    one_turn_landed(pair.remote, galph)


def test_a_blackhole_on_the_claim_push_is_ridden_out_and_the_turn_runs_once(
    tmp_path: Path,
) -> None:
    pair = make_pair(tmp_path, CONFIG)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    gate = tmp_path / "gate"
    gate.mkdir()
    log = tmp_path / "galph.log"
    with served(pair.remote, [galph.root]) as net:
        plan = {"match": "status=running", "mode": "hold", "dir": str(gate)}
        env = gated_env(network_env(galph.env()), tmp_path / "shim", plan)
        proc = start(galph, env, log)
        wait_for((gate / "at").exists, "the claim push never came")
        net.proxy.blackhole()
        (gate / "go").touch()
        took = wait_for(lambda: "remote unreachable since" in log.read_text(), "no heartbeat")
        assert took < BOUND + SLACK  # the stalled push was ended by the bound, not by TCP
        assert CLAIM not in remote_subjects(pair.remote)
        time.sleep(2 * BOUND)  # more retries meet the cut
        assert galph.calls() == []  # the agent never starts before the claim landed
        net.proxy.heal()
        assert proc.wait(timeout=60) == 0, log.read_text()
    out = log.read_text()
    assert "retrying (claim)" in out
    assert "remote reachable again after" in out
    one_turn_landed(pair.remote, galph)


def test_a_rejected_claim_push_fetches_once_before_the_retry(tmp_path: Path) -> None:
    """The remote moved under the claim push (the peer's stop request): one fetch both
    judges the remote's state and catches up, then the claim is pushed again."""
    pair = make_pair(tmp_path, CONFIG)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    gate = tmp_path / "gate"
    gate.mkdir()
    log, ran = tmp_path / "galph.log", tmp_path / "git-calls.jsonl"
    plan = {"match": "status=running", "mode": "hold", "dir": str(gate)}
    env = {**gated_env(galph.env(), tmp_path / "shim", plan), "GATE_LOG": str(ran)}
    proc = start(galph, env, log)
    wait_for((gate / "at").exists, "the claim push never came")
    stop = tandem(ralph.root, "stop", "--sync-via-git", "--reason", "peer asked")
    assert stop.code == 0, stop.err
    (gate / "go").touch()
    assert proc.wait(timeout=60) == 0, log.read_text()
    calls = [json.loads(line) for line in ran.read_text().splitlines()]
    gated = calls.index(["<gate>"])
    retry = next(i for i in range(gated, len(calls)) if "HEAD:refs/heads/main" in calls[i])
    between = calls[gated:retry]  # from the rejected claim push to its retry
    fetches = [argv for argv in between if "fetch" in argv and any("heads/main" in a for a in argv)]
    assert len(fetches) == 1, between
    assert "turn claimed elsewhere" not in log.read_text()
    one_turn_landed(pair.remote, galph)

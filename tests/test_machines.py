"""Machines that die, networks that drop, clocks that differ (SPEC §3.4.1, §8.7).

Each "machine" is a real tandem process in its own clone and its own UTS namespace with
its own host name (``as_host.py``), so leases are judged across hosts as on real
machines: by renewal and expiry, not by this host's process table. The network is the
rig of ``netrig.py``: a real ``git daemon`` behind a proxy that cuts, resets and heals.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from as_host import machine
from helpers import (
    REPO_ROOT,
    HostRepo,
    Pair,
    git,
    make_pair,
    remote_file,
    remote_subjects,
    wait_for,
)
from netrig import network_env, served

FAST = "sync:\n  lease_secs: 4\n  lease_renew_secs: 1\n  git_timeout_secs: 1.5\n"
SYNC = ("--sync-via-git", "--poll-interval", "0.3", "--heartbeat-secs", "0.5")

if subprocess.run(machine("probe", ["true"]), capture_output=True, check=False).returncode:
    pytest.skip("no UTS namespace here (unshare)", allow_module_level=True)


def on(name: str, host: HostRepo, *args: str, log: Path, prefix: tuple[str, ...] = ()) -> Popen:
    """``tandem ARGS`` in ``host``'s clone on the pretend machine ``name``."""
    env = network_env(host.env(PYTHONPATH=str(REPO_ROOT / "src")))
    with log.open("wb") as out:
        return subprocess.Popen(
            machine(name, [*prefix, sys.executable, "-m", "tandem", *args]),
            cwd=host.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


Popen = subprocess.Popen[bytes]


def run_on(
    name: str, host: HostRepo, *args: str, log: Path, timeout: float = 60
) -> tuple[int, str]:
    proc = on(name, host, *args, log=log)
    return proc.wait(timeout=timeout), log.read_text()


def kill_machine(proc: Popen, host: HostRepo) -> None:
    """SIGKILL the whole tree: tandem's group, and the agent in its own group."""
    os.killpg(proc.pid, signal.SIGKILL)
    for call in host.calls():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(call["pid"], signal.SIGKILL)
    proc.wait(timeout=10)


def remote_ref(remote: Path, ref: str) -> str | None:
    return git(remote, "rev-parse", "--verify", "--quiet", ref, check=False).strip() or None


def status_on(name: str, host: HostRepo, tmp_path: Path) -> str:
    return run_on(name, host, "status", log=tmp_path / f"status-{time.monotonic_ns()}.log")[1]


def galph_turn(galph: HostRepo, tmp_path: Path) -> None:
    code, out = run_on("host-a", galph, "supervisor", *SYNC, log=tmp_path / "galph.log")
    assert code == 0, out


def three_machines(tmp_path: Path) -> tuple[Pair, HostRepo, HostRepo, HostRepo]:
    """galph, ralph and a standby ralph on one remote, galph's first turn played."""
    pair = make_pair(tmp_path, FAST, names=("galph", "ralph", "standby"))
    galph, ralph, standby = (pair.clones[n] for n in ("galph", "ralph", "standby"))
    galph_turn(galph, tmp_path)
    return pair, galph, ralph, standby


def test_a_dead_machine_is_shown_silent_a_standby_takes_over_and_a_restart_rescues(
    tmp_path: Path,
) -> None:
    pair, galph, ralph, standby = three_machines(tmp_path)
    ralph.plan({"ralph": {"write": {"work.txt": "from b\n"}, "sleep": 60}})
    standby.plan({"ralph": {"write": {"work.txt": "from c\n"}}})
    doomed = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "ralph-b.log")
    wait_for(lambda: bool(ralph.calls()), "ralph's agent never started")
    wait_for(lambda: remote_ref(pair.remote, "refs/tandem/lease/main") is not None, "no renewal")
    alive = status_on("host-a", galph, tmp_path)
    assert "owner: ralph on host-b, renewed " in alive, alive
    assert [s for s in remote_subjects(pair.remote) if "actor=ralph" in s] == [
        "[SYNC i=1] actor=ralph status=running"
    ]  # renewals are not commits on the branch

    kill_machine(doomed, ralph)
    died = time.monotonic()
    shown = ""

    def shown_has(words: str) -> Callable[[], bool]:
        def check() -> bool:
            nonlocal shown
            shown = status_on("host-a", galph, tmp_path)
            return words in shown

        return check

    wait_for(shown_has("owner silent for"), "the dead owner never showed as silent")
    assert time.monotonic() - died <= 1.5 + 3  # a renewal overdue, plus status's own run
    assert "(ralph on host-b), lease expire" in shown  # expires at, or expired at under load
    wait_for(shown_has("lease expired at"), "the dead owner's lease never showed expired")
    assert time.monotonic() - died <= 4 + 3

    code, out = run_on("host-c", standby, "loop", *SYNC, log=tmp_path / "standby.log")
    assert code == 0, out
    assert "recovering stale turn (owner host-b:" in out
    assert remote_file(pair.remote, "work.txt") == "from c\n"

    code, out = run_on(
        "host-b", ralph, "loop", *SYNC, "--max-wait-sec", "2", log=tmp_path / "ralph-b2.log"
    )
    assert code == 1, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("tandem: error: ralph's turn 1 was taken over by host-c:")
    assert "its work is on branch tandem/rescue/ralph-i1-host-b" in last
    assert "Traceback" not in out
    rescued = "refs/heads/tandem/rescue/ralph-i1-host-b"
    assert git(pair.remote, "show", f"{rescued}:work.txt") == "from b\n"
    stamps = [s for s in remote_subjects(pair.remote) if "actor=ralph → next=galph" in s]
    assert len(stamps) == 1  # exactly one stamp landed: the standby's
    assert len(ralph.calls()) == 1  # the restart ran nothing
    assert not ralph.dirty()


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (libfaketime)")
def test_a_standby_whose_clock_runs_ahead_never_takes_a_live_turn(tmp_path: Path) -> None:
    _, _, ralph, standby = three_machines(tmp_path)
    ralph.plan({"ralph": {"write": {"work.txt": "b\n"}, "sleep": 9}})
    owner = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "ralph.log")
    wait_for(lambda: bool(ralph.calls()), "ralph's agent never started")
    ahead = ("faketime", "-f", "+10m")
    late = on(
        "host-c",
        standby,
        "loop",
        *SYNC,
        "--max-wait-sec",
        "6",
        log=tmp_path / "standby.log",
        prefix=ahead,
    )
    assert late.wait(timeout=60) == 1
    out = (tmp_path / "standby.log").read_text()
    assert "recovering stale turn" not in out, out
    assert "gave up waiting for ralph's turn" in out
    assert "clock is 10m" in out
    assert "ahead of this one's" not in out  # theirs is behind
    assert out.count("the other machine's clock is") == 1  # warned once
    assert "ralph on host-b, renewed " in out
    assert " -" not in out.split("renewed ", 1)[1].split(" ago")[0]  # never negative
    assert owner.wait(timeout=60) == 0
    assert standby.calls() == []


def test_cuts_during_the_sync_and_the_finish_push_are_ridden_out(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, FAST)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}, "sleep": 2}})
    with served(pair.remote, [galph.root]) as net:
        net.proxy.blackhole()
        proc = on("host-a", galph, "supervisor", *SYNC, log=tmp_path / "g.log")
        time.sleep(3)  # the first fetch stalls, is ended after 1.5 s, and is retried
        assert galph.calls() == []
        net.proxy.heal()
        wait_for(lambda: bool(galph.calls()), "the turn never started after the heal")
        net.proxy.blackhole()  # the renewals and then the finish push meet the cut
        time.sleep(4)
        net.proxy.heal()
        assert proc.wait(timeout=60) == 0, (tmp_path / "g.log").read_text()
    out = (tmp_path / "g.log").read_text()
    assert out.count("remote unreachable since") >= 2, out
    assert "remote reachable again after" in out
    subjects = remote_subjects(pair.remote)
    assert subjects.count("[SYNC i=1] actor=galph status=running") == 1
    assert sum(s.startswith("[SYNC i=1] actor=galph → next=ralph status=ok") for s in subjects) == 1
    assert remote_file(pair.remote, "input.md") == "task\n"


def test_resets_while_waiting_never_end_the_wait(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, FAST)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    with served(pair.remote, [ralph.root]) as net:
        waiting = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "r.log")
        wait_for(lambda: "waiting for" in (tmp_path / "r.log").read_text(), "never waited")
        net.proxy.reset()
        time.sleep(2.5)
        assert waiting.poll() is None
        net.proxy.heal()
        galph_turn(galph, tmp_path)  # over the file remote, not the proxy
        assert waiting.wait(timeout=60) == 0, (tmp_path / "r.log").read_text()
    out = (tmp_path / "r.log").read_text()
    assert "remote unreachable since" in out
    assert "remote reachable again after" in out
    assert len(ralph.calls()) == 1


def test_a_garbage_renewal_ref_is_never_trusted(tmp_path: Path) -> None:
    pair, galph, ralph, standby = three_machines(tmp_path)
    ralph.plan({"ralph": {"write": {"work.txt": "b\n"}, "sleep": 60}})
    doomed = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "ralph.log")
    wait_for(lambda: remote_ref(pair.remote, "refs/tandem/lease/main") is not None, "no renewal")
    kill_machine(doomed, ralph)
    # garbage in the renewal ref: not a commit at all, then a lease kept alive for a year
    put_lease(pair.remote, None)
    shown = status_on("host-a", galph, tmp_path)
    assert "Traceback" not in shown
    assert "renewed" not in shown, shown
    owner = json.loads(remote_file(pair.remote, "sync/state.json"))["lease_owner"]
    put_lease(pair.remote, year_long_lease(owner))
    code, out = run_on("host-c", standby, "loop", *SYNC, log=tmp_path / "standby.log")
    assert code == 0, out
    assert "recovering stale turn (owner host-b:" in out


def year_long_lease(owner: str) -> bytes:
    now = datetime.now(timezone.utc)
    data = {
        "owner": owner,
        "actor": "ralph",
        "iteration": 1,
        "renewed_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_at": (now + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps(data).encode()


def put_lease(remote: Path, lease: bytes | None) -> None:
    """Point the remote's renewal ref at a bare blob (``None``) or a commit of ``lease``."""

    def plumb(*args: str, data: bytes = b"") -> str:
        done = subprocess.run(
            ["git", *args], cwd=remote, input=data, capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.decode().strip()

    blob = plumb("hash-object", "-w", "--stdin", data=lease or b"\x00 not json {")
    target = blob
    if lease is not None:
        tree = plumb("mktree", data=f"100644 blob {blob}\tlease.json\n".encode())
        target = plumb("commit-tree", tree, "-m", "garbage")
    plumb("update-ref", "refs/tandem/lease/main", target)


def test_stamp_force_releases_a_dead_machines_live_looking_lease(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, "sync:\n  lease_secs: 900\n")
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph_turn(galph, tmp_path)
    ralph.plan({"ralph": {"sleep": 60}})
    doomed = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "ralph.log")
    wait_for(lambda: bool(ralph.calls()), "ralph's agent never started")
    kill_machine(doomed, ralph)
    stamp = ("stamp", "ralph", "fail", "--sync-via-git", "--reason", "machine died")
    code, out = run_on("host-a", galph, *stamp, log=tmp_path / "stamp.log")
    assert code == 1
    assert "ralph's turn at iteration 1 is held by host-b:" in out
    assert "stamp with --force to release its lease" in out
    code, out = run_on("host-a", galph, *stamp, "--force", log=tmp_path / "forced.log")
    assert code == 0, out
    assert "released the lease of host-b:" in out
    last = remote_subjects(pair.remote)[-1]
    assert last.startswith("[SYNC i=1] actor=ralph status=fail")
    assert " released=host-b:" in last
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["status"], state["lease_owner"]) == ("failed", None)
    assert state["failure"]["reason"] == "machine died"


def test_renewals_that_cannot_reach_the_remote_count_toward_max_offline_secs(
    tmp_path: Path,
) -> None:
    """The cut starts while the agent works: the offline clock starts at the first failed
    renewal and goes on at the finish push, which ends the run with the usual line naming
    that start. The agent's turn ran to its end; its work is stamped locally and a rerun
    publishes it."""
    pair = make_pair(tmp_path, FAST + "  max_offline_secs: 2\n")
    galph = pair.clones["galph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}, "sleep": 8}})
    log = tmp_path / "g.log"
    with served(pair.remote, [galph.root]) as net:
        proc = on("host-a", galph, "supervisor", *SYNC, log=log)
        wait_for(lambda: bool(galph.calls()), "the turn never started")
        net.proxy.blackhole()
        assert proc.wait(timeout=60) == 1, log.read_text()
        out = log.read_text()
        first = next(line for line in out.splitlines() if "remote unreachable since" in line)
        assert first.endswith("retrying (renewal)"), out  # the first failure: a renewal
        since = first.split("remote unreachable since ", 1)[1][:8]
        assert f"remote unreachable since {since} (" in out.split("longer than")[0]
        assert "sync.max_offline_secs; the agent's turn goes on, and the run ends after it" in out
        last = out.strip().splitlines()[-1]
        assert last.startswith(
            f"tandem: error: turn stamped locally but not pushed (remote unreachable since {since} "
        ), last
        assert "gave up after sync.max_offline_secs" in last
        assert "Traceback" not in out
        assert len(galph.calls()) == 1
        assert not galph.dirty()  # the agent's work is in the local stamp commit
        assert "input.md" not in git(pair.remote, "ls-tree", "--name-only", "main")
        net.proxy.heal()
        code, again = run_on(
            "host-a", galph, "supervisor", *SYNC, "--max-wait-sec", "1", log=tmp_path / "g2.log"
        )
    assert code == 1, again
    assert "gave up waiting for galph's turn" in again, again  # ralph's turn now
    assert remote_file(pair.remote, "input.md") == "task\n"
    assert len(galph.calls()) == 1


def test_a_second_run_of_the_same_actor_waits_behind_the_live_lease_and_says_how_to_give_up(
    tmp_path: Path,
) -> None:
    _, _, ralph, standby = three_machines(tmp_path)
    ralph.plan({"ralph": {"write": {"work.txt": "b\n"}, "sleep": 8}})
    owner = on("host-b", ralph, "loop", *SYNC, log=tmp_path / "ralph.log")
    wait_for(lambda: bool(ralph.calls()), "ralph's agent never started")
    code, out = run_on(
        "host-c", standby, "loop", *SYNC, "--max-wait-sec", "3", log=tmp_path / "standby.log"
    )
    assert code == 1, out
    lines = out.splitlines()
    behind = next(i for i, line in enumerate(lines) if "waiting behind the lease of" in line)
    assert lines[behind].startswith("tandem: waiting behind the lease of host-b:"), out
    # whose lease it is; its liveness reads "renewed …" or, on a loaded machine where a 1 s
    # renewal runs late, "owner silent for 1.5s (ralph on host-b)": both name the owner
    assert " on ralph's turn 1 (another ralph run; " in lines[behind], out
    assert "ralph on host-b" in lines[behind], out
    assert lines[behind + 1] == (
        "tandem:   this run takes the turn over once that one is gone or its lease expires; "
        "to give up: Ctrl-C, or --max-wait-sec SECS; if that run's machine is dead: "
        "tandem stamp ralph fail --force --sync-via-git --reason '…'"
    )
    assert out.count("to give up: Ctrl-C") == 1
    assert lines[-1].startswith("tandem: error: gave up waiting for ralph's turn after ")
    assert standby.calls() == []
    assert owner.wait(timeout=60) == 0

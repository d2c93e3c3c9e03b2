"""Lease owners that survive pid reuse and reboots (SPEC §3.4.1), with real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from helpers import make_host, tandem
from tandem import lease
from tandem.errors import LeaseHeld, StateError
from tandem.lease import Owner, this_owner
from tandem.state import State
from tandem.statefile import parse
from tandem.times import format_time

NOW = datetime(2026, 1, 20, 3, 29, 29, tzinfo=timezone.utc)
HOST = socket.gethostname()
ME = this_owner()


@pytest.fixture
def live() -> Iterator[subprocess.Popen[bytes]]:
    """Another live process of this host, ended by its pid after the test."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def identity_of(pid: int) -> lease.Identity:
    found = lease.identity(pid)
    assert found is not None
    return found


def running(owner: str, identity: dict[str, Any] | None, expires: datetime) -> State:
    data: dict[str, Any] = {
        "iteration": 3,
        "expected_actor": "galph",
        "status": "running-galph",
        "lease_owner": owner,
        "lease_expires_at": format_time(expires),
    }
    if identity is not None:
        data["lease_identity"] = identity
    return parse(json.dumps(data), "sync/state.json")


def ident(owner: Any, start: Any, boot: Any) -> dict[str, Any]:
    return {"owner": owner, "start": start, "boot": boot}


def test_this_owner_is_host_pid_with_this_process_identity() -> None:
    assert str(ME) == f"{HOST}:{os.getpid()}"
    assert ME.identity == lease.identity(os.getpid())
    assert ME.identity is not None
    assert ME.identity.boot == lease.boot_id()


def test_a_pid_now_held_by_another_process_is_taken_over_at_once(
    live: subprocess.Popen[bytes],
) -> None:
    owner = f"{HOST}:{live.pid}"
    earlier = identity_of(live.pid).start - 1  # the process that had this pid before
    state = running(owner, ident(owner, earlier, lease.boot_id()), NOW + timedelta(hours=1))
    assert state.check_lease("galph", ME, NOW) == owner


def test_an_owner_from_before_a_reboot_is_taken_over_at_once(
    live: subprocess.Popen[bytes],
) -> None:
    owner = f"{HOST}:{live.pid}"
    start = identity_of(live.pid).start
    state = running(owner, ident(owner, start, "another-boot"), NOW + timedelta(hours=1))
    assert state.check_lease("galph", ME, NOW) == owner


def test_a_live_owner_is_refused_even_after_its_lease_expired(
    live: subprocess.Popen[bytes],
) -> None:
    owner = f"{HOST}:{live.pid}"
    found = identity_of(live.pid)
    state = running(owner, ident(owner, found.start, found.boot), NOW - timedelta(hours=1))
    with pytest.raises(LeaseHeld, match=f"held by {owner}"):
        state.check_lease("galph", ME, NOW)


def test_a_dead_owner_with_identity_is_taken_over_before_expiry() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    found = identity_of(dead.pid)
    dead.wait()
    owner = f"{HOST}:{dead.pid}"
    state = running(owner, ident(owner, found.start, found.boot), NOW + timedelta(hours=1))
    assert state.check_lease("galph", ME, NOW) == owner


def test_without_identity_a_live_pid_holds_until_expiry(live: subprocess.Popen[bytes]) -> None:
    owner = f"{HOST}:{live.pid}"  # written by a tandem that knows no lease_identity
    with pytest.raises(LeaseHeld):
        running(owner, None, NOW + timedelta(minutes=5)).check_lease("galph", ME, NOW)
    assert running(owner, None, NOW - timedelta(minutes=5)).check_lease("galph", ME, NOW) == owner


def test_an_identity_left_by_an_older_writer_for_another_owner_is_ignored(
    live: subprocess.Popen[bytes],
) -> None:
    owner = f"{HOST}:{live.pid}"
    left = ident(f"{HOST}:1", 5, "old-boot")  # an older writer replaced lease_owner only
    state = running(owner, left, NOW + timedelta(minutes=5))
    assert state.lease_identity is None
    with pytest.raises(LeaseHeld):  # judged as a lease without identity: live pid, unexpired
        state.check_lease("galph", ME, NOW)


def test_our_own_pid_with_an_earlier_identity_is_recovered_not_mistaken_for_us() -> None:
    assert ME.identity is not None
    owner = str(ME)  # a container restart: same host, same pid, another process
    state = running(owner, ident(owner, ME.identity.start - 1, ME.identity.boot), NOW)
    assert state.check_lease("galph", ME, NOW) == owner
    mine = running(owner, ident(owner, ME.identity.start, ME.identity.boot), NOW)
    assert mine.check_lease("galph", ME, NOW) is None


def test_another_host_is_judged_by_expiry_only() -> None:
    owner = "host-b:42"
    state = running(owner, ident(owner, 7, "boot-b"), NOW + timedelta(minutes=5))
    with pytest.raises(LeaseHeld):
        state.check_lease("galph", ME, NOW)
    assert state.check_lease("galph", ME, NOW + timedelta(minutes=6)) == owner


@pytest.mark.parametrize(
    "owner",
    [f"{HOST}:99999999999999999999999", f"{HOST}:0", f"{HOST}:-5", f"{HOST}:", "nocolon", ":7"],
)
def test_an_owner_that_names_no_process_is_judged_by_expiry(owner: str) -> None:
    state = running(owner, None, NOW + timedelta(minutes=5))
    with pytest.raises(LeaseHeld):
        state.check_lease("galph", ME, NOW)
    assert state.check_lease("galph", ME, NOW + timedelta(minutes=6)) == owner


def test_a_shown_owner_is_escaped_and_capped() -> None:
    owner = "evil\x1b[2J" + "x" * 200 + ":7"
    with pytest.raises(LeaseHeld) as caught:
        running(owner, None, NOW + timedelta(minutes=5)).check_lease("galph", ME, NOW)
    assert "\x1b" not in str(caught.value)
    assert "\\u001b[2J" in str(caught.value)  # the one escape form of tandem.printable
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("identity", "want"),
    [
        ("host:1", "an object with owner, start and boot"),
        ({"owner": "h:1", "start": 1}, "an object with owner, start and boot"),
        (ident("h:1", -1, "b"), "start is a non-negative integer"),
        (ident("h:1", 2**70, "b"), "start is a non-negative integer"),
        (ident("h:1", True, "b"), "start is a non-negative integer"),
        (ident("h:1", 1.5, "b"), "start is a non-negative integer"),
        (ident("h:1", 1, "b\n; rm"), "boot is a boot id"),
        (ident("h:1", 1, "b" * 65), "boot is a boot id"),
        (ident(7, 1, "b"), "owner is a string"),
    ],
)
def test_a_garbage_identity_is_a_state_error_naming_the_field(identity: Any, want: str) -> None:
    with pytest.raises(StateError, match="field 'lease_identity' must be") as caught:
        running("h:1", identity, NOW)
    assert want in str(caught.value)


@pytest.mark.parametrize(
    "expires", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "99999-01-01T00:00:00Z"]
)
def test_an_absurd_expiry_year_is_a_state_error_not_a_crash(expires: str) -> None:
    text = json.dumps(
        {
            "iteration": 1,
            "expected_actor": "galph",
            "status": "running-galph",
            "lease_owner": "h:1",
            "lease_expires_at": expires,
        }
    )
    with pytest.raises(StateError, match="field 'lease_expires_at' must be an ISO 8601"):
        parse(text, "sync/state.json")


def test_the_identity_is_written_with_the_lease_and_cleared_with_it() -> None:
    started = State().begin("galph", ME, NOW, 60)
    data = json.loads(started.dumps())
    assert ME.identity is not None
    assert data["lease_owner"] == str(ME)
    assert data["lease_identity"] == ident(str(ME), ME.identity.start, ME.identity.boot)
    assert list(data).index("lease_identity") == list(data).index("lease_expires_at") + 1
    assert parse(started.dumps(), "s") == started
    done = started.succeed("galph", NOW, "abc")
    assert "lease_identity" not in json.loads(done.dumps())


def test_an_owner_without_identity_writes_no_identity_key() -> None:
    started = State().begin("galph", Owner("host-a", 100), NOW, 60)
    assert "lease_identity" not in json.loads(started.dumps())


# -- through the command line ------------------------------------------------------------
def write_running(root: Path, owner: str, identity: dict[str, Any]) -> None:
    path = root / "sync" / "state.json"
    path.parent.mkdir(exist_ok=True)
    state = {
        "iteration": 2,
        "expected_actor": "galph",
        "status": "running-galph",
        "lease_owner": owner,
        "lease_expires_at": "2999-01-01T00:00:00Z",
        "lease_identity": identity,
    }
    path.write_text(json.dumps(state))


def test_a_restart_whose_old_pid_belongs_to_another_process_takes_over(
    tmp_path: Path, live: subprocess.Popen[bytes]
) -> None:
    host = make_host(tmp_path)
    owner = f"{HOST}:{live.pid}"
    found = identity_of(live.pid)
    write_running(host.root, owner, ident(owner, found.start - 1, found.boot))
    result = tandem(host.root, "run", "--iterations", "1", env=host.env())
    assert result.code == 0, result.err
    assert f"recovering stale turn (owner {owner})" in result.out
    assert host.turns() == [("galph", "supervisor.md"), ("ralph", "main.md")]
    assert live.poll() is None  # the other process was left alone


def test_a_restart_beside_a_live_owner_is_refused(
    tmp_path: Path, live: subprocess.Popen[bytes]
) -> None:
    host = make_host(tmp_path)
    owner = f"{HOST}:{live.pid}"
    found = identity_of(live.pid)
    write_running(host.root, owner, ident(owner, found.start, found.boot))
    result = tandem(host.root, "run", "--iterations", "1", env=host.env())
    assert result.code == 1
    assert result.err.strip().splitlines()[-1] == (
        f"tandem: error: galph's turn at iteration 2 is held by {owner} (lease until "
        "2999-01-01T00:00:00Z); wait for it to finish, or stop that process; an expired "
        "lease is taken over"
    )
    assert host.calls() == []

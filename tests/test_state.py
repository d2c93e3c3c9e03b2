"""The state file: strict parsing, atomic writes, transitions and leases (SPEC §3)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.errors import LeaseHeld, StateError
from tandem.lease import Owner, this_owner
from tandem.state import Failure, State, initial
from tandem.statefile import StateFile, parse
from tandem.times import format_time

NOW = datetime(2026, 1, 20, 3, 29, 29, tzinfo=timezone.utc)
OWNER = Owner("host-a", 100)
ME = this_owner()


def state_text(**fields: object) -> str:
    base: dict[str, object] = {"iteration": 1, "expected_actor": "galph", "status": "idle"}
    base.update(fields)
    return json.dumps(base)


def test_minimal_state_parses_with_defaults() -> None:
    state = parse(state_text(), "s.json")
    assert (state.iteration, state.expected_actor, state.status) == (1, "galph", "idle")
    assert state.lease_owner is None
    assert state.failure is None


def test_unknown_keys_are_kept_in_order_after_known_ones() -> None:
    text = state_text(zeta=1, alpha={"nested": [1, 2]})
    out = json.loads(parse(text, "s.json").dumps())
    assert list(out)[-2:] == ["zeta", "alpha"]
    assert out["alpha"] == {"nested": [1, 2]}


def test_dump_is_two_space_indented_with_fixed_order_and_newline() -> None:
    text = initial(NOW).dumps()
    assert text.endswith("}\n")
    assert text.splitlines()[1] == '  "iteration": 1,'
    assert list(json.loads(text))[:4] == ["iteration", "expected_actor", "status", "last_update"]
    assert json.loads(text)["last_update"] == "2026-01-20T03:29:29Z"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"iteration": 1, "expected_actor": "gal', "is not valid JSON"),
        ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> x\n", "conflict markers"),
        ("[1, 2]", "must hold a JSON object, not an array"),
        (state_text(iteration="3"), "field 'iteration' must be an integer ≥ 1, not \"3\""),
        (state_text(iteration=True), "field 'iteration' must be an integer"),
        (state_text(iteration=0), "field 'iteration' must be an integer ≥ 1, not 0"),
        (state_text(expected_actor="bob"), "field 'expected_actor' must be one of"),
        (state_text(status="done"), "field 'status' must be one of"),
        (state_text(status="waiting-ralph"), "does not go with expected_actor 'galph'"),
        (state_text(lease_expires_at="tomorrow"), "field 'lease_expires_at' must be an ISO"),
        (state_text(exit="yes"), "field 'exit' must be true or false"),
        (state_text(failure="boom"), "field 'failure' must be an object or null"),
        (state_text(failure={"actor": "x"}), "field 'failure.actor' must be one of"),
        ('{"expected_actor": "galph", "status": "idle"}', "field 'iteration' is missing"),
    ],
)
def test_bad_state_is_a_state_error_naming_file_field_and_value(text: str, needle: str) -> None:
    with pytest.raises(StateError) as caught:
        parse(text, "sync/state.json")
    message = str(caught.value)
    assert "sync/state.json" in message
    assert needle in message
    assert "\n" not in message


def test_invalid_utf8_is_a_state_error() -> None:
    with pytest.raises(StateError, match="not UTF-8"):
        parse(b"\xff\xfe{}", "s.json")


@given(st.text(max_size=300))
def test_any_text_gives_a_state_or_a_state_error(text: str) -> None:
    with contextlib.suppress(StateError):
        parse(text, "s.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
state_keys = st.sampled_from(
    [
        "iteration",
        "expected_actor",
        "status",
        "last_update",
        "lease_owner",
        "lease_expires_at",
        "galph_commit",
        "failure",
        "exit",
        "exit_reason",
        "last_prompt_actor",
        "other",
    ]
)


@given(st.dictionaries(state_keys, json_values | st.sampled_from(["galph", "ralph", "idle", 1])))
def test_any_json_object_gives_a_state_or_a_state_error(data: dict[str, object]) -> None:
    try:
        state = parse(json.dumps(data), "s.json")
    except StateError:
        return
    assert parse(state.dumps(), "s.json") == state  # what parses, round-trips


def test_write_is_atomic_0644_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "sync" / "state.json"
    StateFile(path).write(initial(NOW))
    os.chmod(path, 0o600)
    StateFile(path).write(initial(NOW))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]
    assert StateFile(path).read() == initial(NOW)


def test_missing_file_is_an_error_not_a_default(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        StateFile(tmp_path / "state.json").read()


# -- transitions (SPEC §3.3) -------------------------------------------------------------
def test_galph_turn_starts_from_idle_complete_or_failed() -> None:
    for status in ("idle", "complete", "failed"):
        state = State(status=status).begin("galph", OWNER, NOW, 60)
        assert state.status == "running-galph"
        assert state.lease_owner == str(OWNER)
        assert state.lease_expires_at == format_time(NOW + timedelta(seconds=60))


def test_galph_success_hands_the_turn_to_ralph_and_releases_the_lease() -> None:
    running = State().begin("galph", OWNER, NOW, 60)
    done = running.succeed("galph", NOW, "abc123")
    assert (done.expected_actor, done.status, done.iteration) == ("ralph", "waiting-ralph", 1)
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    assert done.galph_commit == "abc123"


def test_galph_failure_keeps_the_turn_with_galph() -> None:
    running = State().begin("galph", OWNER, NOW, 60)
    failure = Failure("galph", 1, "supervisor.md", "exited with 2", "logs/x.log")
    done = running.fail(failure, NOW)
    assert (done.expected_actor, done.status, done.failure) == ("galph", "failed", failure)
    assert done.lease_owner is None


def test_ralph_turn_starts_from_waiting_or_failed() -> None:
    for status in ("waiting-ralph", "failed"):
        state = State(expected_actor="ralph", status=status).begin("ralph", OWNER, NOW, 60)
        assert state.status == "running-ralph"


def test_ralph_success_ends_the_iteration_and_clears_the_failure() -> None:
    failure = Failure("ralph", 4, "main.md", "boom", None)
    state = State(iteration=4, expected_actor="ralph", status="failed", failure=failure)
    done = state.begin("ralph", OWNER, NOW, 60).succeed("ralph", NOW, "def456")
    assert (done.iteration, done.expected_actor, done.status) == (5, "galph", "complete")
    assert done.failure is None
    assert done.ralph_commit == "def456"


def test_ralph_failure_keeps_the_turn_with_ralph() -> None:
    running = State(expected_actor="ralph", status="waiting-ralph").begin("ralph", OWNER, NOW, 60)
    done = running.fail(Failure("ralph", 1, "main.md", "x", None), NOW)
    assert (done.expected_actor, done.status, done.iteration) == ("ralph", "failed", 1)


def test_a_turn_cannot_start_out_of_turn() -> None:
    with pytest.raises(StateError, match="it is galph's turn"):
        State().begin("ralph", OWNER, NOW, 60)


def test_async_role_mode_starts_without_gating() -> None:
    state = State().begin("ralph", OWNER, NOW, 60, gated=False)
    assert (state.expected_actor, state.status) == ("ralph", "running-ralph")


def test_finishing_a_turn_that_is_not_running_is_refused() -> None:
    with pytest.raises(StateError, match="not running"):
        State().succeed("galph", NOW, None)


# -- leases (SPEC §3.4) --------------------------------------------------------------------
def running_state(owner: str, expires: datetime) -> State:
    return State(status="running-galph", lease_owner=owner, lease_expires_at=format_time(expires))


def test_live_lease_of_another_process_is_refused_naming_owner_and_expiry() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = f"{socket.gethostname()}:{sleeper.pid}"
        state = running_state(owner, NOW + timedelta(hours=1))
        with pytest.raises(LeaseHeld) as caught:
            state.check_lease("galph", ME, NOW)
        assert owner in str(caught.value)
        assert "2026-01-20T04:29:29Z" in str(caught.value)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lease_of_another_host_is_refused_until_it_expires() -> None:
    state = running_state("elsewhere:42", NOW + timedelta(minutes=5))
    with pytest.raises(LeaseHeld):
        state.check_lease("galph", ME, NOW)
    assert state.check_lease("galph", ME, NOW + timedelta(minutes=6)) == "elsewhere:42"


def test_lease_of_a_dead_pid_on_this_host_is_taken_over() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = f"{socket.gethostname()}:{dead.pid}"
    state = running_state(owner, NOW + timedelta(hours=1))
    assert state.check_lease("galph", ME, NOW) == owner


def test_no_lease_question_when_the_turn_is_not_running() -> None:
    assert State().check_lease("galph", ME, NOW) is None

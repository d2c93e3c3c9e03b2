"""The renewal ref's content is untrusted (SPEC §3.4.1): garbage is never a renewal."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tandem.renewal import Clocks, Renewal, extended, liveness
from tandem.state import State
from tandem.times import format_time

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
GOOD = {
    "owner": "host-b:41",
    "actor": "ralph",
    "iteration": 3,
    "renewed_at": "2026-12-01T12:00:00Z",
    "expires_at": "2026-12-01T12:15:00Z",
}


def running(expires: str = "2026-12-01T12:05:00Z", owner: str = "host-b:41") -> State:
    return State(
        iteration=3,
        expected_actor="ralph",
        status="running-ralph",
        last_update="2026-12-01T11:50:00Z",
        lease_owner=owner,
        lease_expires_at=expires,
    )


def test_a_renewal_round_trips_and_extends_its_own_lease_only() -> None:
    renewal = Renewal.parse(json.dumps(GOOD).encode())
    assert renewal is not None
    assert Renewal.parse(renewal.to_bytes()) == renewal
    assert extended(running(), renewal).lease_expires_at == "2026-12-01T12:15:00Z"
    assert extended(running(owner="host-c:7"), renewal).lease_expires_at == "2026-12-01T12:05:00Z"
    later = running(expires="2026-12-01T13:00:00Z")
    assert extended(later, renewal) == later  # a renewal never shortens a lease


@pytest.mark.parametrize(
    "change",
    [
        {"owner": 5},
        {"owner": ""},
        {"actor": "mallory"},
        {"iteration": 0},
        {"iteration": True},
        {"iteration": "3"},
        {"renewed_at": "yesterday"},
        {"expires_at": "2026-11-30T12:00:00Z"},  # before its renewal
        {"expires_at": "2027-12-01T12:00:00Z"},  # a year: absurd
        {"expires_at": None},
    ],
)
def test_garbage_is_never_a_renewal(change: dict[str, Any]) -> None:
    assert Renewal.parse(json.dumps({**GOOD, **change}).encode()) is None


@pytest.mark.parametrize("text", [b"", b"\x00\xff", b"[]", b"null", b'{"owner": "x"}', b"{" * 5000])
def test_bytes_that_are_no_object_are_no_renewal(text: bytes) -> None:
    assert Renewal.parse(text) is None


def test_liveness_says_renewed_then_silent_and_never_negative() -> None:
    renewal = Renewal.parse(json.dumps(GOOD).encode())
    fresh = liveness(running(), renewal, NOW + timedelta(seconds=40), 300)
    assert fresh == "ralph on host-b, renewed 40s ago, lease until 2026-12-01T12:15:00Z"
    silent = liveness(running(), renewal, NOW + timedelta(minutes=22), 300)
    assert silent == (
        "owner silent for 22m00s (ralph on host-b), lease expired at 2026-12-01T12:15:00Z"
    )
    behind = liveness(running(), renewal, NOW - timedelta(minutes=10), 300)
    assert behind is not None
    assert "renewed 0.0s ago" in behind  # a clock behind the owner's: clamped, not negative


def test_clocks_warn_once_and_judge_on_the_owners_clock() -> None:
    warned: list[str] = []
    clocks = Clocks(warned.append)
    clocks.saw(NOW - timedelta(minutes=10), NOW)
    clocks.saw(NOW - timedelta(minutes=10, seconds=1), NOW)
    assert len(warned) == 1
    assert "10m00s behind this one's" in warned[0]
    assert format_time(clocks.theirs(NOW)) == "2026-12-01T11:49:59Z"
    quiet: list[str] = []
    Clocks(quiet.append).saw(NOW + timedelta(seconds=30), NOW)
    assert quiet == []

"""Lease renewal through the remote, and the owner's liveness as others see it (SPEC §3.4.1).

Where. The owner of a running turn renews its lease every ``sync.lease_renew_secs`` by
pointing ``refs/tandem/lease/<branch>`` on the remote at a new root commit holding one
file, ``lease.json`` (owner, actor, iteration, renewed_at, expires_at). No commit lands
on the branch per renewal, and only the owner writes that ref (a forced push of tandem's
own ref, never of a branch).

How, beside a working agent. The renewer is a daemon thread that uses plumbing only:
``hash-object -w``, ``mktree`` and ``commit-tree`` write objects (git allows that beside
any other git process), and ``push +<sha>:refs/tandem/lease/<branch>`` updates no local
ref. It never touches the work tree, the index or HEAD, so the agent's own git commands
and tandem's finish commit cannot meet it. A renewal that cannot reach the remote is part
of the run's ``Outage`` (SPEC §8.7): its heartbeat, and its offline clock, which the finish
push and the next steps share, so ``sync.max_offline_secs`` counts from the first failed
renewal. The agent's turn always goes on (its work is never dropped): once the remote has
been away too long the renewer says so, and the finish push ends the run with the usual
line, the turn stamped locally for the next start to publish. The sync turn starts it right after
the claim push and stops it before the finish push (``sync._SyncMode``), so a turn that
pauses inside that window (SPEC §14.2) keeps renewing; a wait outside it gets its own
with ``Session.renewer(state)`` and calls ``start()`` and ``stop()`` around it, or
``renew()`` once per pass of its own loop.

Reading. The ref's content comes from another machine: garbage (not JSON, wrong fields,
absurd times) is never trusted and never a crash; a renewal counts only for the state's
own owner, actor and iteration. Times in it are the owner's clock: ``Clocks`` estimates
the difference from renewals and claim commits seen as they appear, warns once over a
minute, and judges expiry on the owner's clock, so a standby whose clock runs ahead does
not take over a live owner early; durations shown are never negative.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tandem.errors import GitError, RemoteUnreachable
from tandem.git import Repo
from tandem.logs import Logbook
from tandem.outage import Outage
from tandem.state import ACTORS, Actor, State
from tandem.times import format_time, human_duration, parse_time

SKEW_WARN_SECS = 60.0
_OVERDUE = 1.5  # a renewal this many intervals old is overdue: the owner is silent
_MAX_LEASE = timedelta(days=31)  # a renewal further ahead than this is garbage


def lease_ref(branch: str) -> str:
    """The remote ref the owner of ``branch``'s turn renews."""
    return f"refs/tandem/lease/{branch}"


def seen_ref(branch: str) -> str:
    """Where this clone keeps the last renewal it fetched."""
    return f"refs/tandem/seen-lease/{branch}"


@dataclass(frozen=True)
class Renewal:
    """One renewal: ``owner`` still runs ``actor``'s turn ``iteration``."""

    owner: str
    actor: Actor
    iteration: int
    renewed_at: datetime
    expires_at: datetime

    def to_bytes(self) -> bytes:
        """``lease.json``."""
        data = {
            "owner": self.owner,
            "actor": self.actor,
            "iteration": self.iteration,
            "renewed_at": format_time(self.renewed_at),
            "expires_at": format_time(self.expires_at),
        }
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def parse(cls, text: bytes) -> Renewal | None:
        """The renewal in ``text``; None for anything else (it came from the network)."""
        try:
            data: Any = json.loads(text)
            owner, actor, iteration = data["owner"], data["actor"], data["iteration"]
            renewed, expires = parse_time(data["renewed_at"]), parse_time(data["expires_at"])
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None
        if not isinstance(owner, str) or not 0 < len(owner) <= 300 or actor not in ACTORS:
            return None
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 1:
            return None
        if not renewed <= expires <= renewed + _MAX_LEASE:
            return None
        return cls(owner, actor, iteration, renewed, expires)

    def applies_to(self, state: State) -> bool:
        """True if this renews ``state``'s lease (same owner, actor and turn)."""
        return (
            state.status == f"running-{self.actor}"
            and state.lease_owner == self.owner
            and state.iteration == self.iteration
        )


def extended(state: State, renewal: Renewal | None) -> State:
    """``state`` with its lease as the latest renewal of its own owner left it."""
    if renewal is None or not renewal.applies_to(state) or state.lease_expires_at is None:
        return state
    try:
        if parse_time(state.lease_expires_at) >= renewal.expires_at:
            return state
    except ValueError:
        return state
    return dataclasses.replace(state, lease_expires_at=format_time(renewal.expires_at))


class Renewer:
    """The owner's side: a daemon thread renewing ``state``'s lease until stopped."""

    def __init__(
        self,
        repo: Repo,
        remote: str,
        branch: str,
        state: State,
        log: Logbook,
        clock: Callable[[], datetime],
        lease_secs: float,
        every: float,
        outage: Outage | None = None,
    ) -> None:
        self._push = (repo, remote, lease_ref(branch))
        self._state, self._log, self._clock = state, log, clock
        self._lease, self._every = lease_secs, every
        self._outage = outage
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tandem-renewal", daemon=True)
        self._failing: datetime | None = None  # since when renewals fail
        self._gave_up = False  # the outage outlasted sync.max_offline_secs (said once)

    def renew(self) -> bool:
        """One renewal now; False if the remote could not take it (it is tried again)."""
        state, now = self._state, self._clock()
        assert state.lease_owner is not None, "a running turn has an owner"
        actor: Actor = state.expected_actor  # the owner's actor, running or paused
        renewal = Renewal(
            state.lease_owner,
            actor,
            state.iteration,
            now,
            now + timedelta(seconds=self._lease),
        )
        repo, remote, ref = self._push
        try:
            sha = repo.record("lease.json", renewal.to_bytes(), f"tandem lease {renewal.owner}")
            repo.push_own_ref(remote, sha, ref)
        except RemoteUnreachable as exc:
            self._log.event("renewal_failed", reason=exc.what)
            if self._outage is None:
                return self._failed(exc, now)
            self._down(exc)
            return False
        except GitError as exc:
            self._log.event("renewal_failed", reason=exc.what)
            return self._failed(exc, now)
        if self._outage is not None:
            self._outage.up()
        self._ended_failing()
        self._log.event("renewal", expires=format_time(renewal.expires_at))
        return True

    def _down(self, exc: RemoteUnreachable) -> None:
        """The remote is away: the run's outage heartbeat; past its limit, one line that
        says the turn goes on and where the run will end."""
        assert self._outage is not None
        try:
            self._outage.down("renewal", exc)
        except RemoteUnreachable:
            if not self._gave_up:
                self._gave_up = True
                self._log.console.warn(
                    f"remote unreachable since {self._outage.since} ({exc.what}), longer than "
                    "sync.max_offline_secs; the agent's turn goes on, and the run ends after "
                    "it (the turn is stamped here, the next start publishes it)"
                )

    def _failed(self, exc: GitError, now: datetime) -> bool:
        """A renewal the remote refused (or, without an outage, could not take)."""
        if self._failing is None:
            self._failing = now
            self._log.console.warn(
                f"lease renewal failed ({exc.what}); the turn goes on, renewing again "
                f"every {human_duration(self._every)}"
            )
        return False

    def _ended_failing(self) -> None:
        if self._failing is not None:
            self._log.console.say(
                f"lease renewed again (failing since {format_time(self._failing)})"
            )
            self._failing = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.renew()

    def start(self) -> None:
        """Begin renewing (the first renewal after one interval: the claim set the lease)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing; returns once no renewal is under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class Clocks:
    """How far the owner's clock is from ours, seen from times as they appear remotely."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.offset = timedelta(0)  # their clock minus ours
        self._warn = warn
        self._warned = False

    def saw(self, their_time: datetime, now: datetime) -> None:
        """``their_time`` was written just now (a fresh renewal or claim commit)."""
        self.offset = their_time - now
        secs = self.offset.total_seconds()
        if abs(secs) > SKEW_WARN_SECS and not self._warned:
            self._warned = True
            way = "ahead of" if secs > 0 else "behind"
            self._warn(
                f"the other machine's clock is {human_duration(abs(secs))} {way} this one's; "
                "tandem judges leases on the remote's times (fix the clocks with NTP)"
            )

    def theirs(self, now: datetime) -> datetime:
        """Now, on the other machine's clock."""
        return now + self.offset


def ago(then: datetime, now: datetime) -> str:
    """``40s`` since ``then``, never negative (clocks may disagree)."""
    return human_duration(max(0.0, (now - then).total_seconds()))


def liveness(state: State, renewal: Renewal | None, now: datetime, every: float) -> str | None:
    """ "ralph on host-b, renewed 40s ago, lease until …" while renewals come every
    ``every`` seconds; "owner silent for 22m00s, lease expired at …" once one is overdue
    (half an interval late). ``now`` on the owner's clock; None when no turn runs."""
    if not state.status.startswith("running-") or state.lease_owner is None:
        return None
    actor = state.status.removeprefix("running-")
    host = state.lease_owner.rpartition(":")[0] or state.lease_owner
    mine = renewal is not None and renewal.applies_to(state)
    last = renewal.renewed_at if mine and renewal is not None else _claimed_at(state)
    expires = extended(state, renewal).lease_expires_at
    if last is None:
        return f"{actor} on {host}, lease until {expires or 'never'}"
    if (now - last).total_seconds() <= every * _OVERDUE:
        return f"{actor} on {host}, {'renewed' if mine else 'claimed'} {ago(last, now)} ago, " + (
            f"lease until {expires}"
        )
    expired = expires is not None and parse_time(expires) <= now
    lapse = f"lease expired at {expires}" if expired else f"lease expires at {expires}"
    return f"owner silent for {ago(last, now)} ({actor} on {host}), {lapse}"


def _claimed_at(state: State) -> datetime | None:
    try:
        return parse_time(state.last_update) if state.last_update else None
    except ValueError:
        return None

"""Waiting for an actor's turn through the remote (SPEC §8.2.4).

The wait polls cheaply (``git ls-remote`` of the branch; a fetch only when it moved),
backing off from 0.2 s to ``--poll-interval``, and keeps the stop check: a stop request
that arrives while waiting, locally or from any clone, ends the wait cleanly.

The same poll reads the lease renewal ref (``renewal.py``), so the wait shows the owner's
liveness ("ralph on host-b, renewed 40s ago" / "owner silent for 22m00s, lease expired
at …"), and a standby of the same actor waits behind a live owner and takes the turn over
once its lease lapsed. Expiry is judged on the owner's clock as the renewals and claim
commits show it, and only after the wait has seen one appear or watched long enough to
(two renewal intervals and a poll), so a clock ahead never takes a live turn early. An
unreachable remote is the run's ``Outage``: a heartbeat, never the end of the wait
(unless ``sync.max_offline_secs``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from tandem.autocommit import Selection
from tandem.errors import LeaseHeld, RemoteUnreachable, TandemError
from tandem.interrupts import Interrupt
from tandem.lease import Owner
from tandem.limits import peer_line
from tandem.renewal import Clocks, Renewal, extended, lease_ref, liveness, seen_ref
from tandem.session import Session
from tandem.state import Actor, State, other
from tandem.subjects import INIT_SUBJECT
from tandem.times import human_duration
from tandem.turns import commit_turn, honour_pending_stop

_FIRST_POLL = 0.2
_BACKOFF = 1.5


class Waiter:
    """Waits for ``actor``'s turn, polling the remote with back-off."""

    def __init__(
        self, session: Session, actor: Actor, interrupt: Interrupt, wait_on_peer_failure: bool
    ) -> None:
        self.session = session
        self.host = session.host
        self.actor = actor
        self.interrupt = interrupt
        self.wait_on_peer_failure = wait_on_peer_failure
        self.clocks = Clocks(self.host.console.warn)
        self.renewal: Renewal | None = None
        self._refs = (f"refs/heads/{session.remote.branch}", lease_ref(session.remote.branch))
        self._watching = time.monotonic()
        self._observed = False  # a renewal or claim seen as it appeared (clocks.offset known)
        self._hinted = False  # said how to give up on waiting behind another run's lease

    def lease_now(self) -> datetime:
        """Now on the lease owner's clock, as far as the wait could tell."""
        return self.clocks.theirs(self.host.clock())

    def wait(self) -> State | None:
        """The state once it is our turn; None if a stop request ended the wait."""
        host = self.host
        started = last_beat = self._watching = time.monotonic()
        interval = _FIRST_POLL
        known = (self.session.repo.rev_parse(self.session.remote.ref), self._first_renewal())
        announced = False
        shown_pause: object = None
        while True:
            if honour_pending_stop(host, self.actor, self.session.publish):
                return None
            state = self._current()
            if state is not None and self._ours(state):
                if announced:
                    waited = round(time.monotonic() - started, 3)
                    host.log.event(
                        "wait_end", actor=self.actor, iteration=state.iteration, waited_secs=waited
                    )
                return state
            if not announced:
                announced = True
                host.console.say(self._describe(state))
                host.log.event(
                    "wait_start", actor=self.actor, iteration=state.iteration if state else None
                )
            self._hint_once(state)
            if state is not None and state.status == "paused" and state.pause != shown_pause:
                shown_pause = state.pause  # the peer waits out a limit: say so, keep waiting
                host.console.say(self._describe(state))
            now = time.monotonic()
            self._check_limits(now - started)
            if now - last_beat >= host.config.agent.heartbeat_secs > 0:
                last_beat = now
                host.console.say(f"{self._describe(state)}, {human_duration(now - started)} so far")
            if self.interrupt.sleep(interval):
                self.interrupt.check()
            interval = min(interval * _BACKOFF, host.config.sync.poll_interval)
            moved = self._poll(known)
            if moved is not None:
                interval = _FIRST_POLL if moved[0] != known[0] else interval
                known = moved  # a moved branch: the peer is active, the handoff is near

    def _current(self) -> State | None:
        """The state in the work tree; galph creates a missing one, ralph waits for it."""
        if self.host.state_file.exists():
            return self.host.read_state()
        if self.actor == "ralph":
            return None
        created = self.host.read_state(create=True)
        commit_turn(self.host, created, Selection(), INIT_SUBJECT, None)
        if self.session.publish("the new state file"):
            return self.host.read_state()  # another galph's reached the remote first
        return created

    def _ours(self, state: State) -> bool:
        if state.expected_actor != self.actor:
            self._check_peer(state)
            return False
        # our turn; a live lease of another process of our actor: wait behind it
        state = extended(state, self.renewal)
        try:
            stale = state.check_lease(self.actor, self.host.owner, self.lease_now())
        except LeaseHeld:
            return False
        return stale is None or self._watched_enough(state)

    def _watched_enough(self, state: State) -> bool:
        """An expired lease of another host is taken over only once the wait could have
        seen its owner renew (clocks may differ; a renewal shows how much)."""
        holder = Owner.parse(state.lease_owner or "")
        if holder is not None and holder.host == self.host.owner.host:
            return True  # this host's own process table decided
        sync = self.host.config.sync
        watched = time.monotonic() - self._watching
        return self._observed or watched >= 2 * sync.renew_secs + sync.poll_interval

    def _check_peer(self, state: State) -> None:
        peer = other(self.actor)
        if state.status != "failed" or self.wait_on_peer_failure or state.failure is None:
            return
        raise TandemError(
            f"{peer} failed at iteration {state.failure.iteration}: {state.failure.reason}",
            f"fix it there and restart {peer} (or pass --wait-on-peer-failure)",
        )

    def _check_limits(self, waited: float) -> None:
        limit = self.host.config.sync.max_wait_sec
        if limit and waited >= limit:
            raise TandemError(
                f"gave up waiting for {self.actor}'s turn after {human_duration(waited)} "
                "(--max-wait-sec)",
                f"check that {other(self.actor)} is running, then restart",
            )

    def _poll(self, known: tuple[str | None, str | None]) -> tuple[str | None, str | None] | None:
        """One cheap look at the branch and the renewal ref; fetch only what moved."""
        session = self.session
        try:
            found = session.repo.ls_remote_refs(session.remote.name, self._refs)
            sha, renewed = found.get(self._refs[0]), found.get(self._refs[1])
            if renewed is not None and renewed != known[1]:
                self._read_renewal(fresh=True)
            if sha is not None and sha != known[0]:
                session.catch_up()
                self._saw_commit(sha)
        except RemoteUnreachable as exc:
            session.outage.down("wait", exc)
            return None
        session.outage.up()
        return None if (sha, renewed) == known else (sha or known[0], renewed)

    def _first_renewal(self) -> str | None:
        """The renewal the remote holds as the wait begins (its age is not yet known)."""
        try:
            self._read_renewal(fresh=False)
        except RemoteUnreachable as exc:
            self.session.outage.down("wait", exc)
        return self.session.repo.rev_parse(seen_ref(self.session.remote.branch))

    def _read_renewal(self, *, fresh: bool) -> None:
        self.renewal = self.session.renewal()
        if self.renewal is not None and fresh:
            self._observed = True
            self.clocks.saw(self.renewal.renewed_at, self.host.clock())

    def _saw_commit(self, sha: str) -> None:
        """A claim that just appeared carries its owner's clock in its commit time."""
        state = self.host.read_state() if self.host.state_file.exists() else None
        if state is None or not state.status.startswith("running-"):
            return
        stamp = self.session.repo.git("log", "-1", "--format=%ct", sha, check=False).text.strip()
        if stamp.isdigit():
            self._observed = True
            self.clocks.saw(datetime.fromtimestamp(int(stamp), timezone.utc), self.host.clock())

    def _behind(self, state: State | None) -> bool:
        """True if another run of our own actor holds the turn (this one waits behind it)."""
        mine = f"running-{self.actor}"
        return state is not None and state.status == mine and state.lease_owner is not None

    def _hint_once(self, state: State | None) -> None:
        """Behind another run's lease: say once how to give up, and the manual release."""
        if self._hinted or not self._behind(state):
            return
        self._hinted = True
        self.host.console.say(
            "  this run takes the turn over once that one is gone or its lease expires; "
            "to give up: Ctrl-C, or --max-wait-sec SECS; if that run's machine is dead: "
            f"tandem stamp {self.actor} fail --force --sync-via-git --reason '…'"
        )

    def _describe(self, state: State | None) -> str:
        if state is None:
            return f"waiting for {self.session.remote.shown} to get a state file (galph creates it)"
        if state.status == "paused" and state.pause is not None:
            pause = state.pause
            line = peer_line(
                state.expected_actor, pause.kind, pause.until, time.time(), pause.window
            )
            return f"waiting for {self.actor}'s turn: {line}"
        every = self.host.config.sync.renew_secs
        alive = liveness(state, self.renewal, self.lease_now(), every)
        if self._behind(state):
            return (
                f"waiting behind the lease of {state.lease_owner} on {self.actor}'s turn "
                f"{state.iteration} (another {self.actor} run; {alive})"
            )
        holder = f"; {alive}" if alive else ""
        return (
            f"waiting for {self.actor}'s turn: iteration {state.iteration}, "
            f"{state.expected_actor}'s turn ({state.status}{holder})"
        )


def follow(session: Session, known: str | None) -> str | None:
    """One ``ls-remote`` of the branch, and a catch-up (fetch, fast-forward) only when it
    moved from ``known`` (at first: what the last fetch brought); the tip now known. An
    unreachable remote is an outage to report, not an error: the caller looks again."""
    ref = f"refs/heads/{session.remote.branch}"
    if known is None:
        known = session.repo.rev_parse(session.remote.ref)
    try:
        sha = session.repo.ls_remote_refs(session.remote.name, [ref]).get(ref)
        if sha is not None and sha != known:
            session.catch_up()
            known = sha
    except RemoteUnreachable as exc:
        session.outage.down("pause", exc)
        return known
    session.outage.up()
    return known

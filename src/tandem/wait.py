"""Waiting for an actor's turn through the remote (SPEC §8.2.4).

The wait polls cheaply (``git ls-remote`` of the branch; a fetch only when it moved),
backing off from 0.2 s to ``--poll-interval``, and keeps the stop check: a stop request
that arrives while waiting, locally or from any clone, ends the wait cleanly.
"""

from __future__ import annotations

import time

from tandem.autocommit import Selection
from tandem.errors import RemoteUnreachable, TandemError
from tandem.interrupts import Interrupt
from tandem.limits import peer_line
from tandem.logs import human_duration
from tandem.session import Session
from tandem.state import Actor, State, other
from tandem.turns import INIT_SUBJECT, commit_turn, honour_pending_stop

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

    def wait(self) -> State | None:
        """The state once it is our turn; None if a stop request ended the wait."""
        host = self.host
        started = last_beat = time.monotonic()
        interval = _FIRST_POLL
        known = self.session.repo.rev_parse(self.session.remote.ref)
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
                known = moved
                interval = _FIRST_POLL  # the peer is active: the handoff is near

    def _current(self) -> State | None:
        """The state in the work tree; galph creates a missing one, ralph waits for it."""
        if self.host.state_file.exists():
            return self.host.read_state()
        if self.actor == "ralph":
            return None
        created = self.host.read_state(create=True)
        commit_turn(self.host, created, Selection(), INIT_SUBJECT, None)
        self.session.publish("the new state file")
        return created

    def _ours(self, state: State) -> bool:
        if state.expected_actor != self.actor:
            self._check_peer(state)
            return False
        # our turn; a live lease of another process of our actor raises LeaseHeld
        state.check_lease(self.actor, self.host.owner, self.host.clock())
        return True

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

    def _poll(self, known: str | None) -> str | None:
        """One cheap look at the remote; fetch and catch up only if it moved."""
        remote = self.session.remote
        try:
            sha = self.session.repo.ls_remote(remote.name, remote.branch)
        except RemoteUnreachable as exc:
            self.host.console.warn(f"{exc.what}; still waiting")
            return None
        if sha is None or sha == known:
            return None
        self.session.catch_up()
        return sha

    def _describe(self, state: State | None) -> str:
        if state is None:
            return f"waiting for {self.session.remote.shown} to get a state file (galph creates it)"
        if state.status == "paused" and state.pause is not None:
            line = peer_line(state.expected_actor, state.pause.kind, state.pause.until, time.time())
            return f"waiting for {self.actor}'s turn: {line}"
        holder = f", lease {state.lease_owner}" if state.lease_owner else ""
        return (
            f"waiting for {self.actor}'s turn: iteration {state.iteration}, "
            f"{state.expected_actor}'s turn ({state.status}{holder})"
        )

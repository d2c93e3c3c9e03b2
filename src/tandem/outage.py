"""Riding out a remote that comes and goes (SPEC §8.7).

Every remote step of a sync run (sync, publish, claim, the finish push, the wait's polls)
goes through one ``Outage``: an unreachable remote (``RemoteUnreachable``: a timeout, a
reset, a refused connection, a name that does not resolve) is retried with back-off, from
1 s up to ``--poll-interval`` and then once per poll, with a heartbeat that says since
when and why, until the remote answers or ``sync.max_offline_secs`` runs out. A remote
that answers and refuses (``RemoteRefused``, a rejected push) is not an outage and passes
through at once. The outage is one per run, so a cut that spans several steps is one
outage with one "since". The lease renewer reports to it from its own thread while the
agent runs (``renewal.Renewer``), so an outage that began at a renewal goes on, with the
same "since", at the finish push.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tandem.errors import RemoteUnreachable
from tandem.host import Host
from tandem.interrupts import Interrupt
from tandem.times import human_duration

T = TypeVar("T")
_FIRST_RETRY = 1.0


class Outage:
    """The run's view of the remote's reachability."""

    def __init__(self, host: Host, interrupt: Interrupt | None = None) -> None:
        self.host = host
        self.interrupt = interrupt
        self._since: float | None = None  # monotonic start of the current outage
        self._since_shown = ""
        self._last_beat = 0.0
        self._lock = threading.Lock()  # the renewer's thread reports here too

    @property
    def down_for(self) -> float | None:
        """Seconds the remote has been unreachable; None while it answers."""
        return None if self._since is None else time.monotonic() - self._since

    @property
    def since(self) -> str:
        """When the current outage began, on this machine's clock (``12:01:07``)."""
        return self._since_shown

    def ride(self, step: str, call: Callable[[], T]) -> T:
        """``call()``, retried while the remote is unreachable."""
        delay = _FIRST_RETRY
        while True:
            try:
                result = call()
            except RemoteUnreachable as exc:
                self.down(step, exc)
                self._sleep(delay)
                delay = min(delay * 2, max(self.host.config.sync.poll_interval, _FIRST_RETRY))
                continue
            self.up()
            return result

    def down(self, step: str, exc: RemoteUnreachable) -> None:
        """One failed attempt: the heartbeat when due, the end when offline too long."""
        with self._lock:
            self._down(step, exc)

    def _down(self, step: str, exc: RemoteUnreachable) -> None:
        now = time.monotonic()
        if self._since is None:
            self._since, self._last_beat = now, 0.0
            self._since_shown = self.host.clock().strftime("%H:%M:%S")
            self.host.log.event("remote_down", step=step, reason=exc.what)
        limit = self.host.config.sync.max_offline_secs
        if limit and now - self._since >= limit:
            self.host.log.event("remote_gave_up", step=step, reason=exc.what)
            raise RemoteUnreachable(
                f"remote unreachable since {self._since_shown} ({human_duration(now - self._since)}"
                f", at the {step}): {exc.what}; gave up after sync.max_offline_secs",
                "check the network, then rerun (nothing is lost: the next start goes on); "
                "raise sync.max_offline_secs, or set it to 0 to wait forever",
            ) from exc
        beat = self.host.config.agent.heartbeat_secs
        if self._last_beat == 0.0 or (beat > 0 and now - self._last_beat >= beat):
            self._last_beat = now
            self.host.console.warn(
                f"remote unreachable since {self._since_shown} ({exc.what}); retrying ({step})"
            )

    def up(self) -> None:
        """The remote answered: an outage in progress is over."""
        with self._lock:
            if self._since is None:
                return
            gone = time.monotonic() - self._since
            self._since = None
        self.host.console.say(f"remote reachable again after {human_duration(gone)}")
        self.host.log.event("remote_up", down_secs=round(gone, 3))

    def _sleep(self, seconds: float) -> None:
        if self.interrupt is None:
            time.sleep(seconds)
        elif self.interrupt.sleep(seconds):
            self.interrupt.check()

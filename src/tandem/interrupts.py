"""SIGINT and SIGTERM become a flag that the long waits of a run look at.

A signal never raises in the middle of a git command or a state write: the handler only
records the signal and wakes the loop that is waiting (the agent stream, the turn wait)
through a pipe, and that loop ends the turn at a safe point (SPEC §6.4).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator
from types import FrameType

from tandem.errors import Interrupted

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """A flag set by SIGINT/SIGTERM, with a file descriptor that becomes readable then."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)

    @property
    def fired(self) -> bool:
        """True once a signal arrived."""
        return self.signum is not None

    def fileno(self) -> int:
        """The read end of the wake-up pipe, for ``select``."""
        return self._read_fd

    def trigger(self, signum: int = signal.SIGINT) -> None:
        """Record a signal (called by the handler, or by code that wants to stop the run)."""
        self.signum = signum
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\0")

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal arrived."""
        if self.fired:
            raise Interrupted(self.describe())

    def describe(self) -> str:
        """The signal's name, for messages."""
        return signal.Signals(self.signum).name if self.signum else "interrupt"

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True (early) if a signal arrived."""
        if not self.fired and seconds > 0:
            select.select([self._read_fd], [], [], seconds)
        return self.fired

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupt]:
        """Route SIGINT/SIGTERM to this flag while the block runs, then restore."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.trigger(signum)

        previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def close(self) -> None:
        """Close the wake-up pipe."""
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

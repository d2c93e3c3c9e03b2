"""Who holds a turn's lease, and whether that holder is still there (SPEC §3.4, §3.4.1).

Stored form. ``lease_owner`` stays ``"<host>:<pid>"``, as every reader of the state file
knows it. Beside it, the optional ``lease_identity`` says which process that was:
``{"owner": "<host>:<pid>", "start": <clock ticks after boot>, "boot": "<boot id>"}``.
It repeats the owner so that an identity left behind by a writer that does not know the
key (it keeps unknown keys as they are, SPEC §3.1, while it rewrites ``lease_owner``) is
recognised as someone else's and ignored. Without a matching identity (an older writer,
or a system that cannot tell) the lease is judged as before: a dead pid on this host, or
expiry.

Judgement. On the owner's own host, liveness decides, not expiry: a live owner (same pid,
same start, same boot) is never taken over, a dead one at once, even before its lease
expires; a process that only has the owner's pid is not the owner. Elsewhere, or when
the owner cannot be read (``host:pid`` malformed, a pid no system has), expiry decides.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tandem import proc

Verdict = Literal["mine", "stale", "held"]
_MAX_PID = 2**31 - 1  # pid_t; larger "pids" are garbage, never passed to the kernel
_BOOT = re.compile(r"[0-9A-Za-z-]{1,64}")
_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Identity:
    """What tells a process apart from a later one with the same pid.

    ``start`` is when it started, in clock ticks after boot (``/proc/<pid>/stat``), and
    ``boot`` names the boot (``/proc/sys/kernel/random/boot_id``): a reused pid has another
    start, a reboot another boot.
    """

    start: int
    boot: str


def identity(pid: int) -> Identity | None:
    """The identity of live process ``pid``; None if it is gone or cannot be told."""
    if not 0 < pid <= _MAX_PID or not proc.pid_alive(pid):
        return None
    boot = boot_id()
    if not _PROC:
        return _identity_psutil(pid, boot)
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count after the last ")"
    fields = stat[stat.rfind(b")") + 2 :].split()
    if boot is None or len(fields) < 20 or not fields[19].isdigit():
        return None
    return Identity(int(fields[19]), boot)


def _identity_psutil(pid: int, boot: str | None) -> Identity | None:
    import psutil

    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        return None
    return Identity(int(started * 100), boot or f"booted-{int(psutil.boot_time())}")


def boot_id() -> str | None:
    """This boot's id (changes on every reboot); None where the system does not say."""
    try:
        text = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return text or None


@dataclass(frozen=True)
class Owner:
    """A lease holder: ``host:pid`` and, where known, the process's identity."""

    host: str
    pid: int
    identity: Identity | None = None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def parse(cls, text: str, identity: Identity | None = None) -> Owner | None:
        """``host:pid`` as stored in ``lease_owner``; None when it names no process."""
        host, _, pid = text.rpartition(":")
        if not host or not pid.isdigit() or len(pid) > 10 or not 0 < int(pid) <= _MAX_PID:
            return None
        return cls(host, int(pid), identity)

    def liveness(self) -> bool | None:
        """On this host: True if the owner runs, False if it is gone, None if unknown.

        Unknown when there is no identity to compare (an older writer) or the live pid's
        identity cannot be read (another user's process under ``hidepid``).
        """
        if not proc.pid_alive(self.pid):
            return False
        if self.identity is None:
            return None
        now = identity(self.pid)
        return None if now is None else now == self.identity


def this_owner() -> Owner:
    """The owner this process writes into a lease."""
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, identity(pid))


def judge(holder: Owner | None, me: Owner, expired: bool) -> Verdict:
    """``mine`` (this process holds it), ``stale`` (take it over) or ``held``."""
    if holder is None:  # unreadable owner: only expiry can tell
        return "stale" if expired else "held"
    if str(holder) == str(me):
        # our host:pid; another identity means an earlier process had our pid
        mine = holder.identity is None or me.identity is None or holder.identity == me.identity
        return "mine" if mine else "stale"
    if holder.host == me.host:
        alive = holder.liveness()
        if alive is not None:
            return "held" if alive else "stale"
    return "stale" if expired else "held"


def identity_to_json(owner: str, identity: Identity) -> dict[str, Any]:
    """The ``lease_identity`` object of the lease held by ``owner``."""
    return {"owner": owner, "start": identity.start, "boot": identity.boot}


def identity_from_json(value: Any, owner: str | None) -> Identity | None:
    """The identity stored for ``owner``; None if it belongs to another owner or is absent.

    ValueError says what a malformed value should be.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"owner", "start", "boot"}:
        raise ValueError("an object with owner, start and boot")
    start, boot = value["start"], value["boot"]
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < 2**63:
        raise ValueError("an object whose start is a non-negative integer")
    if not isinstance(boot, str) or not _BOOT.fullmatch(boot):
        raise ValueError("an object whose boot is a boot id (letters, digits, dashes)")
    if not isinstance(value["owner"], str):
        raise ValueError("an object whose owner is a string")
    return Identity(start, boot) if value["owner"] == owner else None

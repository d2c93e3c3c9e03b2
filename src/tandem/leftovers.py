"""Processes of an earlier turn still running in this work tree (SPEC §13.1 rule 2).

Every process of a turn carries ``TANDEM_TURN_ID`` (unique per turn) and ``TANDEM_ROOT``
(the work tree) in its environment, and children inherit both, including a tool that
daemonized itself into its own session. When tandem dies by SIGKILL, an agent that
ignores SIGTERM or such a tool can live on; the next start finds them by those marks in
``/proc/<pid>/environ`` and ends them (TERM, grace, KILL) before its own agent starts, so
two agents never work in one tree. Where there is no ``/proc`` nothing is found.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from tandem.proc import pid_alive

TURN_ID = "TANDEM_TURN_ID"
ROOT = "TANDEM_ROOT"
_PROC = Path("/proc")
_POLL = 0.05
_MARK = f"{TURN_ID}=".encode()  # a quick filter; _marks reads the entries exactly
_KILL_WAIT = 5.0  # SIGKILL cannot be ignored; this only covers the kernel's teardown


def turn_marks(resolved_root: Path, turn_id: str) -> dict[str, str]:
    """The environment entries that mark a process as part of ``turn_id`` in the work tree
    ``resolved_root`` (symlinks resolved by the caller, once per run, as ``earlier_turns``
    resolves the root it looks for)."""
    return {TURN_ID: turn_id, ROOT: str(resolved_root)}


def end_earlier_turns(root: Path, turn_id: str | None, grace: float) -> list[str]:
    """End live processes of any other turn of ``root``; one line per turn ended, saying so.

    ``turn_id`` is the current turn's (its processes are spared); None spares none, as at
    the start of a run. tandem's own ancestors are always spared.
    """
    found = earlier_turns(root, turn_id)
    if not found:
        return []
    everyone = {pid for pids in found.values() for pid in pids}
    _signal(everyone, signal.SIGTERM)
    deadline = time.monotonic() + max(grace, 0.0)
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in everyone):
        time.sleep(_POLL)
    stubborn = {pid for pid in everyone if pid_alive(pid)}
    _signal(stubborn, signal.SIGKILL)
    deadline = time.monotonic() + _KILL_WAIT
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in stubborn):
        time.sleep(_POLL)
    return [_said(other, sorted(pids), stubborn) for other, pids in sorted(found.items())]


def earlier_turns(root: Path, turn_id: str | None) -> dict[str, set[int]]:
    """Live processes marked with ``root`` and another turn id, by turn id."""
    wanted = str(root.resolve()).encode()
    spared = _ancestors()
    found: dict[str, set[int]] = {}
    for pid, environ in _environments():
        if pid in spared:
            continue
        marks = _marks(environ)
        other = marks.get(TURN_ID.encode())
        if marks.get(ROOT.encode()) != wanted or not other or other == (turn_id or "").encode():
            continue
        if pid_alive(pid):
            found.setdefault(other.decode(errors="replace"), set()).add(pid)
    return found


def _said(turn: str, pids: list[int], stubborn: set[int]) -> str:
    killed = [pid for pid in pids if pid in stubborn]
    how = f" ({len(killed)} ignored SIGTERM and got SIGKILL)" if killed else ""
    shown = ", ".join(str(pid) for pid in pids[:10]) + (" ..." if len(pids) > 10 else "")
    return (
        f"ended {len(pids)} process(es) of an earlier turn ({turn}) still running in this "
        f"work tree: pid {shown}{how}"
    )


def _environments() -> Iterator[tuple[int, bytes]]:
    """(pid, raw environ) of every marked process whose environment we may read.

    Plain ``os`` calls: this runs before every agent start, over every process.
    """
    try:
        names = os.listdir(_PROC)
    except OSError:
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"{_PROC}/{name}/environ", os.O_RDONLY)
        except OSError:
            continue
        try:
            environ = _read_all(fd)
        except OSError:
            continue
        finally:
            os.close(fd)
        if _MARK in environ:
            yield int(name), environ


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _marks(environ: bytes) -> dict[bytes, bytes]:
    marks: dict[bytes, bytes] = {}
    for item in environ.split(b"\0"):
        name, _, value = item.partition(b"=")
        if name in (TURN_ID.encode(), ROOT.encode()):
            marks[name] = value
    return marks


def _ancestors() -> set[int]:
    """This process and its parents up to init: never ended, whatever their marks."""
    pids = {os.getpid()}
    pid = os.getpid()
    for _ in range(1000):
        try:
            stat = (_PROC / str(pid) / "stat").read_bytes()
        except OSError:
            break
        pid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        if pid <= 1 or pid in pids:
            break
        pids.add(pid)
    return pids


def _signal(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)

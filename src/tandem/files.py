"""Files other processes read or share: atomic replacement and exclusive locks.

The state file is read by agents, by ``tandem stop`` and by git while tandem writes it,
so a write either fully happens or not at all (SPEC §3.2); a process killed mid-write
leaves only a temp file beside it, which ``temp_files`` finds for the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
from collections.abc import Iterator
from pathlib import Path


class LockBusy(Exception):
    """Another process holds the lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(holder)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file in the same folder, fsync, rename: readers see old or new.

    The temp file has a name of its own (pid and a counter, created with O_EXCL), which
    costs less than ``tempfile.mkstemp``'s random names; the folder is created only when
    it is missing. This runs twice per turn.
    """
    fd, tmp = _create_temp(path)
    try:
        try:
            os.fchmod(fd, mode)  # the umask does not decide the state file's mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_temp_numbers = itertools.count()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path``; a name left by a killed process of the same pid is
    skipped, a missing folder is created."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    while True:
        tmp = f"{path.parent}{os.sep}{_temp_prefix(path)}{os.getpid()}.{next(_temp_numbers)}.tmp"
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:
            if path.parent.is_dir():
                raise
            path.parent.mkdir(parents=True, exist_ok=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def is_temp_of(path: Path, candidate: str) -> bool:
    """True if ``candidate`` (a name in ``path``'s folder) is a temp file of ``atomic_write``."""
    return candidate.startswith(_temp_prefix(path)) and candidate.endswith(".tmp")


def temp_files(path: Path) -> list[Path]:
    """Temp files of ``atomic_write`` left beside ``path`` by a process killed mid-write."""
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return sorted(path.parent / name for name in names if is_temp_of(path, name))


@contextlib.contextmanager
def locked(path: Path, *, holder: str | None = None) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` while the block runs.

    Without ``holder`` it waits for the lock. With it, a held lock raises ``LockBusy``
    at once naming the holder, and ``holder`` is written into the file for the next one.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:  # its folder is made on first use (taken twice per turn)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if holder is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockBusy(os.pread(fd, 200, 0).decode(errors="replace").strip()) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        yield
    finally:
        os.close(fd)

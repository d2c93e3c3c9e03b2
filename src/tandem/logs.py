"""Turn logs, the event log and the console (SPEC §10).

Layout under ``logs_dir``::

    <branch>/<actor>/iter-<NNNNN>_<YYYYmmddTHHMMSSZ>_<prompt stem>.log
    <branch>/<actor>/latest.log          -> the newest turn log of that actor
    <branch>/events.jsonl                one JSON object per line (docs/events.md)

Secrets are replaced by ``***`` in everything written here (``redaction.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, BinaryIO

from tandem.redaction import Redactor
from tandem.times import utcnow

EVENTS_NAME = "events.jsonl"
_LOG_BUFFER = 1 << 16


@dataclass
class Console:
    """What the user sees: tandem's lines, agent output, warnings; all redacted."""

    redactor: Redactor
    quiet: bool = False
    verbose: bool = False
    out: IO[bytes] = field(default_factory=lambda: sys.stdout.buffer)
    err: IO[str] = field(default_factory=lambda: sys.stderr)

    def say(self, message: str) -> None:
        """A progress line of tandem's own (hidden by --quiet)."""
        if not self.quiet:
            self._out(f"tandem: {message}\n")

    def detail(self, message: str) -> None:
        """A line shown only with --verbose."""
        if self.verbose:
            self._out(f"tandem: {message}\n")

    def warn(self, message: str) -> None:
        """A warning, always shown, on stderr."""
        self.err.write(self.redactor.text(f"tandem: warning: {message}\n"))
        self.err.flush()

    def agent_output(self, data: bytes | memoryview) -> None:
        """Agent output, already redacted, as it came (hidden by --quiet)."""
        if not self.quiet:
            self.out.write(data)
            self.out.flush()

    def agent_line(self, line: str) -> None:
        """One rendered line of a structured agent's output (hidden by --quiet)."""
        if not self.quiet:
            self.out.write(self.redactor.text(line + "\n").encode("utf-8", errors="replace"))
            self.out.flush()

    def agent_error(self, data: bytes | memoryview) -> None:
        """Agent stderr, already redacted (hidden by --quiet)."""
        if not self.quiet:
            self.err.write(bytes(data).decode("utf-8", errors="replace"))
            self.err.flush()

    def _out(self, text: str) -> None:
        self.out.write(self.redactor.text(text).encode("utf-8", errors="replace"))
        self.out.flush()


class TurnLog:
    """One turn's log file: a header, the agent's output as it came, a footer."""

    def __init__(
        self, path: Path, display: str, redactor: Redactor, file: BinaryIO | None = None
    ) -> None:
        self.path = path
        self.display = display  # relative to the host root, for messages and commits
        self._redactor = redactor
        self._file = file if file is not None else path.open("ab", buffering=_LOG_BUFFER)

    def line(self, text: str) -> None:
        """A line of tandem's own (header, footer, notes), redacted."""
        self._file.write(self._redactor.text(text + "\n").encode("utf-8", errors="replace"))

    def fields(self, title: str, values: Mapping[str, Any]) -> None:
        """A block of ``key: value`` lines under a title, on disk at once."""
        self.line(f"===== tandem {title} =====")
        for key, value in values.items():
            self.line(f"{key}: {value}")
        self.line("=" * (len(title) + 20))
        self._file.flush()

    def output(self, data: bytes | memoryview) -> None:
        """Agent output, already redacted; written through, so ``tandem watch`` and
        ``logs --follow`` see it as it comes (one write per chunk, as the console)."""
        self._file.write(data)
        self._file.flush()

    def flush(self) -> None:
        """Push buffered output to the file."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        with contextlib.suppress(OSError):
            self._file.close()


class Logbook:
    """Creates turn logs and appends events for one branch of one host."""

    def __init__(
        self,
        logs_dir: Path,
        branch: str,
        redactor: Redactor,
        console: Console,
        *,
        root: Path,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.folder = logs_dir / branch.replace("/", "-")
        self.redactor = redactor
        self.console = console
        self.root = root
        self.clock = clock
        self.host = socket.gethostname()
        self.events_path = self.folder / EVENTS_NAME

    def display(self, path: Path) -> str:
        """``path`` relative to the host root when inside it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def open_turn(self, actor: str, iteration: int, stem: str) -> TurnLog:
        """A new turn log, and ``latest.log`` pointing at it."""
        folder = self.folder / actor
        path, file = _fresh_log(folder, iteration, self.clock(), _safe(stem))
        log = TurnLog(path, self.display(path), self.redactor, file)
        tmp = folder / f".latest.{os.getpid()}"
        try:
            os.symlink(path.name, tmp)
        except FileExistsError:  # left by a killed run of the same pid
            tmp.unlink()
            os.symlink(path.name, tmp)
        os.replace(tmp, folder / "latest.log")
        return log

    def event(
        self, kind: str, /, *, actor: str | None = None, iteration: int | None = None, **data: Any
    ) -> None:
        """Append one event: one ``write`` of one JSON line (atomic for O_APPEND)."""
        record = {
            "ts": self.clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "event": kind,
            "actor": actor,
            "iteration": iteration,
            "host": self.host,
            "pid": os.getpid(),
            **data,
        }
        line = json.dumps(self.redactor.json(record), ensure_ascii=False) + "\n"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            fd = os.open(self.events_path, flags, 0o644)
        except FileNotFoundError:  # the first event of a branch: its folder is new
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.events_path, flags, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def read_events(path: Path, bad: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The events of an event log, oldest first; a missing or unreadable log has none.

    A line that is not a JSON object is skipped; with ``bad``, each such non-blank line is
    added to it, so a reader can say how many it could not read.
    """
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                yield record
            elif bad is not None and line.strip():
                bad.append(line)


def last_events(path: Path, name: str, count: int, block: int = 1 << 16) -> list[dict[str, Any]]:
    """The last ``count`` events called ``name``, oldest first, read from the file's end.

    A night's event log holds tens of thousands of lines; this reads back only as far as
    it needs. A line that is not a JSON object is skipped, as ``read_events`` does.
    """
    if count <= 0:
        return []
    found: list[dict[str, Any]] = []
    try:
        handle = path.open("rb")
    except OSError:
        return found
    with handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        while end > 0 and len(found) < count:
            start = max(0, end - block)
            handle.seek(start)
            lines = (handle.read(end - start) + tail).split(b"\n")
            tail = lines.pop(0) if start > 0 else b""  # maybe cut: read with the next block
            found += _named(reversed(lines), name, count - len(found))
            end = start
    return found[::-1]


def _named(lines: Iterable[bytes], name: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` events called ``name`` in ``lines``, in the order given."""
    found: list[dict[str, Any]] = []
    quoted = json.dumps(name).encode()
    for line in lines:
        if len(found) == count:
            break
        if quoted not in line:
            continue
        with contextlib.suppress(ValueError):
            record = json.loads(line.decode("utf-8", errors="replace"))
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
    return found


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in stem) or "prompt"


def _fresh_log(folder: Path, iteration: int, start: datetime, stem: str) -> tuple[Path, BinaryIO]:
    """``iter-<N>_<start second>_<stem>.log``, created (O_EXCL) and open; a turn of the same
    second as an earlier one (a quick retry, a restart) takes the next free second, so no
    log is overwritten. The folder is made when it is missing (an actor's first turn)."""
    moment = start
    while True:
        path = folder / f"iter-{iteration:05d}_{moment.strftime('%Y%m%dT%H%M%SZ')}_{stem}.log"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileExistsError:
            moment += timedelta(seconds=1)
        except FileNotFoundError:
            if folder.is_dir():
                raise
            folder.mkdir(parents=True, exist_ok=True)
        else:
            return path, os.fdopen(fd, "ab", buffering=_LOG_BUFFER)

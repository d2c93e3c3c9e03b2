"""What ``tandem watch`` shows, gathered cheaply and read-only (SPEC §17).

A ``Watcher`` turns the files a loop writes (the state, ``events.jsonl``, the running
turn's ``latest.log``) and the receipts in git into a ``Snapshot``, once a second. Each
source is re-read only when it changed (file size and mtime, the commit the history ends
at), so watching costs next to nothing while an agent works. Nothing here writes: the
state is read as raw JSON, so a state this version does not know yet (``paused``,
``spent``) still shows.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem import receipts
from tandem.errors import GitError
from tandem.git import Repo
from tandem.logs import EVENTS_NAME
from tandem.receipts import Receipt
from tandem.times import parse_time, utcnow

TAIL_BYTES = 16384
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
_HISTORY_COMMITS = 24  # enough commits to find the last few receipts among the others


@dataclass(frozen=True)
class Running:
    """The turn under way, as its log's header tells (local watch only)."""

    actor: str
    prompt: str | None
    agent: str | None
    started: datetime | None
    output: tuple[str, ...]


@dataclass(frozen=True)
class RunInfo:
    """The latest run of this clone, from its events: where it began, how far it goes."""

    first: int | None  # the iteration it started at
    iterations: int | None  # how many it was asked for
    ended: str | None  # why it ended (run_end, stop, error), None while it runs


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame shows."""

    where: str  # where the state was read: the file, or the remote branch
    state: Mapping[str, Any] | None
    problem: str | None  # why there is no state to show
    running: Running | None
    run: RunInfo | None
    turns: tuple[Receipt, ...]
    limits: Mapping[str, float | None]
    now: datetime
    note: str | None = None  # trouble reaching the remote, shown beside the last view


@dataclass
class _Cached:
    """A file's content, re-read only when its size or mtime moved."""

    path: Path
    key: tuple[int, int] | None = None
    value: Any = None

    def fresh(self) -> bool:
        """True if the file changed since the last look (and remember the new key)."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            key = None
        else:
            key = (info.st_size, info.st_mtime_ns)
        changed = key != self.key
        self.key = key
        return changed


@dataclass
class _LogView:
    """What was read of one turn log: its header once, its tail when it grew."""

    name: str
    header: Running
    body: int  # where the agent's output begins
    size: int = -1
    output: tuple[str, ...] = ()


@dataclass
class RemoteSource:
    """The remote branch's state, as cheaply as the sync wait looks (SPEC §8.2).

    One ``ls-remote`` every ``every`` seconds; a fetch only when the branch moved. An
    unreachable remote keeps the last view on screen with a note, never an exit.
    """

    repo: Repo
    name: str
    branch: str
    state_path: str  # relative to the root, as git shows it
    every: float = 5.0
    clock: Callable[[], float] = time.monotonic
    problem: str | None = None
    _seen: str | None = field(default=None, init=False)
    _text: bytes | None = field(default=None, init=False)
    _next: float = field(default=0.0, init=False)

    @property
    def shown(self) -> str:
        """``origin/main``."""
        return f"{self.name}/{self.branch}"

    def look(self) -> tuple[str | None, bytes | None]:
        """(the branch's commit, its state file's bytes), refreshed when it is time."""
        now = self.clock()
        if now >= self._next:
            self._next = now + self.every
            try:
                self._poll()
                self.problem = None
            except GitError as exc:
                self.problem = exc.what
        return self._seen, self._text

    def _poll(self) -> None:
        sha = self.repo.ls_remote(self.name, self.branch)
        if sha is None or sha == self._seen:
            return
        fetched = self.repo.fetch(self.name, self.branch)
        self._seen = fetched
        self._text = self.repo.show(fetched, self.state_path) if fetched else None


@dataclass
class Watcher:
    """Builds snapshots of one host; ``state_source`` gives the state's text and commit."""

    repo: Repo | None
    state_path: Path
    logs_folder: Path  # <logs_dir>/<branch>
    limits: Mapping[str, float | None] = field(default_factory=dict)
    shown: str = ""  # the state file as the user knows it (relative to the root)
    remote: RemoteSource | None = None  # --remote: the state and history of the remote branch
    clock: Callable[[], datetime] = utcnow
    _state: _Cached = field(init=False)
    _events: _Cached = field(init=False)
    _offset: int = field(default=0, init=False)
    _run: RunInfo | None = field(default=None, init=False)
    _history: tuple[str | None, tuple[Receipt, ...]] = field(default=(None, ()), init=False)
    _logs: dict[str, _LogView] = field(default_factory=dict, init=False)  # by actor
    _reflog: _Cached | None = field(default=None, init=False)
    _commit: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._state = _Cached(self.state_path)
        self._events = _Cached(self.logs_folder / EVENTS_NAME)

    def snapshot(self) -> Snapshot:
        """One look at everything."""
        where: str
        commit: str | None
        if self.remote is not None:
            commit, text = self.remote.look()
            where = self.remote.shown
        else:
            commit, text = self._head(), self._local_state()
            where = self.shown or str(self.state_path)
        state, problem = _parse_state(text)
        running: Running | None = None
        if state is not None and str(state.get("status", "")).startswith("running-"):
            running = self._running(str(state["status"]).removeprefix("running-"))
        return Snapshot(
            where=where,
            state=state,
            problem=problem,
            running=running,
            run=self._run_info(),
            turns=self._turns(commit),
            limits=self.limits,
            now=self.clock(),
            note=self.remote.problem if self.remote is not None else None,
        )

    # -- sources -------------------------------------------------------------------------
    def _local_state(self) -> bytes | None:
        if self._state.fresh():
            try:
                self._state.value = self.state_path.read_bytes()
            except OSError:
                self._state.value = None
        value: bytes | None = self._state.value
        return value

    def _head(self) -> str | None:
        """HEAD's commit; git is asked only when HEAD's reflog changed (every commit does)."""
        if self.repo is None:
            return None
        if self._reflog is None:
            self._reflog = _Cached(self.repo.git_dir() / "logs" / "HEAD")
        if self._reflog.fresh() or self._commit is None:
            self._commit = self.repo.rev_parse("HEAD")
        return self._commit

    def _turns(self, commit: str | None) -> tuple[Receipt, ...]:
        if commit != self._history[0]:
            found: tuple[Receipt, ...] = ()
            if commit is not None and self.repo is not None:
                found = tuple(receipts.read(self.repo, commit, limit=_HISTORY_COMMITS).receipts)
            self._history = (commit, found)
        return self._history[1]

    def _run_info(self) -> RunInfo | None:
        """Read only the events appended since the last look."""
        if self._events.fresh():
            if self._events.key is None or self._events.key[0] < self._offset:
                self._offset, self._run = 0, None  # the log was removed or cut: start over
            try:
                with (self.logs_folder / EVENTS_NAME).open("rb") as handle:
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                data = b""
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
            for line in complete.splitlines():
                self._event(line)
        return self._run

    def _event(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "run_start":
            first = event.get("iteration")
            planned = event.get("iterations")
            self._run = RunInfo(
                first if isinstance(first, int) else None,
                planned if isinstance(planned, int) else None,
                None,
            )
        elif kind in ("run_end", "stop", "error") and self._run is not None:
            why = {"run_end": "all iterations done"}.get(kind) or event.get("reason")
            why = why or event.get("error") or kind
            self._run = RunInfo(self._run.first, self._run.iterations, str(why))

    def _running(self, actor: str) -> Running:
        """The running turn of ``actor`` from its latest.log: header once, then the tail."""
        latest = self.logs_folder / actor / "latest.log"
        unknown = Running(actor, None, None, None, ())
        try:
            target = os.readlink(latest)
            size = (latest.parent / target).stat().st_size
        except OSError:
            return unknown
        view = self._logs.get(actor)
        if view is None or view.name != target:
            header, body = _header(latest.parent / target)
            if header is None:  # the header is still being written
                return unknown
            view = self._logs[actor] = _LogView(target, header, body)
        if view.header.actor != actor:
            return unknown
        if view.size != size:  # new output since the last look
            view.size, view.output = size, _tail(latest, view.body, size)
        header = view.header
        return Running(actor, header.prompt, header.agent, header.started, view.output)


def _parse_state(text: bytes | None) -> tuple[Mapping[str, Any] | None, str | None]:
    if text is None:
        return None, "no state file yet"
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"the state file is not valid JSON ({exc})"
    if not isinstance(value, dict):
        return None, "the state file does not hold a JSON object"
    return value, None


def _header(path: Path) -> tuple[Running | None, int]:
    """The turn header's fields, and where the agent's output begins (None: not complete)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(TAIL_BYTES)
    except OSError:
        return None, 0
    fields: dict[str, str] = {}
    offset = body = 0
    block: str | None = None  # the title of the header block being read
    done = False  # the agent block (the last one before the output) was closed
    for raw in head.splitlines(keepends=True):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.startswith("===== tandem "):
            block = line.removeprefix("===== tandem ")
        elif block is not None and line and set(line) == {"="}:
            done, block, body = block.startswith("agent "), None, offset + len(raw)
        elif block is not None and ": " in line:
            key, _, value = line.partition(": ")
            fields.setdefault(key, value)
        elif block is None and line:
            break  # the agent's output has begun
        offset += len(raw)
    if not done:
        return None, 0
    started = None
    if fields.get("start"):
        try:
            started = parse_time(fields["start"])
        except ValueError:
            started = None
    actor, prompt, agent = fields.get("actor", ""), fields.get("prompt"), fields.get("agent")
    return Running(actor, prompt, agent, started, ()), body


def _tail(path: Path, body: int, size: int, lines: int = 12) -> tuple[str, ...]:
    """The last ``lines`` lines of output (control characters and colours dropped)."""
    start = max(body, size - TAIL_BYTES)
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
    except OSError:
        return ()
    text = data.decode("utf-8", errors="replace").replace("\t", "    ")
    shown = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
    return tuple(line for line in shown if line)[-lines:]

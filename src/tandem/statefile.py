"""``sync/state.json`` on disk: the strict parse and the atomic write.

The file comes from outside the process (another machine, a human, an agent), so reading
it is strict: any defect is a ``StateError`` naming the file, the field and the value
(SPEC §3.2). Keys tandem does not know are kept as they are on every write (SPEC §3.1).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from tandem import lease
from tandem.errors import StateError
from tandem.files import atomic_write
from tandem.legacy import step_state
from tandem.limits import PauseRecord, Spent
from tandem.printable import printable
from tandem.state import ACTORS, KEY_ORDER, SHOWN, STATUSES, Actor, Failure, State, status_fits
from tandem.times import format_time, parse_time

_FIX = "fix the file by hand (or restore it with `git checkout -- {path}`), then restart"


def parse(text: str | bytes, source: str) -> State:
    """Parse and validate a state file's text; ``StateError`` names any defect."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StateError(
                f"{source} is not UTF-8 text ({exc})", _FIX.format(path=source)
            ) from exc
    if any(line.startswith(("<<<<<<<", ">>>>>>>", "=======")) for line in text.splitlines()):
        raise StateError(
            f"{source} contains git conflict markers",
            f"resolve the merge in {source} (keep one side's JSON), commit it, then restart",
        )
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise StateError(
            f"{source} has the key '{exc}' twice (which one counts depends on the reader)",
            _FIX.format(path=source),
        ) from None
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise StateError(
            f"{source} is not valid JSON ({detail}{where})", _FIX.format(path=source)
        ) from exc
    if not isinstance(data, dict):
        raise StateError(
            f"{source} must hold a JSON object, not {_json_type(data)}", _FIX.format(path=source)
        )
    return _from_dict(data, source)


class _Duplicate(ValueError):
    """A JSON object with one key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(printable(key, SHOWN))
        found[key] = value
    return found


def _from_dict(data: dict[str, Any], source: str) -> State:
    data = step_state(data)  # a state file the earlier scripts wrote (SPEC §12.1)
    check = _Checker(data, source)
    iteration = check.integer("iteration", minimum=1)
    actor = check.choice("expected_actor", ACTORS)
    status = check.choice("status", STATUSES)
    if not status_fits(cast(Actor, actor), status):
        raise StateError(
            f"{source}: status '{status}' does not go with expected_actor '{actor}'",
            "set them to a pair from SPEC §3.3 (or use `tandem stamp`), then restart",
        )
    failure = data.get("failure")
    owner = check.text("lease_owner")
    return State(
        iteration=iteration,
        expected_actor=cast(Actor, actor),
        status=status,
        last_update=check.time("last_update", required=False),
        lease_owner=owner,
        lease_expires_at=check.time("lease_expires_at", required=False),
        lease_identity=check.identity("lease_identity", owner),
        galph_commit=check.text("galph_commit"),
        ralph_commit=check.text("ralph_commit"),
        last_prompt=check.text("last_prompt"),
        last_prompt_actor=cast("Actor | None", check.choice("last_prompt_actor", ACTORS, True)),
        workflow=check.text("workflow"),
        step=check.optional_integer("step", minimum=0),
        failure=None if failure is None else _failure(failure, source),
        pause=check.pause("pause", status),
        spent=Spent.from_json(
            check.data.get("spent") if isinstance(check.data.get("spent"), dict) else None
        ),
        exit=check.boolean("exit"),
        exit_reason=check.text("exit_reason"),
        extra={k: v for k, v in data.items() if k not in KEY_ORDER},
    )


def _failure(value: Any, source: str) -> Failure:
    if not isinstance(value, dict):
        raise StateError(
            f"{source}: field 'failure' must be an object or null, not {_json_type(value)}",
            _FIX.format(path=source),
        )
    check = _Checker(value, source, prefix="failure.")
    return Failure(
        actor=cast(Actor, check.choice("actor", ACTORS)),
        iteration=check.integer("iteration", minimum=1),
        prompt=check.text("prompt"),
        reason=check.text("reason") or "",
        log=check.text("log"),
    )


class _Checker:
    """Typed field access that raises a ``StateError`` naming the file, field and value."""

    def __init__(self, data: dict[str, Any], source: str, prefix: str = "") -> None:
        self.data = data
        self.source = source
        self.prefix = prefix

    def _bad(self, key: str, want: str) -> StateError:
        value = json.dumps(self.data.get(key))
        return StateError(
            f"{self.source}: field '{self.prefix}{key}' must be {want}, not {value[:80]}",
            _FIX.format(path=self.source),
        )

    def optional_integer(self, key: str, minimum: int) -> int | None:
        return None if self.data.get(key) is None else self.integer(key, minimum)

    def integer(self, key: str, minimum: int) -> int:
        value = self.data.get(key)
        if key not in self.data:
            raise StateError(
                f"{self.source}: field '{self.prefix}{key}' is missing (an integer ≥ {minimum})",
                _FIX.format(path=self.source),
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(key, f"an integer ≥ {minimum}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], nullable: bool = False) -> str:
        value = self.data.get(key)
        if value is None and nullable:
            return None  # type: ignore[return-value]
        if value not in allowed:
            raise self._bad(key, "one of " + ", ".join(f'"{a}"' for a in allowed))
        return cast(str, value)

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string or null")
        return value

    def time(self, key: str, required: bool) -> str | None:
        value = self.text(key)
        if value is None:
            if required:
                raise self._bad(key, "an ISO 8601 UTC time")
            return None
        try:
            parse_time(value)
        except ValueError:
            raise self._bad(key, "an ISO 8601 UTC time like 2026-01-20T03:29:29Z") from None
        return value

    def identity(self, key: str, owner: str | None) -> lease.Identity | None:
        try:
            return lease.identity_from_json(self.data.get(key), owner)
        except ValueError as exc:
            raise self._bad(key, str(exc)) from None

    def pause(self, key: str, status: str) -> PauseRecord | None:
        value = self.data.get(key)
        if value is None:
            if status == "paused":
                raise self._bad(key, "an object (the status is paused)")
            return None
        try:
            return PauseRecord.from_json(value)
        except ValueError as exc:
            raise self._bad(key, str(exc)) from None

    def boolean(self, key: str) -> bool:
        value = self.data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, read with plain system calls (a turn reads the file several times;
    ``Path.read_bytes`` costs twice as much through its buffered file object)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class StateFile:
    """The state file on disk: strict read, atomic write (SPEC §3.2).

    A turn reads the file several times (stop check, begin, finish); bytes equal to the
    last ones read or written are not parsed again, so a turn parses it at most once.
    """

    def __init__(self, path: Path, display: str | None = None) -> None:
        self.path = path
        self.display = display or str(path)
        self._known: tuple[bytes, State] | None = None

    def exists(self) -> bool:
        """True if the file is there."""
        return self.path.exists()

    def read(self) -> State:
        """Parse the file; ``StateError`` if it is missing, not a regular file, or invalid."""
        state = self.read_if_present()
        if state is None:
            raise StateError(
                f"{self.display} does not exist",
                "run `tandem init`, or start galph (it creates the file)",
            )
        return state

    def read_if_present(self) -> State | None:
        """``read``, but None when the file is not there (no ``exists`` call first: the
        stop check before every turn asks this)."""
        try:
            self._check_kind()
            text = _read_bytes(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.display}: {exc.strerror}", "check it") from exc
        if self._known is not None and self._known[0] == text:
            return self._known[1]
        state = parse(text, self.display)
        self._known = (text, state)
        return state

    def _check_kind(self) -> None:
        """A symlink, FIFO, socket or device is refused by name before it is opened (a FIFO
        would block the read forever; SPEC §13.1 rule 7)."""
        mode = os.lstat(self.path).st_mode
        if stat.S_ISLNK(mode):
            raise StateError(
                f"{self.display} is a symlink; the state file must be a regular file",
                "replace the link with the file it points to (cp --remove-destination "
                f"{os.path.realpath(self.path)} {self.display})",
            )
        if not stat.S_ISREG(mode):
            raise StateError(
                f"{self.display} is not a regular file (a FIFO, socket or device)",
                f"remove it (rm {self.display}); galph's next start creates the file",
            )

    def write(self, state: State, now: datetime | None = None) -> State:
        """Atomically replace the file with ``state``; returns what was written."""
        if now is not None:
            state = dataclasses.replace(state, last_update=format_time(now))
        data = state.dumps().encode("utf-8")
        atomic_write(self.path, data)
        self._known = (data, state)
        return state

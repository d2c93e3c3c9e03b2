"""``sync/state.json``: the strict model, atomic reads and writes, transitions and leases.

The file comes from outside the process (another machine, a human, an agent), so reading
it is strict: any defect is a ``StateError`` naming the file, the field and the value
(SPEC §3.2). Keys tandem does not know are kept as they are on every write (SPEC §3.1).
Transitions return a new ``State`` and never touch the disk (SPEC §3.3); ``merge`` joins
two versions of the file field by field, so the file never causes a git conflict
(SPEC §13.1 rule 3). The lease check
reads the process table of this host (``lease.py`` says how the owner is stored and judged).
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from tandem import lease
from tandem.errors import LeaseHeld, StateError
from tandem.files import atomic_write
from tandem.lease import Owner
from tandem.limits import PauseRecord, Spent
from tandem.printable import printable

Actor = Literal["galph", "ralph"]
ACTORS: tuple[Actor, Actor] = ("galph", "ralph")
STATUSES = (
    "idle",
    "running-galph",
    "waiting-ralph",
    "running-ralph",
    "complete",
    "failed",
    "paused",
)
# Which statuses each actor's turn can start from (SPEC §3.3), besides its own running-*;
# a paused turn (SPEC §14.2) is run again by the same actor.
_STARTS_FROM: dict[Actor, tuple[str, ...]] = {
    "galph": ("idle", "complete", "failed", "paused"),
    "ralph": ("waiting-ralph", "failed", "paused"),
}
_KEY_ORDER = (
    "iteration",
    "expected_actor",
    "status",
    "last_update",
    "lease_owner",
    "lease_expires_at",
    "lease_identity",
    "galph_commit",
    "ralph_commit",
    "last_prompt",
    "last_prompt_actor",
    "workflow",
    "step",
    "failure",
    "pause",
    "spent",
    "exit",
    "exit_reason",
)
_FAILURE_KEYS = ("actor", "iteration", "prompt", "reason", "log")
_SHOWN = 80  # characters of a name from the file quoted in a message
_FIX = "fix the file by hand (or restore it with `git checkout -- {path}`), then restart"


def other(actor: Actor) -> Actor:
    """The actor that is not ``actor``."""
    return "ralph" if actor == "galph" else "galph"


class Next(NamedTuple):
    """Where an iteration goes after a step succeeds (``workflow.Workflow.following``)."""

    actor: Actor
    step: int | None  # None: the standard workflow, whose file keeps no step
    workflow: str | None
    wraps: bool  # that was the last step: the iteration ends


# The standard workflow's steps: galph (step 0), then ralph (step 1).
_STANDARD_NEXT: dict[Actor, Next] = {
    "galph": Next("ralph", None, None, False),
    "ralph": Next("galph", None, None, True),
}


def utcnow() -> datetime:
    """Now, in UTC (the state file shows it to the second, events to the millisecond)."""
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with a Z: ``2026-01-20T03:29:29Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse ``2026-01-20T03:29:29Z`` (offsets are accepted too); ValueError if bad."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 has no UTC date
        raise ValueError("out of range") from None


@dataclass(frozen=True)
class Failure:
    """Why the last turn failed."""

    actor: Actor
    iteration: int
    prompt: str | None
    reason: str
    log: str | None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored under ``failure``."""
        return {k: getattr(self, k) for k in _FAILURE_KEYS}


@dataclass(frozen=True)
class State:
    """The parsed state file. ``extra`` holds unknown keys, kept in their order."""

    iteration: int = 1
    expected_actor: Actor = "galph"
    status: str = "idle"
    last_update: str | None = None
    lease_owner: str | None = None
    lease_expires_at: str | None = None
    lease_identity: lease.Identity | None = None  # of lease_owner's process (lease.py)
    galph_commit: str | None = None
    ralph_commit: str | None = None
    last_prompt: str | None = None
    last_prompt_actor: Actor | None = None
    workflow: str | None = None  # written only for a workflow other than standard (SPEC §18)
    step: int | None = None
    failure: Failure | None = None
    pause: PauseRecord | None = None  # while status is "paused" (SPEC §14.2)
    spent: Spent = field(default_factory=Spent)  # the loop's running totals (SPEC §14.4)
    exit: bool = False
    exit_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    # -- transitions (SPEC §3.3) ------------------------------------------------------
    def begin(
        self, actor: Actor, owner: Owner, now: datetime, lease_secs: float, *, gated: bool = True
    ) -> State:
        """``actor``'s turn starts: ``running-<actor>`` with a lease.

        ``gated=False`` (async role mode, SPEC §8.6) starts it whoever's turn it was.
        """
        if gated:
            self._check_can_begin(actor)
        return self._touch(
            now,
            expected_actor=actor,
            status=f"running-{actor}",
            lease_owner=str(owner),
            lease_expires_at=format_time(now + timedelta(seconds=lease_secs)),
            lease_identity=owner.identity,
        )

    def _check_can_begin(self, actor: Actor) -> None:
        if self.expected_actor != actor:
            raise StateError(
                f"it is {self.expected_actor}'s turn (iteration {self.iteration}), not {actor}'s",
                f"run {self.expected_actor}, or stamp the turn with `tandem stamp "
                f"{self.expected_actor} ok|fail`",
            )
        if self.status not in (*_STARTS_FROM[actor], f"running-{actor}"):
            raise StateError(
                f"{actor}'s turn cannot start from status '{self.status}'",
                "fix sync/state.json or use `tandem stamp`",
            )

    @property
    def position(self) -> int:
        """The step within the iteration; without ``step``, the standard's: galph 0, ralph 1."""
        if self.step is not None:
            return self.step
        return 0 if self.expected_actor == "galph" else 1

    def succeed(
        self, actor: Actor, now: datetime, commit: str | None, after: Next | None = None
    ) -> State:
        """``actor``'s step succeeded: go to the ``after`` step (default: the standard's
        next), and to the next iteration when that was the last step."""
        self._expect_running(actor)
        after = after or _STANDARD_NEXT[actor]
        commit_field = {f"{actor}_commit": commit} if commit else {}
        return self._touch(
            now,
            expected_actor=after.actor,
            status=_waiting_for(after.actor),
            iteration=self.iteration + after.wraps,
            workflow=after.workflow,
            step=after.step,
            **commit_field,
            failure=None,
            pause=None,
            **_NO_LEASE,
        )

    def at_step(self, step: Next) -> State:
        """The same iteration, moved to ``step`` (``--start-step``)."""
        return dataclasses.replace(
            self,
            expected_actor=step.actor,
            status=_waiting_for(step.actor),
            step=step.step,
            workflow=step.workflow,
            failure=None,
        )

    def fail(self, failure: Failure, now: datetime) -> State:
        """The turn of ``failure.actor`` failed: it stays that actor's turn, ``failed``."""
        self._expect_running(failure.actor)
        return self._touch(now, status="failed", failure=failure, pause=None, **_NO_LEASE)

    def paused(self, pause: PauseRecord, now: datetime) -> State:
        """The running turn waits out a limit: ``paused``, same actor, the lease kept."""
        self._expect_running(self.expected_actor)
        return self._touch(now, status="paused", pause=pause)

    def stamped(self, prompt: str | None, actor: Actor | None) -> State:
        """Record which prompt the last turn ran (router enabled, SPEC §4.5)."""
        return dataclasses.replace(self, last_prompt=prompt, last_prompt_actor=actor)

    def with_stop(self, reason: str | None) -> State:
        """Request a stop at the next check point (SPEC §3.5)."""
        return dataclasses.replace(self, exit=reason is not None, exit_reason=reason)

    def _expect_running(self, actor: Actor) -> None:
        if self.status != f"running-{actor}":
            raise StateError(
                f"{actor}'s turn is not running (status '{self.status}')",
                "start the turn first, or use `tandem stamp --force`",
            )

    def _touch(self, now: datetime, **changes: Any) -> State:
        return dataclasses.replace(self, last_update=format_time(now), **changes)

    # -- lease (SPEC §3.4) ------------------------------------------------------------
    def check_lease(self, actor: Actor, me: Owner, now: datetime) -> str | None:
        """Check that ``me`` may run ``actor``'s turn; ``LeaseHeld`` if another owner holds it.

        Returns the old owner when the turn is to be taken over (SPEC §3.4.1: its owner is
        gone, or its lease expired), None when there is nothing to recover.
        """
        held = self.status == f"running-{actor}"
        if not held and not (self.status == "paused" and self.expected_actor == actor):
            return None
        if self.lease_owner is None:
            if not held:
                return None  # a paused turn whose lease was released: anyone may go on
            return "an unknown process"
        holder = Owner.parse(self.lease_owner, self.lease_identity)
        expires = self.lease_expires_at
        verdict = lease.judge(holder, me, expires is not None and parse_time(expires) <= now)
        if verdict == "mine":
            return None
        shown = printable(self.lease_owner, _SHOWN)
        if verdict == "stale":
            return shown
        raise LeaseHeld(
            f"{actor}'s turn at iteration {self.iteration} is held by {shown} "
            f"(lease until {expires or 'never'})",
            "wait for it to finish, or stop that process; an expired lease is taken over",
        )

    # -- serialization ----------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The file's object: fixed key order, then unknown keys as they came."""
        data: dict[str, Any] = {}
        for key in _KEY_ORDER:
            value = getattr(self, key)
            if (key in _OPTIONAL_KEYS and not value) or (key == "step" and value is None):
                continue
            if key == "spent" and value == Spent():
                continue
            if isinstance(value, lease.Identity):
                value = lease.identity_to_json(self.lease_owner or "", value)
            data[key] = (
                value.to_json() if isinstance(value, (Failure, PauseRecord, Spent)) else value
            )
        data.update(self.extra)
        return data

    def dumps(self) -> str:
        """The file's text: 2-space indent and a trailing newline."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def protocol_fields(self) -> dict[str, Any]:
        """The fields only tandem may change (all but the stop request and unknown keys)."""
        data = self.to_json()
        for key in (*_USER_KEYS, "last_update", *self.extra):
            data.pop(key, None)
        return data

    def finished_turn(self, before: State) -> tuple[Actor, bool] | None:
        """(actor, ok) if this state records one turn finished on top of ``before``.

        Used on start to recognise a finish whose commit is missing (SPEC §13.1 rule 1).
        """
        if self.lease_owner is not None:
            return None
        if self.status == "failed" and self.failure is not None:
            actor = self.failure.actor
            if before.expected_actor == actor and before.iteration == self.iteration:
                return None if before.failure == self.failure else (actor, False)
            return None
        if self.status not in ("waiting-ralph", "complete"):
            return None
        # one step on from ``before``: the next step, or step 0 of the next iteration (from
        # step 0 only in a one-step workflow, whose file records the step)
        same = before.iteration == self.iteration and before.position + 1 == self.position
        wrapped = before.iteration + 1 == self.iteration and self.position == 0
        wrapped &= before.position > 0 or self.step is not None
        return (before.expected_actor, True) if same or wrapped else None

    def same_turn(self, other_state: State) -> bool:
        """True if both describe the same point of the protocol (ignoring timestamps)."""
        keys = ("iteration", "expected_actor", "status", "step", "lease_owner", "lease_identity")
        return all(getattr(self, k) == getattr(other_state, k) for k in keys)


def _waiting_for(actor: Actor) -> str:
    """The status of a step waiting for ``actor`` (galph's after a step: ``complete``)."""
    return "waiting-ralph" if actor == "ralph" else "complete"


_OPTIONAL_KEYS = ("exit", "exit_reason", "lease_identity", "workflow", "pause")
_NO_LEASE = {"lease_owner": None, "lease_expires_at": None, "lease_identity": None}
_USER_KEYS = ("exit", "exit_reason")


def merge(turn: State, other_side: State, base: State | None = None) -> State:
    """Join two versions of the state: ``turn``'s protocol fields, the other side's stop
    request and unknown keys (SPEC §13.1 rule 3).

    With ``base`` (the common ancestor), a stop request or key the other side did not
    change keeps ``turn``'s value, so a stop already honoured is not brought back.
    """

    def changed(key: str) -> bool:
        return base is None or getattr(other_side, key) != getattr(base, key)

    exit_side = other_side if changed("exit") or changed("exit_reason") else turn
    if base is None and not other_side.exit:
        exit_side = turn
    extra = dict(turn.extra)
    base_extra = {} if base is None else dict(base.extra)
    for key, value in other_side.extra.items():
        if base is None or base_extra.get(key, _ABSENT) != value:
            extra[key] = value
    for key in base_extra:
        if key not in other_side.extra:
            extra.pop(key, None)
    return dataclasses.replace(
        turn, exit=exit_side.exit, exit_reason=exit_side.exit_reason, extra=extra
    )


_ABSENT = object()


def initial(now: datetime) -> State:
    """Iteration 1, galph's turn, idle."""
    return State(last_update=format_time(now))


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
            raise _Duplicate(printable(key, _SHOWN))
        found[key] = value
    return found


def _from_dict(data: dict[str, Any], source: str) -> State:
    from tandem.legacy import step_state

    data = step_state(data)  # a state file the earlier scripts wrote (SPEC §12.1)
    check = _Checker(data, source)
    iteration = check.integer("iteration", minimum=1)
    actor = check.choice("expected_actor", ACTORS)
    status = check.choice("status", STATUSES)
    if status not in (*_STARTS_FROM[actor], f"running-{actor}"):  # type: ignore[index]
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
        extra={k: v for k, v in data.items() if k not in _KEY_ORDER},
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
        try:
            self._check_kind()
            text = self.path.read_bytes()
        except FileNotFoundError:
            raise StateError(
                f"{self.display} does not exist",
                "run `tandem init`, or start galph (it creates the file)",
            ) from None
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

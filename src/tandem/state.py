"""The ``sync/state.json`` model: fields, transitions, the merge and the lease check.

Transitions return a new ``State`` and never touch the disk (SPEC §3.3); ``merge`` joins
two versions of the file field by field, so the file never causes a git conflict
(SPEC §13.1 rule 3). The lease check reads the process table of this host (``lease.py``
says how the owner is stored and judged), so it is not pure. Reading and writing the file
strictly is ``statefile.py``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from tandem import lease
from tandem.errors import LeaseHeld, StateError
from tandem.lease import Owner
from tandem.limits import PauseRecord, Spent
from tandem.printable import printable
from tandem.times import format_time, parse_time

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
KEY_ORDER = (
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
SHOWN = 80  # characters of a name from the file quoted in a message


def status_fits(actor: Actor, status: str) -> bool:
    """True if ``status`` can stand while it is ``actor``'s turn (SPEC §3.3)."""
    return status in (*_STARTS_FROM[actor], f"running-{actor}")


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
        if not status_fits(actor, self.status):
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
        shown = printable(self.lease_owner, SHOWN)
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
        for key in KEY_ORDER:
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

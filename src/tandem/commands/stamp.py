"""``tandem stamp ACTOR ok|fail``: record a turn by hand, to recover or skip it (SPEC §8.5)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tandem.autocommit import require_tree_for
from tandem.checks import actor_name
from tandem.commands.common import load_config, sync_overrides
from tandem.errors import LeaseHeld, StateError, UsageError
from tandem.execution import Status
from tandem.host import Host, open_host
from tandem.logs import Console
from tandem.recovery import recover
from tandem.redaction import Redactor
from tandem.runner import TurnResult
from tandem.session import Session
from tandem.state import Actor
from tandem.turns import Started, begin_turn, finish_turn


def stamp(
    *,
    cwd: Path,
    actor: str,
    ok: bool,
    reason: str | None,
    force: bool,
    sync: bool,
    pull: bool,
    push: bool,
    allow_dirty: bool,
    remote: str | None,
    branch: str | None,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Perform the finish step of ``actor``'s turn without running an agent."""
    import os

    try:
        who = actor_name(actor)
    except ValueError as exc:
        raise UsageError(str(exc), "stamp galph or ralph") from None
    config = load_config(cwd, config_path, {**overrides, **sync_overrides(remote, branch)})
    host = open_host(config, console=Console(Redactor(os.environ)), require_git=sync)
    with host.run_lock():
        # --no-pull --no-push stamps locally: nothing touches the remote, none is needed
        session = Session.open(host) if sync and (pull or push) else None
        if session is None:
            recover(host, sync=False)
        elif pull:
            session.catch_up()
        started, released = _running(host, who, force=force, allow_dirty=allow_dirty)
        now = host.clock()
        result = TurnResult(
            who,
            started.state.iteration,
            Status.OK if ok else Status.FAILED,
            now,
            now,
            source="stamp",
            route_reason="stamped by hand",
            failure=None if ok else (reason or "stamped failed by hand"),
        )
        note = f"released={released}" if released else ""
        finished = finish_turn(host, started, result, "warn", note)
        if session is not None and push and finished.committed:
            session.publish("the stamp")
    after = finished.state
    if released:
        print(f"tandem: released the lease of {released} (--force)")
    print(
        f"tandem: stamped {who} {'ok' if ok else 'fail'}: iteration {after.iteration}, "
        f"{after.expected_actor}'s turn ({after.status})"
    )
    return 0


def _running(
    host: Host, actor: Actor, *, force: bool, allow_dirty: bool
) -> tuple[Started, str | None]:
    """``actor``'s turn running, as finishing needs it, and the live-looking owner whose
    lease ``--force`` released (SPEC §3.4.1: the manual recovery of a dead machine)."""
    current = host.read_state()
    if current.expected_actor != actor and not force:
        raise StateError(
            f"it is {current.expected_actor}'s turn (iteration {current.iteration}), not {actor}'s",
            "stamp the actor whose turn it is, or pass --force",
        )
    if not allow_dirty:
        require_tree_for(host, actor, "commit or move them, or pass --allow-dirty")
    if current.status == f"running-{actor}" and current.expected_actor == actor:
        try:
            current.check_lease(actor, host.owner, host.clock())  # a live owner is refused
        except LeaseHeld as held:
            if not force:
                raise LeaseHeld(
                    held.what,
                    "if that machine is dead, stamp with --force to release its lease",
                ) from None
            host.log.event("lease_released", owner=current.lease_owner, by="stamp --force")
            return Started(current, host.branch), current.lease_owner
        return Started(current, host.branch), None
    return begin_turn(host, actor, gated=not force), None

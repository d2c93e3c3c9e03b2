"""Begin, finish and fail a turn: the state transition and its local commit.

Combined mode, role mode and ``tandem stamp`` all record turns through these functions,
so the protocol is written once (SPEC §5). Nothing here pushes: sync mode wraps these
with its claim and publish steps (``sync.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tandem import receipts
from tandem.autocommit import Selection, select
from tandem.errors import StateError, TandemError
from tandem.git import Dirty, Status
from tandem.host import Host
from tandem.runner import Status as TurnStatus
from tandem.runner import TurnResult
from tandem.state import Actor, Failure, State

LeftoverPolicy = Literal["warn", "fail"]


@dataclass(frozen=True)
class Finished:
    """What finishing a turn recorded."""

    state: State
    result: TurnResult  # possibly turned into a failure (dirty tree left behind)
    stop_reason: str | None  # a stop was requested during the turn (and is now cleared)


def begin_turn(host: Host, actor: Actor, *, gated: bool = True) -> State:
    """Mark ``actor``'s turn running with this process's lease (recovering a stale one).

    ``gated=False`` is async role mode: the turn starts whoever's turn the state says.
    """
    with host.locked():
        current = host.read_state()
        now = host.clock()
        stale = current.check_lease(actor, host.owner, now)
        if stale is not None:
            host.console.say(f"recovering stale turn (owner {stale})")
            host.log.event("recover", actor=actor, iteration=current.iteration, owner=stale)
        started = host.state_file.write(
            current.begin(actor, host.owner, now, host.config.lease_secs, gated=gated)
        )
    host.log.event(
        "turn_start", actor=actor, iteration=started.iteration, lease=started.lease_expires_at
    )
    return started


def finish_turn(
    host: Host, running: State, result: TurnResult, leftovers: LeftoverPolicy
) -> Finished:
    """Record ``result``: the state transition and one commit of the turn's files.

    ``leftovers`` says what dirty paths outside the actor's globs do: ``warn`` (combined
    mode), or ``fail`` (sync mode and --strict-tree: the turn is stamped failed).
    """
    status = host.repo.status() if host.repo is not None else None
    selection = _selection(host, result.actor, status)
    result = _check_tree(host, result, selection, leftovers)
    with host.locked():
        external = _external(host, running)
        now = host.clock()
        if result.ok:
            head = status.head[:12] if status is not None and status.head else None
            after = running.succeed(result.actor, now, head)
        else:
            after = running.fail(_failure(result), now)
        if host.config.router.enabled and result.prompt is not None:
            after = after.stamped(result.prompt, result.actor)
        after = dataclasses.replace(after, extra=external.extra)
        stop_reason = (external.exit_reason or "stop requested") if external.exit else None
        host.state_file.write(after)
    commit_turn(host, after, selection, subject(result, after), result)
    host.log.event("turn_end", actor=result.actor, iteration=result.iteration, **result.to_json())
    return Finished(after, result, stop_reason)


def _selection(host: Host, actor: Actor, status: Status | None) -> Selection:
    return Selection() if status is None else selection_for(host, actor, status.dirty)


def selection_for(host: Host, actor: Actor, dirty: Iterable[Dirty]) -> Selection:
    """Match dirty paths against ``actor``'s globs; never the state file or the logs."""
    config = host.config
    return select(
        dirty,
        config.autocommit.globs(actor),
        root=config.root,
        never=(host.state_path, config.relative(config.logs_dir)),
        max_file_bytes=config.autocommit.max_file_bytes,
        max_total_bytes=config.autocommit.max_total_bytes,
    )


def require_tree_for(host: Host, actor: Actor, fix: str) -> None:
    """Refuse to start when the tree has changes ``actor`` may not commit (listed)."""
    if host.repo is None:
        return
    unmatched = selection_for(host, actor, host.repo.status().dirty).unmatched
    if unmatched:
        more = f" (+{len(unmatched) - 10} more)" if len(unmatched) > 10 else ""
        raise TandemError(
            f"the work tree has changes {actor} may not commit: "
            + ", ".join(unmatched[:10])
            + more,
            fix,
        )


def _check_tree(
    host: Host, result: TurnResult, selection: Selection, leftovers: LeftoverPolicy
) -> TurnResult:
    """Dirty paths the actor may not commit: a warning, or a failed turn (SPEC §9)."""
    left = selection.left_dirty
    if not left:
        return result
    shown = ", ".join(left[:10]) + (f" (+{len(left) - 10} more)" if len(left) > 10 else "")
    for path, why in selection.too_big:
        host.console.warn(f"not committed: {path} ({why})")
    message = f"{result.actor}'s turn left dirty paths it may not commit: {shown}"
    if leftovers == "warn" and not host.strict_tree:
        host.console.warn(f"{message}; they stay in the work tree")
        return result
    if not result.ok:
        return result
    return dataclasses.replace(
        result,
        status=TurnStatus.FAILED,
        failure=f"{message} (see autocommit.{result.actor}; nothing was discarded)",
    )


def _external(host: Host, running: State) -> State:
    """The state on disk now: an agent or a human may have added keys or a stop request."""
    try:
        return host.read_state()
    except StateError as exc:
        host.console.warn(
            f"the state file changed during the turn and is invalid ({exc}); "
            "rewriting it from tandem's own record"
        )
        return running


def _failure(result: TurnResult) -> Failure:
    return Failure(
        actor=result.actor,
        iteration=result.iteration,
        prompt=result.prompt,
        reason=result.failure or result.status.value,
        log=result.log_path,
    )


def subject(result: TurnResult, after: State) -> str:
    """The commit subject of a turn's stamp (SPEC §7.3, §8.2)."""
    actor = result.actor
    prompt = f" prompt={result.prompt}" if result.prompt else ""
    if not result.ok:
        return f"[SYNC i={after.iteration}] actor={actor} status=fail{prompt}"
    sha = getattr(after, f"{actor}_commit")
    commit = f" {actor}_commit={sha}" if sha else ""
    return (
        f"[SYNC i={after.iteration}] actor={actor} → next={after.expected_actor} "
        f"status=ok{prompt}{commit}"
    )


def commit_turn(
    host: Host, after: State, selection: Selection, title: str, result: TurnResult | None
) -> str | None:
    """One local commit: the state file plus the selected paths, with explicit pathspecs."""
    if host.repo is None:
        return None
    paths = [host.state_path, *selection.commit]
    if host.commit_dry_run:
        host.console.say(f"would commit ({title}): " + ", ".join(paths))
        return None
    trailers = receipts.trailers(receipts.for_host(host, result)) if result is not None else []
    message = title + ("\n\n" + "\n".join(trailers) if trailers else "")
    untracked = [*selection.untracked, *([host.state_path] if host.state_needs_add() else [])]
    sha = host.repo.commit_paths(paths, untracked, host.log.redactor.text(message))
    host.committed()
    host.console.detail(f"committed {sha}: {title}")
    return sha


def record_stop(host: Host, reason: str, actor: Actor | None) -> State:
    """Honour a stop request: clear it in the state, commit that, and log the stop."""
    with host.locked():
        current = host.read_state()
        cleared = host.state_file.write(current.with_stop(None), host.clock())
    commit_turn(host, cleared, Selection(), f"[SYNC i={cleared.iteration}] stop: {reason}", None)
    announce_stop(host, reason, actor, cleared.iteration)
    return cleared


def announce_stop(host: Host, reason: str, actor: Actor | None, iteration: int) -> None:
    """Print ``stopping: <reason>`` and log the stop event (SPEC §3.5)."""
    host.log.event("stop", actor=actor, iteration=iteration, reason=reason)
    host.console.say(f"stopping: {reason}")


def pending_stop(host: Host) -> str | None:
    """The reason of a stop request in the state on disk, or None."""
    current = host.read_state()
    return (current.exit_reason or "stop requested") if current.exit else None

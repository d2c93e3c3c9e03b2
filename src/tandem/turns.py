"""The turn lifecycle, written once for every mode (SPEC §5): start, run, record, judge.

A turn is started (combined and async mode begin it locally, sync mode claims it through
the remote: the start is a parameter of ``play``), run by ``runner.run_turn``, checked
(``guard.py``: what the agent did to git and to the state file), and recorded: the state
write and one commit. ``run_loop`` is the loop skeleton of all three modes; a ``Mode``
says how a turn starts, what happens before it, and how its record is published.

Recording is a unit a restart completes (``recovery.py``): the state is written first,
then committed; a start that finds a written finish without its commit makes the commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tandem import guard, receipts, unattended, workflow
from tandem.autocommit import Selection, selection_for
from tandem.errors import Interrupted, StateError, TurnFailed
from tandem.execution import PromptExecutor, Status
from tandem.gitstatus import TreeStatus
from tandem.host import Host, TreePolicy
from tandem.interrupts import Interrupt
from tandem.limits import PauseRecord
from tandem.router import RouterContext
from tandem.runner import TurnResult, run_turn
from tandem.state import Actor, Failure, State
from tandem.subjects import stop_subject, turn_subject


@dataclass(frozen=True)
class Started:
    """A turn that has begun: its running state and what the agent must leave as found."""

    state: State
    branch: str | None  # HEAD's branch when the turn began (None: no git, or detached)
    claim: str | None = None  # sync mode: the claim commit, pushed before the agent ran


@dataclass(frozen=True)
class Finished:
    """What finishing a turn recorded."""

    state: State
    result: TurnResult  # possibly turned into a failure (dirty tree, agent's git actions)
    stop_reason: str | None  # a stop was requested during the turn (and is now cleared)
    committed: bool  # False when the agent's git actions made a commit unsafe (not pushed)


# -- begin, finish, commit ----------------------------------------------------------------
def begin_turn(
    host: Host, actor: Actor, *, gated: bool = True, lease_now: datetime | None = None
) -> Started:
    """Mark ``actor``'s turn running with this process's lease (recovering a stale one).

    ``gated=False`` is async role mode: the turn starts whoever's turn the state says.
    ``lease_now`` judges the old lease on its owner's clock (sync mode, clocks that differ).
    """
    with host.locked():
        current = host.read_state()
        now = host.clock()
        stale = current.check_lease(actor, host.owner, lease_now or now)
        if stale is not None:
            host.console.say(f"recovering stale turn (owner {stale})")
            host.log.event("recover", actor=actor, iteration=current.iteration, owner=stale)
        started = host.state_file.write(
            current.begin(actor, host.owner, now, host.config.lease_secs, gated=gated)
        )
    host.log.event(
        "turn_start", actor=actor, iteration=started.iteration, lease=started.lease_expires_at
    )
    return Started(started, host.branch)


def finish_turn(
    host: Host, started: Started, result: TurnResult, tree: TreePolicy, note: str = ""
) -> Finished:
    """Check what the agent did, then record ``result``: the state, then one commit
    (``note`` ends its subject: ``stamp --force`` names the lease it released).

    A problem with the agent's git actions fails the turn and leaves it uncommitted (a
    commit would land on the wrong branch or in the middle of a merge); the written state
    is committed by the next start, after the repair (``recovery.py``).
    """
    status = host.repo.status() if host.repo is not None else None
    problem = guard.git_problem(host, started.branch, started.claim, status)
    selection = _selection(host, result.actor, status)
    result = _failed(result, problem) if problem else _check_tree(host, result, selection, tree)
    with host.locked():
        found = _on_disk(host)
        rewritten = guard.state_problem(host.state_path, started.state, found)
        if rewritten:
            result = _failed(result, rewritten)
        head = status.head[:12] if status is not None and status.head else None
        pause = None if result.ok else unattended.pause_of(host, started.state, result)
        if isinstance(pause, str):  # it may not pause any longer: it fails, saying why
            result, pause = dataclasses.replace(result, failure=pause), None
        elif pause is not None:
            result = dataclasses.replace(result, status=Status.PAUSED)
        after = _transition(host, started.state, result, found or started.state, head, pause)
        host.state_file.write(after)
    if problem is None:
        title = _subject_of(result, after) + (f" {note}" if note else "")
        commit_turn(host, after, selection, title, result)
    host.log.event("turn_end", actor=result.actor, iteration=result.iteration, **result.to_json())
    if after.status == "paused":
        unattended.announce_pause(host, after)
    stop_reason = (found.exit_reason or "stop requested") if found and found.exit else None
    return Finished(after, result, stop_reason, committed=problem is None)


def _transition(
    host: Host,
    running: State,
    result: TurnResult,
    found: State,
    head: str | None,
    pause: PauseRecord | None,
) -> State:
    """The state after the turn; the stop request is cleared, keys others added are kept."""
    if result.ok:
        steps = workflow.resolve(host.config)
        after_step = steps.following(steps.index_for(running, result.actor))
        after = running.succeed(result.actor, host.clock(), head, after_step)
    elif pause is not None:
        after = running.paused(pause, host.clock())
    else:
        after = running.fail(_failure(result), host.clock())
    if host.config.router.enabled and result.prompt is not None:
        after = after.stamped(result.prompt, result.actor)
    spent = unattended.spent_after(running.spent, result)
    return dataclasses.replace(after, spent=spent, exit=False, exit_reason=None, extra=found.extra)


def _subject_of(result: TurnResult, after: State) -> str:
    return turn_subject(result.actor, result.ok, after, result.prompt)


def _selection(host: Host, actor: Actor, status: TreeStatus | None) -> Selection:
    return Selection() if status is None else selection_for(host, actor, status.dirty)


def _check_tree(
    host: Host, result: TurnResult, selection: Selection, tree: TreePolicy
) -> TurnResult:
    """Dirty paths the actor may not commit: a warning, or a failed turn (SPEC §9)."""
    left = selection.left_dirty
    if not left:
        return result
    shown = ", ".join(left[:10]) + (f" (+{len(left) - 10} more)" if len(left) > 10 else "")
    for path, why in selection.too_big:
        host.console.warn(f"not committed: {path} ({why})")
    message = f"{result.actor}'s turn left dirty paths it may not commit: {shown}"
    if tree == "warn":
        host.console.warn(f"{message}; they stay in the work tree")
        return result
    if not result.ok:
        return result
    return _failed(result, f"{message} (see autocommit.{result.actor}; nothing was discarded)")


def _failed(result: TurnResult, why: str) -> TurnResult:
    """The turn failed for ``why`` (an earlier failure of its own is kept after it)."""
    if result.status is Status.INTERRUPTED:
        return result
    failure = why if result.ok else f"{why}; also: {result.failure}"
    return dataclasses.replace(result, status=Status.FAILED, failure=failure)


def _on_disk(host: Host) -> State | None:
    """The state on disk now (an agent or a human may have added keys or a stop request);
    None if it is no longer a valid state file."""
    try:
        return host.read_state()
    except StateError:
        return None


def _failure(result: TurnResult) -> Failure:
    return Failure(
        actor=result.actor,
        iteration=result.iteration,
        prompt=result.prompt,
        reason=result.failure or result.status.value,
        log=result.log_path,
    )


def commit_turn(
    host: Host, after: State, selection: Selection, title: str, result: TurnResult | None
) -> str | None:
    """One local commit: the state file plus the selected paths, with explicit pathspecs."""
    if host.repo is None:
        return None
    paths = [host.state_path, *selection.commit]
    if host.policy.commit_dry_run:
        host.console.say(f"would commit ({title}): " + ", ".join(paths))
        return None
    lines = receipts.trailers(receipts.for_host(host, result)) if result is not None else []
    message = title + ("\n\n" + "\n".join(lines) if lines else "")
    untracked = [*selection.untracked, *([host.state_path] if host.state_needs_add() else [])]
    sha = host.repo.commit_paths(paths, untracked, host.log.redactor.text(message))
    host.committed()
    host.console.detail(f"committed {sha}: {title}")
    return sha


# -- stop requests (SPEC §3.5): before a turn, and right after it --------------------------
def honour_pending_stop(
    host: Host, actor: Actor | None, publish: Callable[[str], object] | None = None
) -> bool:
    """If the state on disk asks to stop: clear the request, commit (and ``publish``)
    that, say ``stopping: <reason>``; True then."""
    found = host.state_file.read_if_present()
    if found is None or not found.exit:
        return False  # the common case: one read, no lock
    with host.locked():
        current = host.read_state()
        reason = current.exit_reason or "stop requested"
        cleared = host.state_file.write(current.with_stop(None), host.clock())
    title = stop_subject(cleared.iteration, reason, requested=False)
    commit_turn(host, cleared, Selection(), title, None)
    if publish is not None:
        publish("the stop")
    _announce_stop(host, reason, actor, cleared.iteration)
    return True


def stopped_after(host: Host, finished: Finished) -> bool:
    """Judge a recorded turn: raise if it failed; True if a stop was asked during it."""
    raise_if_failed(finished.result)
    if finished.stop_reason is None:
        return False
    _announce_stop(host, finished.stop_reason, finished.result.actor, finished.state.iteration)
    return True


def _announce_stop(host: Host, reason: str, actor: Actor | None, iteration: int) -> None:
    host.log.event("stop", actor=actor, iteration=iteration, reason=reason)
    host.console.say(f"stopping: {reason}")
    unattended.notify(host, "stop", f"stopping: {reason}", actor=actor, iteration=iteration)


def raise_if_failed(result: TurnResult) -> None:
    """Turn a recorded failure into the exception that ends the run."""
    if result.status is Status.INTERRUPTED:
        raise Interrupted(f"{result.actor} turn interrupted at iteration {result.iteration}")
    if not result.ok:
        raise TurnFailed(describe_failure(result))


def _notify_failure(host: Host, finished: Finished) -> None:
    result = finished.result
    if result.ok or result.status is Status.INTERRUPTED:
        return
    failure = finished.state.failure
    unattended.notify(
        host, "failure", describe_failure(result), actor=result.actor,
        iteration=result.iteration, kind=result.kind.value if result.kind else None,
        reason=failure.reason if failure else result.failure,
    )  # fmt: skip


def describe_failure(result: TurnResult) -> str:
    """``galph turn failed at iteration 3 (prompt x.md, agent codex): why; log: path``."""
    detail = ", ".join(
        part
        for part in (
            f"prompt {result.prompt}" if result.prompt else "",
            f"agent {result.agent}" if result.agent else "",
        )
        if part
    )
    where = f" ({detail})" if detail else ""
    log = f"; log: {result.log_path}" if result.log_path else ""
    return (
        f"{result.actor} turn failed at iteration {result.iteration}{where}: {result.failure}{log}"
    )


# -- one turn, and the loop of every mode ----------------------------------------------------
def play(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    start: Callable[[Actor], Started],
    tree: TreePolicy,
    interrupt: Interrupt | None = None,
) -> Finished:
    """Start (``start``: begin or claim), run and finish one turn; a transient failure
    is run again first, up to ``agent.retries`` times (SPEC §14.3).

    The result is recorded (state and commit) but not judged: callers publish it first,
    then call ``stopped_after``.
    """
    started = start(actor)

    def attempt() -> TurnResult:
        return run_turn(actor, started.state, ctx, executor, host.log, clock=host.clock)

    result = unattended.retried(host, attempt(), attempt, interrupt)
    return finish_turn(host, started, result, tree)


class Mode(Protocol):
    """What differs between combined, async and sync mode around the same turn."""

    tree: TreePolicy

    def prepare(self, actor: Actor) -> bool:
        """Everything before the turn starts (stop check, waiting); False: stop here."""
        ...

    def start(self, actor: Actor) -> Started:
        """Begin or claim ``actor``'s turn."""
        ...

    def publish(self, finished: Finished) -> bool:
        """Publish the record; True if that brought in a change made elsewhere."""
        ...

    def stop_check(self, actor: Actor) -> bool:
        """Honour a pending stop request; True if the run stops."""
        ...


def run_loop(
    host: Host,
    mode: Mode,
    schedule: Iterable[Actor],
    turn: tuple[RouterContext, PromptExecutor, Interrupt],
) -> int:
    """The loop of every mode: for each scheduled actor, prepare → play → publish → judge.

    A paused turn (SPEC §14.2) is prepared, waited out and played again before the
    schedule moves on; a mode with a ``renew()`` method has it called at each heartbeat of
    that wait (sync mode's lease renewal), and one with ``follow()`` has the remote watched
    for a stop request; a stop ends the wait. Budgets are checked at both check points.
    """
    ctx, executor, interrupt = turn
    renew = getattr(mode, "renew", None)
    stop = unattended.StopProbe(host, getattr(mode, "follow", None))
    for actor in schedule:
        finished = None
        while finished is None or finished.state.status == "paused":  # SPEC §14.2
            if finished is not None and finished.stop_reason is not None:
                _announce_stop(host, finished.stop_reason, actor, finished.state.iteration)
                return 0  # the state stays paused: a restart waits out the rest
            interrupt.check()
            if not mode.prepare(actor):
                return 0
            current = host.read_state()  # after prepare: in sync mode it brings changes in
            if unattended.budget_stop(host, actor, current):
                return 0
            if unattended.wait_out_pause(host, actor, current, interrupt, renew, stop):
                mode.stop_check(actor)
                return 0  # the state stays paused: a restart waits out the rest
            finished = play(
                host, actor, ctx, executor, start=mode.start, tree=mode.tree, interrupt=interrupt
            )
            brought_in = mode.publish(finished)
        _notify_failure(host, finished)
        if stopped_after(host, finished) or (brought_in and mode.stop_check(actor)):
            return 0
        if unattended.budget_stop(host, actor, finished.state):
            return 0
    unattended.notify(host, "done", "the loop ran all its iterations")
    return 0

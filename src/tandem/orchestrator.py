"""The loops: combined mode (SPEC §7) and async role mode (SPEC §8.6).

Each turn is begin → ``run_turn`` → finish, through ``turns.py``; a failed turn stops the
run at once with one line (no retries). Sync role mode lives in ``sync.py`` and plays its
turns through ``play_turn`` too.
"""

from __future__ import annotations

from tandem.errors import Interrupted, TurnFailed
from tandem.host import Host
from tandem.interrupts import Interrupt
from tandem.router import RouterContext
from tandem.runner import PromptExecutor, Status, TurnResult, run_turn
from tandem.state import ACTORS, Actor, State
from tandem.turns import (
    Finished,
    LeftoverPolicy,
    announce_stop,
    begin_turn,
    finish_turn,
    pending_stop,
    record_stop,
)


def run_combined(
    host: Host,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    iterations: int,
    interrupt: Interrupt,
) -> int:
    """galph then ralph for each iteration, resuming where the state says; exit code."""
    state = host.read_state(create=True)
    host.log.event("run_start", iteration=state.iteration, mode="combined", iterations=iterations)
    for _ in range(iterations):
        for actor in ACTORS:
            if actor == "galph" and state.expected_actor != "galph":
                continue  # a restart after galph's turn resumes with ralph (SPEC §7.2)
            after = _checked_turn(host, actor, ctx, executor, interrupt, gated=True)
            if after is None:
                return 0
            state = after
    host.log.event("run_end", iteration=state.iteration, mode="combined")
    return 0


def run_async_role(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    iterations: int,
    interrupt: Interrupt,
) -> int:
    """``iterations`` turns of ``actor`` back to back, no turn gating (SPEC §8.6)."""
    host.read_state(create=True)
    host.log.event("run_start", actor=actor, mode="role", iterations=iterations)
    for _ in range(iterations):
        if _checked_turn(host, actor, ctx, executor, interrupt, gated=False) is None:
            return 0
    host.log.event("run_end", actor=actor, mode="role")
    return 0


def _checked_turn(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    interrupt: Interrupt,
    *,
    gated: bool,
) -> State | None:
    """Stop check, one turn, stop check; the new state, or None if the run stops here."""
    interrupt.check()
    reason = pending_stop(host)
    if reason is not None:
        record_stop(host, reason, actor)
        return None
    finished = play_turn(host, actor, ctx, executor, gated=gated, leftovers="warn")
    if host.push:
        from tandem.sync import Remote, publish

        publish(host, Remote.of(host))
    return None if stopped_after(host, finished) else finished.state


def stopped_after(host: Host, finished: Finished) -> bool:
    """Judge a recorded turn: raise if it failed; True if a stop was asked during it."""
    raise_if_failed(finished.result)
    if finished.stop_reason is None:
        return False
    announce_stop(host, finished.stop_reason, finished.result.actor, finished.state.iteration)
    return True


def play_turn(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    gated: bool,
    leftovers: LeftoverPolicy,
    running: State | None = None,
) -> Finished:
    """Begin (unless ``running`` was claimed already), run and finish one turn.

    The result is recorded (state and commit) but not judged: callers publish it first,
    then call ``stopped_after``.
    """
    if running is None:
        running = begin_turn(host, actor, gated=gated)
    result = run_turn(actor, running, ctx, executor, host.log, clock=host.clock)
    return finish_turn(host, running, result, leftovers)


def raise_if_failed(result: TurnResult) -> None:
    """Turn a recorded failure into the exception that ends the run."""
    if result.status is Status.INTERRUPTED:
        raise Interrupted(f"{result.actor} turn interrupted at iteration {result.iteration}")
    if not result.ok:
        raise TurnFailed(describe_failure(result))


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

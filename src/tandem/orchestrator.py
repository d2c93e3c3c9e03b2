"""The local loops: combined mode (SPEC §7) and async role mode (SPEC §8.6).

Both are ``turns.run_loop`` with a mode that begins turns locally; a failed turn stops the
run at once with one line (no retries). With ``--push`` a checked ``Session`` publishes
each record. Sync role mode is ``sync.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from tandem.autocommit import Selection
from tandem.errors import StateError
from tandem.execution import PromptExecutor
from tandem.host import Host, TreePolicy
from tandem.interrupts import Interrupt
from tandem.recovery import recover
from tandem.router import RouterContext
from tandem.session import Session
from tandem.state import Actor, State
from tandem.subjects import start_subject
from tandem.turns import Finished, Started, begin_turn, commit_turn, honour_pending_stop, run_loop
from tandem.workflow import Workflow


class _LocalMode:
    """Turns begun in this work tree; pushed after each one with ``--push``."""

    def __init__(self, host: Host, *, gated: bool) -> None:
        self.host = host
        self.gated = gated
        self.tree: TreePolicy = host.policy.tree(sync=False)
        self.session = Session.open(host) if host.policy.push else None
        if self.session is None:
            recover(host, sync=False)

    def prepare(self, actor: Actor) -> bool:
        return not self.stop_check(actor)

    def start(self, actor: Actor) -> Started:
        return begin_turn(self.host, actor, gated=self.gated)

    def publish(self, finished: Finished) -> bool:
        if self.session is None or not finished.committed:
            return False
        return self.session.publish()

    def stop_check(self, actor: Actor) -> bool:
        publish = self.session.publish if self.session is not None else None
        return honour_pending_stop(self.host, actor, publish)


def run_combined(
    host: Host,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    iterations: int,
    interrupt: Interrupt,
    start: int | None = None,
) -> int:
    """The workflow's steps for each iteration, resuming where the state says (or at step
    ``start`` of the current iteration); exit code."""
    mode = _LocalMode(host, gated=True)
    workflow = ctx.workflow
    state = host.read_state(create=True)
    if start is not None:
        state = _start_at(host, workflow, state, start)
    workflow.check(state, host.state_file.display)
    host.log.event("run_start", iteration=state.iteration, mode="combined", iterations=iterations)
    schedule = _combined_schedule(workflow, state.position, iterations)
    code = run_loop(host, mode, schedule, (ctx, executor, interrupt))
    host.log.event("run_end", mode="combined")
    return code


def _combined_schedule(workflow: Workflow, first: int, iterations: int) -> Iterator[Actor]:
    """The workflow's steps per iteration; a restart resumes at the state's step (SPEC
    §7.2, §18). Every turn before the next one succeeded (a failure ends the run), so the
    order is known from the start."""
    for number in range(iterations):
        for index, step in enumerate(workflow.steps):
            if number > 0 or index >= first:
                yield step.actor


def _start_at(host: Host, workflow: Workflow, state: State, index: int) -> State:
    """Move the current iteration to step ``index`` (``--start-prompt``), logged and
    committed; a running turn is not moved."""
    if state.status.startswith("running-"):
        raise StateError(
            f"--start-prompt: {state.expected_actor}'s turn is running (status {state.status})",
            "let it finish (or restart without --start-prompt to recover it), then start again",
        )
    with host.locked():
        moved = host.state_file.write(state.at_step(workflow.entry(index)), host.clock())
    shown = workflow.describe(index)
    host.console.say(f"starting iteration {moved.iteration} at {shown}")
    host.log.event("start_step", actor=moved.expected_actor, iteration=moved.iteration, step=index)
    commit_turn(host, moved, Selection(), start_subject(moved.iteration, shown), None)
    return moved


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
    mode = _LocalMode(host, gated=False)
    host.read_state(create=True)
    host.log.event("run_start", actor=actor, mode="role", iterations=iterations)
    code = run_loop(host, mode, [actor] * iterations, (ctx, executor, interrupt))
    host.log.event("run_end", actor=actor, mode="role")
    return code

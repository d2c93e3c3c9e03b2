"""The local loops: combined mode (SPEC §7) and async role mode (SPEC §8.6).

Both are ``turns.run_loop`` with a mode that begins turns locally; a failed turn stops the
run at once with one line (no retries). With ``--push`` a checked ``Session`` publishes
each record. Sync role mode is ``sync.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from tandem.host import Host, TreePolicy
from tandem.interrupts import Interrupt
from tandem.recovery import recover
from tandem.router import RouterContext
from tandem.runner import PromptExecutor
from tandem.session import Session
from tandem.state import ACTORS, Actor
from tandem.turns import Finished, Started, begin_turn, honour_pending_stop, run_loop


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
) -> int:
    """galph then ralph for each iteration, resuming where the state says; exit code."""
    mode = _LocalMode(host, gated=True)
    state = host.read_state(create=True)
    host.log.event("run_start", iteration=state.iteration, mode="combined", iterations=iterations)
    schedule = _combined_schedule(state.expected_actor, iterations)
    code = run_loop(host, mode, schedule, (ctx, executor, interrupt))
    host.log.event("run_end", mode="combined")
    return code


def _combined_schedule(first: Actor, iterations: int) -> Iterator[Actor]:
    """galph, ralph per iteration; a restart after galph's turn resumes with ralph (SPEC
    §7.2). Every turn before the next one succeeded (a failure ends the run), so the order
    is known from the start."""
    for number in range(iterations):
        for actor in ACTORS:
            if number == 0 and actor == "galph" and first != "galph":
                continue
            yield actor


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

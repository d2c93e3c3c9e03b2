"""Sync via git: two machines hand the turn to each other through the remote (SPEC §8).

One turn of actor A: catch up with the remote → publish pending commits → stop check →
wait for A's turn → claim it (pushed before the agent starts) → run → finish commit →
push. The remote decides every race: a claim is a fast-forward push, so of two processes
that claim the same turn exactly one push lands; the other sees "claimed elsewhere".
The remote steps are ``session.Session``'s, the wait is ``wait.Waiter``'s; the turn and
the loop are ``turns.play`` and ``turns.run_loop``, as in every mode. From the claim to
the finish push the owner renews its lease through the remote (``renewal.Renewer``).
"""

from __future__ import annotations

from tandem.execution import PromptExecutor
from tandem.host import Host, TreePolicy
from tandem.interrupts import Interrupt
from tandem.renewal import Renewer
from tandem.router import RouterContext
from tandem.session import Session
from tandem.state import Actor, State
from tandem.turns import Finished, Started, honour_pending_stop, run_loop
from tandem.wait import Waiter, follow


class _SyncMode:
    """Role mode through the remote: each turn waited for, claimed, and pushed."""

    def __init__(self, session: Session, waiter: Waiter) -> None:
        self.session = session
        self.waiter = waiter
        self.tree: TreePolicy = session.host.policy.tree(sync=True)
        self._seen: State | None = None
        self._renewer: Renewer | None = None

    def prepare(self, actor: Actor) -> bool:
        self.session.catch_up()
        self.session.publish("pending commits")
        if self.stop_check(actor):
            return False
        self._seen = self.waiter.wait()
        return self._seen is not None

    def start(self, actor: Actor) -> Started:
        assert self._seen is not None, "prepare() comes first"
        started = self.session.claim(actor, self._seen, self.waiter.lease_now())
        self._renewer = self.session.renewer(started.state)
        self._renewer.start()
        return started

    def publish(self, finished: Finished) -> bool:
        self.stop_renewing()
        return finished.committed and self.session.publish_turn()

    def stop_renewing(self) -> None:
        """The turn is over (recorded, or ended by an error): no more renewals."""
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None

    def renew(self) -> None:
        """A paused turn keeps its lease (SPEC §14.2): renewed at each heartbeat of the pause."""
        state = self.session.host.read_state()
        if state.status == "paused" and state.lease_owner is not None:
            self.session.renewer(state).renew()

    def follow(self, known: str | None) -> str | None:
        """A look at the remote during a pause, for a stop pushed from another clone."""
        return follow(self.session, known)

    def stop_check(self, actor: Actor) -> bool:
        return honour_pending_stop(self.session.host, actor, self.session.publish)


def run_sync_role(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    iterations: int,
    interrupt: Interrupt,
    wait_on_peer_failure: bool,
) -> int:
    """``iterations`` turns of ``actor``, each waited for and claimed through the remote."""
    session = Session.open(
        host, actor=actor, tree_fix=f"commit or move them first (see autocommit.{actor})"
    )
    host.log.event(
        "run_start", actor=actor, mode="sync", iterations=iterations, remote=session.remote.shown
    )
    session.outage.interrupt = interrupt
    mode = _SyncMode(session, Waiter(session, actor, interrupt, wait_on_peer_failure))
    try:
        code = run_loop(host, mode, [actor] * iterations, (ctx, executor, interrupt))
    finally:
        mode.stop_renewing()
    host.log.event("run_end", actor=actor, mode="sync")
    return code

"""What the turn loop does with a turn's outcome when nobody watches (SPEC §14, §16).

The policy is ``limits.py`` (pure); this module applies it to a ``Host``:

* ``pause_of``: a turn that ended with ``usage_limit``/``rate_limit`` becomes a
  ``PauseRecord`` for the state (``paused``), or a failure with its kind once
  ``limits.max_pause_secs`` is used up (or with ``limits.pause: false``).
* ``wait_out_pause``: before the same actor's turn runs again, sleep until the pause's
  ``until``, interruptibly (Ctrl-C: exit 130, the state stays ``paused``), repeating the
  console line at each heartbeat. ``renew`` is called at every heartbeat: a sync run
  renews its lease there, so a paused turn keeps its owner. A stop request ends the
  wait within one ``sync.poll_interval`` (``StopProbe``: the state file, and in sync
  mode the remote, looked at cheaply); the caller honours it like any other.
* ``retried``: a ``transient`` failure reruns the turn in the same tree after 30 s,
  60 s ... (``agent.retries``, ``agent.retry_delay_secs``), each attempt an event; what
  the failed attempts spent stays on the turn (``TurnResult.earlier``).
* ``spent_after`` adds a turn's receipt (its router run and retried attempts included)
  to the state's ``spent``; ``budget_stop`` ends the run at a check point once a budget
  is reached.
* ``notify``: the event for ``notify:`` (failure, pause, budget, stop, done).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from tandem import limits
from tandem.execution import Status
from tandem.host import Host
from tandem.interrupts import Interrupt
from tandem.limits import GiveUp, PauseRecord, Spent
from tandem.notify import event
from tandem.runner import TurnResult
from tandem.state import Actor, State

_rng = random.SystemRandom()  # jitter only; no state of ours is kept in it


def notify(host: Host, kind: str, message: str, /, **fields: Any) -> None:
    """Hand one event to the notifier, if ``notify:`` configured one."""
    if host.notifier is not None:
        host.notifier.send(event(kind, message, **fields))


# -- pauses (SPEC §14.2) -----------------------------------------------------------------
def pause_of(host: Host, running: State, result: TurnResult) -> PauseRecord | str | None:
    """The pause for a turn that hit a limit, a failure reason when it may not pause
    (any more), or None: not a limit."""
    kind = result.kind.value if result.kind is not None else None
    if kind not in limits.PAUSED_KINDS or result.status is not Status.FAILED:
        return None
    config = host.config.limits
    if not config.pause:
        return None
    now = host.clock().timestamp()
    window = result.agent_result.window if result.agent_result is not None else None
    before = running.pause if _same_turn(running.pause, result) else None
    since = before.since if before is not None else now
    plan = limits.plan_pause(
        "usage_limit" if kind == "usage_limit" else "rate_limit",
        agent=result.agent or "the agent",
        now=now,
        rng=_rng,
        paused_secs=now - since,
        waits=before.waits if before is not None else 0,
        reset_at=result.reset_at.timestamp() if result.reset_at is not None else None,
        retry_after=result.retry_after,
        detail=window,
        max_pause_secs=config.max_pause_secs,
    )
    if isinstance(plan, GiveUp):
        return f"{plan.reason} ({result.failure})" if result.failure else plan.reason
    waits = before.waits + 1 if before is not None else 1
    return PauseRecord(
        result.actor, result.iteration, result.prompt, kind, plan.reason, plan.until, since, waits,
        window,
    )  # fmt: skip


def _same_turn(pause: PauseRecord | None, result: TurnResult) -> bool:
    return pause is not None and (pause.actor, pause.iteration) == (result.actor, result.iteration)


def announce_pause(host: Host, after: State) -> None:
    """Say and record a pause just written: the console line, an event, a notification."""
    pause = after.pause
    assert pause is not None
    line = _line(pause, host.clock().timestamp())
    host.console.say(line)
    fields = pause.to_json()
    host.log.event("pause", **fields)
    notify(host, "pause", line, **fields)


def _line(pause: PauseRecord, now: float) -> str:
    until = limits.Pause("usage_limit", pause.until, pause.reason, backoff=False)
    return until.console_line(now)


def wait_out_pause(
    host: Host,
    actor: Actor,
    state: State,
    interrupt: Interrupt,
    renew: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> bool:
    """If ``state`` (just read) says ``actor``'s turn is paused, sleep until its ``until``;
    True if ``stop`` saw a stop request first (the state stays ``paused``: a restart waits
    on)."""
    pause = state.pause
    if state.status != "paused" or pause is None or state.expected_actor != actor:
        return False
    now = host.clock().timestamp()
    if pause.until > now:
        host.console.say(_line(pause, now))
    beat, poll = host.config.agent.heartbeat_secs, host.config.sync.poll_interval
    last = time.monotonic()
    while (left := pause.until - host.clock().timestamp()) > 0:
        step = min(left, poll, beat) if beat > 0 else min(left, poll)
        if interrupt.sleep(step):
            interrupt.check()
        if time.monotonic() - last >= beat > 0:
            last = time.monotonic()
            host.console.say(_line(pause, host.clock().timestamp()))
            if renew is not None:
                renew()
        if stop is not None and stop():
            host.log.event("pause_stop", actor=actor, iteration=state.iteration)
            return True
    host.log.event("pause_end", actor=actor, iteration=state.iteration, kind=pause.kind)
    return False


class StopProbe:
    """Has a stop been asked for while a turn waits out its pause?

    The state file is read each time (``tandem stop`` writes it). In sync mode ``follow``
    looks at the remote first, as cheaply as the waiting peer does, which brings in a stop
    pushed from another clone. An unreachable remote is no stop.
    """

    def __init__(self, host: Host, follow: Callable[[str | None], str | None] | None) -> None:
        self.host = host
        self.follow = follow  # sync mode's cheap look at the remote (``wait.follow``)
        self._known: str | None = None

    def __call__(self) -> bool:
        if self.follow is not None:
            self._known = self.follow(self._known)
        return self.host.read_state().exit


# -- retries (SPEC §14.3) ----------------------------------------------------------------
def retried(
    host: Host,
    result: TurnResult,
    rerun: Callable[[], TurnResult],
    interrupt: Interrupt | None,
) -> TurnResult:
    """Rerun a turn that failed with a transient error, up to ``agent.retries`` times."""
    retries, first = host.config.agent.retries, host.config.agent.retry_delay_secs
    done, earlier = 0, list(result.earlier)
    while result.status is Status.FAILED and result.kind is not None:
        delay = limits.retry_delay(result.kind.value, done, retries, _rng, first)
        if delay is None:
            return result
        why = f"{result.kind.value}: {result.failure}"
        host.console.say(limits.retry_line(done, retries, delay, why))
        host.log.event(
            "retry", actor=result.actor, iteration=result.iteration, attempt=done + 2,
            delay_secs=round(delay, 3), reason=why,
        )  # fmt: skip
        if interrupt is not None and interrupt.sleep(delay):
            return dataclasses.replace(result, status=Status.INTERRUPTED, failure="interrupted")
        if interrupt is None:
            time.sleep(delay)
        done += 1
        earlier += [run for run in (result.router_result, result.agent_result) if run is not None]
        result = dataclasses.replace(rerun(), earlier=tuple(earlier))
    return result


# -- budgets (SPEC §14.4) ----------------------------------------------------------------
def spent_after(spent: Spent, result: TurnResult) -> Spent:
    """``spent`` plus one recorded turn, its router run and its retried attempts."""
    for run in (*result.earlier, result.router_result):
        if run is not None:
            spent = spent.add(run.cost_usd, limits.run_tokens(run.usage), turns=0)
    run = result.agent_result
    if run is None:
        return spent.add(None, 0)
    return spent.add(run.cost_usd, limits.run_tokens(run.usage))


def budget_stop(host: Host, actor: Actor | None, state: State) -> bool:
    """At a check point: True (said, logged, notified) if ``state.spent`` reached a budget."""
    config = host.config.limits
    budget = limits.Budget(config.max_cost_usd, config.max_tokens, config.max_turns)
    reached = budget.reached(state.spent)
    if reached is None:
        return False
    spent = state.spent.to_json()
    host.log.event(
        "stop", actor=actor, iteration=state.iteration, reason=reached, kind="budget", spent=spent
    )
    host.console.say(f"stopping: {reached}")
    fields: dict[str, Any] = {"actor": actor, "iteration": state.iteration, "spent": spent}
    notify(host, "budget", reached, **fields)
    notify(host, "stop", f"stopping: {reached}", kind="budget", **fields)
    return True

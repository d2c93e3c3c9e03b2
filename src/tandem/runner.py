"""One turn, the same in every mode: route, execute, log, return a ``TurnResult``.

``run_turn`` writes no state and runs no git (SPEC §5): callers record the result through
``turns.py``. The ``PromptExecutor`` seam (``execution``) is between a turn and the agent
that runs it; production uses ``agents.executor.AgentExecutor``, tests pass fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem.errors import RoutingError
from tandem.execution import (
    AgentResult,
    ExecResult,
    FailureKind,
    PromptExecutor,
    Status,
    TurnContext,
)
from tandem.logs import Logbook
from tandem.router import Decision, RouterContext, decide, validate_router_prompt
from tandem.state import Actor, State
from tandem.times import format_time, utcnow

__all__ = ["TurnResult", "run_turn"]


@dataclass(frozen=True)
class TurnResult:
    """The outcome of one turn, for state, commits, events and the console.

    ``kind`` says why a failed turn failed (SPEC §14.1); ``reset_at``/``retry_after`` are
    the agent's word on when to try again. ``router_result`` is the router prompt's run
    (cost and tokens count for the turn too), ``earlier`` the reports of attempts that
    failed before it and were retried (SPEC §14.3): what they spent counts as well.
    """

    actor: Actor
    iteration: int
    status: Status
    started_at: datetime
    ended_at: datetime
    prompt: str | None = None
    source: str | None = None
    route_reason: str | None = None  # why this source and prompt: the router's word, a stamp
    agent: str | None = None
    exit_code: int | None = None
    failure: str | None = None  # why the turn failed
    log_path: str | None = None
    agent_result: AgentResult | None = field(default=None)  # what the agent reported
    kind: FailureKind | None = None
    reset_at: datetime | None = None
    retry_after: float | None = None
    router_result: AgentResult | None = None
    turn_id: str | None = None
    earlier: tuple[AgentResult, ...] = ()

    @property
    def ok(self) -> bool:
        """True if the turn succeeded."""
        return self.status is Status.OK

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """The result as recorded in the event log."""
        return {
            "status": self.status.value,
            "prompt": self.prompt,
            "source": self.source,
            "reason": self.route_reason,
            "agent": self.agent,
            "exit_code": self.exit_code,
            "failure": self.failure,
            "kind": self.kind.value if self.kind else None,
            "reset_at": format_time(self.reset_at) if self.reset_at else None,
            "retry_after": self.retry_after,
            "log": self.log_path,
            "started_at": format_time(self.started_at),
            "ended_at": format_time(self.ended_at),
            "duration_secs": round(self.duration, 3),
            "result": self.agent_result.to_json() if self.agent_result else None,
            "router_result": self.router_result.to_json() if self.router_result else None,
            "earlier_results": [earlier.to_json() for earlier in self.earlier],
            "turn_id": self.turn_id,
        }


def run_turn(
    actor: Actor,
    state: State,
    ctx: RouterContext,
    executor: PromptExecutor,
    log: Logbook,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> TurnResult:
    """Route ``actor``'s turn, run the chosen prompt, and describe what happened."""
    started = clock()
    iteration = state.iteration
    turn_id = uuid.uuid4().hex
    router_runs: list[ExecResult] = []

    def ask_router() -> str | None:
        done = _run_router_prompt(actor, iteration, ctx, executor, log, turn_id)
        router_runs.append(done)
        return done.answer if done.ok else None

    try:
        decision = decide(actor, state, ctx, ask_router)
    except RoutingError as exc:
        return _routing_failed(actor, iteration, started, str(exc), log, clock, router_runs)
    router = router_runs[0] if router_runs else None
    if router is not None and not router.ok:
        return _router_failed(actor, iteration, started, clock(), ctx, router, turn_id)
    log.event("route", actor=actor, iteration=iteration, **_route_fields(decision))
    agent = executor.agent_for(actor, decision.prompt)
    log.console.say(
        f"iteration {iteration}: {actor} runs {decision.prompt} with {agent} "
        f"({decision.source}: {decision.reason})"
    )
    turn_log = log.open_turn(actor, iteration, Path(decision.prompt).stem)
    try:
        turn_log.fields("turn", _header(decision, agent, started))
        context = TurnContext(actor, iteration, decision.prompt, turn_log, agent, turn_id=turn_id)
        done = executor.execute(decision.path, context)
        ended = clock()
        result = _result(decision, done, started, ended, turn_log.display, router, turn_id)
        turn_log.fields("end of turn", _footer(result))
    finally:
        turn_log.close()
    return result


def _run_router_prompt(
    actor: Actor,
    iteration: int,
    ctx: RouterContext,
    executor: PromptExecutor,
    log: Logbook,
    turn_id: str,
) -> ExecResult:
    name, path = validate_router_prompt(ctx)
    agent = executor.agent_for(actor, name)
    log.console.say(f"iteration {iteration}: asking the router prompt {name} with {agent}")
    router_log = log.open_turn(actor, iteration, Path(name).stem)
    try:
        router_log.fields("router", {"iteration": iteration, "actor": actor, "prompt": name})
        context = TurnContext(actor, iteration, name, router_log, agent, "router", turn_id)
        done = executor.execute(path, context)
        router_log.fields("router answer", {"ok": done.ok, "answer": repr(done.answer)})
    finally:
        router_log.close()
    return done


def _router_failed(
    actor: Actor,
    iteration: int,
    started: datetime,
    ended: datetime,
    ctx: RouterContext,
    failed: ExecResult,
    turn_id: str,
) -> TurnResult:
    return TurnResult(
        actor,
        iteration,
        failed.status,
        started,
        ended,
        agent=failed.agent,
        exit_code=failed.exit_code,
        failure=f"router prompt {ctx.router_prompt}: {failed.failure}",
        kind=failed.kind,
        reset_at=failed.reset_at,
        retry_after=failed.retry_after,
        router_result=failed.result,
        turn_id=turn_id,
    )


def _routing_failed(
    actor: Actor,
    iteration: int,
    started: datetime,
    message: str,
    log: Logbook,
    clock: Callable[[], datetime],
    router_runs: list[ExecResult],
) -> TurnResult:
    turn_log = log.open_turn(actor, iteration, "route")
    try:
        turn_log.fields("routing error", {"iteration": iteration, "actor": actor, "error": message})
    finally:
        turn_log.close()
    log.event("route_error", actor=actor, iteration=iteration, error=message)
    return TurnResult(
        actor,
        iteration,
        Status.FAILED,
        started,
        clock(),
        failure=f"routing failed: {message}",
        log_path=turn_log.display,
        kind=FailureKind.AGENT,
        router_result=router_runs[0].result if router_runs else None,
    )


def _route_fields(decision: Decision) -> dict[str, Any]:
    return {"prompt": decision.prompt, "source": decision.source, "reason": decision.reason}


def _header(decision: Decision, agent: str, started: datetime) -> dict[str, Any]:
    return {
        "iteration": decision.iteration,
        "actor": decision.actor,
        "prompt": decision.prompt,
        "source": decision.source,
        "reason": decision.reason,
        "agent": agent,
        "start": format_time(started),
    }


def _result(
    decision: Decision,
    done: ExecResult,
    started: datetime,
    ended: datetime,
    log_path: str,
    router: ExecResult | None,
    turn_id: str,
) -> TurnResult:
    return TurnResult(
        decision.actor,
        decision.iteration,
        done.status,
        started,
        ended,
        prompt=decision.prompt,
        source=decision.source,
        route_reason=decision.reason,
        agent=done.agent,
        exit_code=done.exit_code,
        failure=None if done.ok else done.failure or "failed",
        log_path=log_path,
        agent_result=done.result,
        kind=None if done.ok else done.kind or FailureKind.AGENT,
        reset_at=done.reset_at,
        retry_after=done.retry_after,
        router_result=router.result if router else None,
        turn_id=turn_id,
    )


def _footer(result: TurnResult) -> dict[str, Any]:
    footer: dict[str, Any] = {
        "result": result.status.value,
        "exit code": result.exit_code,
        "duration": f"{result.duration:.1f}s",
    }
    if result.failure:
        footer["failure"] = result.failure
        footer["kind"] = result.kind.value if result.kind else None
    if result.agent_result is not None:
        footer["final result"] = result.agent_result.to_json()
    return footer

"""One turn, the same in every mode: route, execute, log, return a ``TurnResult``.

``run_turn`` writes no state and runs no git (SPEC §5): callers record the result through
``turns.py``. ``PromptExecutor`` is the seam between a turn and the agent that runs it;
production uses ``agents.executor.AgentExecutor``, tests pass fakes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tandem.agents.base import AgentResult
from tandem.errors import RoutingError
from tandem.logs import Logbook, TurnLog
from tandem.router import Decision, RouterContext, decide, validate_router_prompt
from tandem.state import Actor, State, format_time, utcnow


class Status(enum.Enum):
    """How a turn ended."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class TurnContext:
    """What an executor knows about the run it is asked for."""

    actor: Actor
    iteration: int
    prompt: str  # normalized name, e.g. "supervisor.md"
    log: TurnLog
    purpose: str = "turn"  # "turn" or "router"


@dataclass(frozen=True)
class ExecResult:
    """What an executor reports about one run of a prompt."""

    agent: str
    ok: bool
    exit_code: int | None = None
    reason: str | None = None  # why it failed
    interrupted: bool = False
    answer: str | None = None  # final result text, or stdout of a plain agent
    result: AgentResult | None = None


class PromptExecutor(Protocol):
    """Runs one prompt file for one turn."""

    def agent_for(self, actor: Actor, prompt: str) -> str:
        """The name of the agent that would run ``prompt`` for ``actor``."""
        ...

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        """Run ``prompt_path``; stream output into ``turn.log``; never raise for agent faults."""
        ...


@dataclass(frozen=True)
class TurnResult:
    """The outcome of one turn, for state, commits, events and the console."""

    actor: Actor
    iteration: int
    status: Status
    started_at: datetime
    ended_at: datetime
    prompt: str | None = None
    source: str | None = None
    reason: str | None = None  # why this prompt
    agent: str | None = None
    exit_code: int | None = None
    failure: str | None = None  # why the turn failed
    log_path: str | None = None
    result: AgentResult | None = field(default=None)

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
            "reason": self.reason,
            "agent": self.agent,
            "exit_code": self.exit_code,
            "failure": self.failure,
            "log": self.log_path,
            "started_at": format_time(self.started_at),
            "ended_at": format_time(self.ended_at),
            "duration_secs": round(self.duration, 3),
            "result": self.result.to_json() if self.result else None,
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
    router_failure: list[ExecResult] = []

    def ask_router() -> str | None:
        done = _run_router_prompt(actor, iteration, ctx, executor, log)
        if not done.ok:
            router_failure.append(done)
        return done.answer if done.ok else None

    try:
        decision = decide(actor, state, ctx, ask_router)
    except RoutingError as exc:
        return _routing_failed(actor, iteration, started, str(exc), log, clock)
    if router_failure:
        failed = router_failure[0]
        status = Status.INTERRUPTED if failed.interrupted else Status.FAILED
        return TurnResult(
            actor,
            iteration,
            status,
            started,
            clock(),
            agent=failed.agent,
            exit_code=failed.exit_code,
            failure=f"router prompt {ctx.router_prompt}: {failed.reason}",
        )
    log.event("route", actor=actor, iteration=iteration, **_route_fields(decision))
    agent = executor.agent_for(actor, decision.prompt)
    log.console.say(
        f"iteration {iteration}: {actor} runs {decision.prompt} with {agent} "
        f"({decision.source}: {decision.reason})"
    )
    turn_log = log.open_turn(actor, iteration, Path(decision.prompt).stem)
    try:
        turn_log.fields("turn", _header(decision, agent, started))
        done = executor.execute(
            decision.path, TurnContext(actor, iteration, decision.prompt, turn_log)
        )
        ended = clock()
        result = _result(decision, done, started, ended, turn_log.display)
        turn_log.fields("end of turn", _footer(result))
    finally:
        turn_log.close()
    return result


def _run_router_prompt(
    actor: Actor, iteration: int, ctx: RouterContext, executor: PromptExecutor, log: Logbook
) -> ExecResult:
    name, path = validate_router_prompt(ctx)
    agent = executor.agent_for(actor, name)
    log.console.say(f"iteration {iteration}: asking the router prompt {name} with {agent}")
    router_log = log.open_turn(actor, iteration, Path(name).stem)
    try:
        router_log.fields("router", {"iteration": iteration, "actor": actor, "prompt": name})
        done = executor.execute(path, TurnContext(actor, iteration, name, router_log, "router"))
        router_log.fields("router answer", {"ok": done.ok, "answer": repr(done.answer)})
    finally:
        router_log.close()
    return done


def _routing_failed(
    actor: Actor,
    iteration: int,
    started: datetime,
    message: str,
    log: Logbook,
    clock: Callable[[], datetime],
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
    decision: Decision, done: ExecResult, started: datetime, ended: datetime, log_path: str
) -> TurnResult:
    status = Status.OK if done.ok else Status.INTERRUPTED if done.interrupted else Status.FAILED
    return TurnResult(
        decision.actor,
        decision.iteration,
        status,
        started,
        ended,
        prompt=decision.prompt,
        source=decision.source,
        reason=decision.reason,
        agent=done.agent,
        exit_code=done.exit_code,
        failure=None if done.ok else done.reason or "failed",
        log_path=log_path,
        result=done.result,
    )


def _footer(result: TurnResult) -> dict[str, Any]:
    footer: dict[str, Any] = {
        "result": result.status.value,
        "exit code": result.exit_code,
        "duration": f"{result.duration:.1f}s",
    }
    if result.failure:
        footer["failure"] = result.failure
    if result.result is not None:
        footer["final result"] = result.result.to_json()
    return footer

"""``run_turn``: one dispatch per run, one turn id per turn, the router run's cost kept."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from tandem.execution import AgentResult, ExecResult, FailureKind, Status, TurnContext
from tandem.logs import Console, Logbook
from tandem.redaction import Redactor
from tandem.router import RouterContext
from tandem.runner import run_turn
from tandem.state import Actor, State

ROUTER_COST = AgentResult(text="reviewer.md", cost_usd=0.25, usage={"input_tokens": 7})


@dataclass
class Recorder:
    """A ``PromptExecutor`` that counts dispatches and keeps every context it was given."""

    router: ExecResult = field(
        default_factory=lambda: ExecResult(
            "r", Status.OK, 0, answer="`reviewer.md`", result=ROUTER_COST
        )
    )
    turn: ExecResult = field(default_factory=lambda: ExecResult("t", Status.OK, 0))
    dispatched: list[tuple[str, str]] = field(default_factory=list)
    contexts: list[TurnContext] = field(default_factory=list)

    def agent_for(self, actor: Actor, prompt: str) -> str:
        self.dispatched.append((actor, prompt))
        return f"agent-for-{prompt}"

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        self.contexts.append(turn)
        return self.router if turn.purpose == "router" else self.turn


def setup(tmp_path: Path) -> tuple[RouterContext, Logbook]:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md", "router.md"):
        (prompts / name).write_text(f"# {name}\n")
    ctx = RouterContext(prompts_dir=prompts, enabled=True, router_prompt="router.md")
    redactor = Redactor({})
    console = Console(redactor, out=io.BytesIO(), err=io.StringIO())
    return ctx, Logbook(tmp_path / "logs", "main", redactor, console, root=tmp_path)


def test_each_run_is_dispatched_once_and_carries_its_agent(tmp_path: Path) -> None:
    ctx, log = setup(tmp_path)
    executor = Recorder()
    result = run_turn("galph", State(iteration=3), ctx, executor, log)
    assert result.ok
    assert executor.dispatched == [("galph", "router.md"), ("galph", "reviewer.md")]
    assert [c.agent for c in executor.contexts] == ["agent-for-router.md", "agent-for-reviewer.md"]


def test_one_turn_id_for_the_router_run_and_the_turn_and_a_new_one_per_turn(tmp_path: Path) -> None:
    ctx, log = setup(tmp_path)
    executor = Recorder()
    first = run_turn("galph", State(iteration=3), ctx, executor, log)
    second = run_turn("galph", State(iteration=4), ctx, executor, log)
    ids = [c.turn_id for c in executor.contexts]
    assert ids[0] == ids[1] == first.turn_id
    assert ids[2] == ids[3] == second.turn_id
    assert first.turn_id != second.turn_id


def test_the_router_runs_cost_travels_with_the_turn(tmp_path: Path) -> None:
    ctx, log = setup(tmp_path)
    result = run_turn("galph", State(iteration=3), ctx, Recorder(), log)
    assert result.router_result == ROUTER_COST
    assert result.to_json()["router_result"]["cost_usd"] == 0.25


def test_a_failed_turn_carries_its_kind_and_reset_time(tmp_path: Path) -> None:
    ctx, log = setup(tmp_path)
    limited = ExecResult(
        "t", Status.FAILED, 1, "usage limit", FailureKind.USAGE_LIMIT, retry_after=30
    )
    result = run_turn("ralph", State(iteration=3), ctx, Recorder(turn=limited), log)
    assert (result.status, result.kind, result.retry_after) == (
        Status.FAILED,
        FailureKind.USAGE_LIMIT,
        30,
    )
    assert result.to_json()["kind"] == "usage_limit"
    unknown = ExecResult("t", Status.FAILED, 1, "exited with 1")
    assert (
        run_turn("ralph", State(iteration=3), ctx, Recorder(turn=unknown), log).kind
        is FailureKind.AGENT
    )


def test_a_router_run_that_hits_a_limit_fails_the_turn_with_that_kind(tmp_path: Path) -> None:
    ctx, log = setup(tmp_path)
    limited = ExecResult(
        "r", Status.FAILED, 1, "rate limited", FailureKind.RATE_LIMIT, retry_after=5
    )
    executor = Recorder(router=limited)
    result = run_turn("galph", State(iteration=3), ctx, executor, log)
    assert (result.kind, result.retry_after) == (FailureKind.RATE_LIMIT, 5)
    assert result.failure == "router prompt router.md: rate limited"
    assert [c.purpose for c in executor.contexts] == ["router"]

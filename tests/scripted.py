"""A ``PromptExecutor`` that plays a script of outcomes, for the unattended-run tests.

Each turn run (router runs are not scripted) takes the next ``Outcome`` of its actor;
when the script is used up the turn succeeds. Every run writes its file first (galph
``input.md``, ralph appends to ``work.txt``), so a limit hit after the agent wrote keeps
something to commit. ``FastInterrupt`` is the sleep seam: retries' 30 s waits are
recorded, not slept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tandem.execution import AgentResult, ExecResult, FailureKind, Status, TurnContext
from tandem.interrupts import Interrupt


@dataclass(frozen=True)
class Outcome:
    """What one run reports: a failure kind (None: success), a reset, a cost."""

    kind: FailureKind | None = None
    reset_in: float | None = None  # seconds from now
    cost_usd: float | None = None
    tokens: int = 0
    window: str | None = None  # the limit's window, as claude names it (five_hour)


@dataclass
class ScriptedExecutor:
    """Plays ``script[actor]`` in order; records (actor, iteration) of every run."""

    root: Path
    script: dict[str, list[Outcome]] = field(default_factory=dict)
    cost_usd: float | None = None  # of every successful run
    runs: list[tuple[str, int]] = field(default_factory=list)

    def agent_for(self, actor: str, prompt: str) -> str:
        """Always ``scripted``."""
        return "scripted"

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        """Write the turn's file, then report the next outcome."""
        self.runs.append((turn.actor, turn.iteration))
        if turn.actor == "galph":
            (self.root / "input.md").write_text(f"step {turn.iteration}\n")
        else:
            with (self.root / "work.txt").open("a") as handle:
                handle.write(f"step {turn.iteration}\n")
        queue = self.script.get(turn.actor, [])
        outcome = queue.pop(0) if queue else Outcome(cost_usd=self.cost_usd, tokens=100)
        usage = {"input_tokens": outcome.tokens}
        result = AgentResult(
            text="done", cost_usd=outcome.cost_usd, usage=usage, window=outcome.window
        )
        if outcome.kind is None:
            return ExecResult("scripted", Status.OK, 0, result=result)
        reset = None
        if outcome.reset_in is not None:
            reset = datetime.now(timezone.utc) + timedelta(seconds=outcome.reset_in)
        why = f"{outcome.kind.value} reported"
        return ExecResult(
            "scripted", Status.FAILED, 1, why, outcome.kind, reset_at=reset, result=result
        )


class FastInterrupt(Interrupt):
    """An ``Interrupt`` whose long sleeps return at once; the asked delays are kept."""

    def __init__(self, longest: float = 5.0) -> None:
        super().__init__()
        self.longest = longest
        self.skipped: list[float] = []

    def sleep(self, seconds: float) -> bool:
        """Sleep short waits for real; record and skip long ones."""
        if seconds > self.longest:
            self.skipped.append(seconds)
            return self.fired
        return super().sleep(seconds)


class CtrlC(Interrupt):
    """An ``Interrupt`` that fires at the first wait, as Ctrl-C during a pause would."""

    def sleep(self, seconds: float) -> bool:
        """Fire at once."""
        self.trigger()
        return True

"""Workflows: the steps of one iteration, each an actor and a prompt (SPEC §18).

The built-ins are today's loop (``standard``: galph's supervisor prompt, then ralph's main
prompt) and its variants; ``workflow.steps`` defines more. The state says where an
iteration is (``State.position``: ``step``, or for a state without it the standard's
step of ``expected_actor``); ``Workflow.following`` says which step comes after one, and
whether that ends the iteration. The standard workflow keeps no ``workflow``/``step`` in
the state, so a user who never configures one sees the file they always saw.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tandem.checks import actor_name, string
from tandem.errors import ConfigError, RoutingError, StateError, UsageError

if TYPE_CHECKING:  # types only: config imports this module before the state exists
    from tandem.config import Config
    from tandem.state import Actor, Next, State

STANDARD = "standard"
# built-in name -> (galph's prompt, ralph's prompt); None: the configured own prompt
BUILTINS: dict[str, tuple[str | None, str | None]] = {
    STANDARD: (None, None),
    "review_cadence": (None, None),
    "standard2": ("supervisor2.md", "main2.md"),
    "review_cadence2": ("supervisor2.md", "main2.md"),
}
CADENCE = ("review_cadence", "review_cadence2")  # they turn the review cadence on


@dataclass(frozen=True)
class Step:
    """One step of an iteration: ``actor`` runs ``prompt``."""

    actor: Actor
    prompt: str

    def __str__(self) -> str:
        return f"{self.actor} {self.prompt}"


@dataclass(frozen=True)
class Workflow:
    """A named sequence of steps."""

    name: str
    steps: tuple[Step, ...]

    def actors(self) -> set[Actor]:
        """The actors that have a step."""
        return {step.actor for step in self.steps}

    def prompts(self, actor: Actor) -> tuple[str, ...]:
        """The prompts of ``actor``'s steps."""
        return tuple(step.prompt for step in self.steps if step.actor == actor)

    def index_for(self, state: State, actor: Actor) -> int:
        """The step ``actor``'s turn runs: the state's, or (async role mode, where any
        actor may run) the next step of ``actor`` from there."""
        if not self.steps:
            raise ConfigError(f"workflow '{self.name}' has no steps", "give it steps")
        here = state.position
        wrong = self._out_of_range(state)
        if wrong:  # another machine's state, written for another workflow
            raise RoutingError(wrong, "configure the same workflow on both machines")
        for offset in range(len(self.steps)):
            index = (here + offset) % len(self.steps)
            if self.steps[index].actor == actor:
                return index
        raise ConfigError(
            f"workflow '{self.name}' has no step for {actor}", f"add a step for {actor}"
        )

    def following(self, index: int) -> Next:
        """Where the iteration goes after step ``index`` succeeds."""
        wraps = index + 1 >= len(self.steps)
        return self.entry(0 if wraps else index + 1, wraps=wraps)

    def entry(self, index: int, *, wraps: bool = False) -> Next:
        """Step ``index`` as the state records it."""
        from tandem.state import Next

        if self.name == STANDARD:  # the file keeps no step: expected_actor says it
            return Next(self.steps[index].actor, None, None, wraps)
        return Next(self.steps[index].actor, index, self.name, wraps)

    def check(self, state: State, source: str) -> None:
        """The state's step must be one of this workflow's, run by ``expected_actor``."""
        index = state.position
        written = state.workflow or STANDARD
        fix = (
            f"set workflow.name back to '{written}', or start at a step of '{self.name}' "
            "with `tandem run --start-step N`"
        )
        wrong = self._out_of_range(state)
        if wrong:
            raise StateError(f"{source}: {wrong}", fix)
        if self.steps[index].actor != state.expected_actor:
            raise StateError(
                f"{source}: step {index} of workflow '{self.name}' is {self.steps[index].actor}'s, "
                f"but expected_actor is {state.expected_actor} (the state was written for "
                f"workflow '{written}')",
                fix,
            )

    def _out_of_range(self, state: State) -> str | None:
        if state.position < len(self.steps):
            return None
        return (
            f"field 'step' is {state.position}, out of range for workflow '{self.name}' "
            f"({len(self.steps)} steps, counted from 0); the state was written for workflow "
            f"'{state.workflow or STANDARD}'"
        )

    def describe(self, index: int) -> str:
        """``step 3 of 4 (galph review.md)`` (counted from 1, as people count)."""
        return f"step {index + 1} of {len(self.steps)} ({self.steps[index]})"

    def where(self, state: State) -> str:
        """Where ``state`` is in this workflow, for people (``status``, ``route``)."""
        index = state.position
        if index < len(self.steps):
            return f"workflow {self.name}: {self.describe(index)}"
        return f"workflow {self.name}: {self._out_of_range(state)}"

    def upcoming(self, state: State, count: int) -> list[str]:
        """The ``count`` steps after the state's, with the iteration each runs in."""
        index, iteration, out = state.position, state.iteration, []
        for _ in range(min(count, len(self.steps))):
            index += 1
            if index >= len(self.steps):
                index, iteration = 0, iteration + 1
            out.append(f"iteration {iteration}: {self.describe(index)}")
        return out

    def start_index(self, prompt: str | None, step: int | None) -> int:
        """The step ``--start-prompt NAME`` or ``--start-step N`` names (0-based)."""
        listed = ", ".join(f"{i}: {s}" for i, s in enumerate(self.steps)) or "none"
        if step is not None:
            if step >= len(self.steps):
                raise UsageError(
                    f"--start-step {step}: workflow '{self.name}' has steps {listed}",
                    "name one of them (counted from 0)",
                )
            return step
        wanted = prompt if prompt is None or "." in prompt else f"{prompt}.md"
        for index, candidate in enumerate(self.steps):
            if candidate.prompt == wanted:
                return index
        raise UsageError(
            f"--start-prompt {prompt}: no step of workflow '{self.name}' runs it "
            f"(its steps: {listed})",
            "name a prompt of one of its steps, or use --start-step N",
        )


def resolve(config: Config) -> Workflow:
    """The configured workflow (its name was checked when the config was loaded)."""
    name = config.workflow.name
    defined = config.workflow.steps.get(name)
    if defined is not None:
        return Workflow(name, tuple(Step(actor, prompt) for actor, prompt in defined))
    galph, ralph = BUILTINS[name]
    return Workflow(
        name,
        (
            Step("galph", galph or config.supervisor_prompt),
            Step("ralph", ralph or config.main_prompt),
        ),
    )


def workflow_note(workflow: Workflow, actor: Actor | None, *, sync: bool) -> str | None:
    """What a run should say first about a workflow with nothing for someone to do."""
    if not workflow.steps:
        return f"workflow '{workflow.name}' has no steps: nothing to run"
    actors = workflow.actors()
    if len(actors) > 1:
        return None
    (only,) = actors
    if actor is not None and actor != only:
        return f"workflow '{workflow.name}' has no step for {actor}: nothing to run"
    if sync:
        return (
            f"workflow '{workflow.name}' has steps for {only} only: in sync mode there is "
            "nothing to hand over"
        )
    return None


def steps_value(value: Any) -> dict[str, tuple[tuple[Actor, str], ...]]:
    """``workflow.steps``: ``{name: [{actor, prompt}, ...]}``, checked (config schema)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of workflow names to steps, not {_kind(value)}")
    out: dict[str, tuple[tuple[Actor, str], ...]] = {}
    for key, steps in value.items():
        name = string(key)
        if name in BUILTINS:
            raise ValueError(f"'{name}' is a built-in workflow; name yours differently")
        if not isinstance(steps, list):
            raise ValueError(f"{name}: must be a list of steps, not {_kind(steps)}")
        out[name] = tuple(_step(name, number, step) for number, step in enumerate(steps))
    return out


def _step(name: str, number: int, value: Any) -> tuple[Actor, str]:
    where = f"{name}[{number}]"
    if not isinstance(value, Mapping) or set(value) != {"actor", "prompt"}:
        raise ValueError(f"{where}: a step is {{actor: galph|ralph, prompt: NAME.md}}")
    try:
        return actor_name(value["actor"]), string(value["prompt"])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def check_name(name: str, steps: Mapping[str, object], shown: str, *, usage: bool) -> None:
    """An unknown workflow name is a config error with a did-you-mean (a usage error when
    a flag or variable named it)."""
    known = [*BUILTINS, *steps]
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    error = UsageError if usage else ConfigError
    raise error(
        f"{shown}: workflow.name: unknown workflow '{name}'{hint}; known: {', '.join(known)}",
        "name a built-in workflow or one defined under workflow.steps",
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__

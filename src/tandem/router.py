"""Which prompt a turn runs: the deterministic table, the router prompt, and validation.

Prompt names are untrusted input (a router answer is an agent's output), so every name,
deterministic or router-chosen, passes the five rules of SPEC §4.3 before it is used.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from tandem.config import Config
from tandem.errors import RoutingError
from tandem.printable import printable
from tandem.state import Actor, State
from tandem.workflow import BUILTINS, STANDARD, Step, Workflow, resolve

Source = Literal["deterministic", "router"]
_QUOTE_LINES = 10


@dataclass(frozen=True)
class RouterContext:
    """Everything routing needs: prompt map, allowlist, cadence, mode and prompts dir.

    It is built once per run from the config, which a run reads once; the names derived
    from it (the allowlist, the prompts each actor may run) are worked out on first use and
    kept, since every turn validates its prompt against them.
    """

    prompts_dir: Path
    supervisor: str = "supervisor.md"
    main: str = "main.md"
    reviewer: str = "reviewer.md"
    enabled: bool = False
    mode: str = "router_default"
    router_prompt: str | None = None
    review_every_n: int = 0
    allowlist: tuple[str, ...] = ()
    actor_prompts: Mapping[Actor, tuple[str, ...]] = field(default_factory=dict)
    configured: Workflow | None = None  # None: the standard, from the prompts above
    _gated: dict[Actor, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_config(cls, config: Config) -> RouterContext:
        """The routing view of a ``Config``."""
        router = config.router
        return cls(
            prompts_dir=config.prompts_dir,
            supervisor=config.supervisor_prompt,
            main=config.main_prompt,
            reviewer=config.reviewer_prompt,
            enabled=router.enabled,
            mode=router.mode,
            router_prompt=router.prompt,
            review_every_n=router.review_every_n,
            allowlist=router.allowlist,
            actor_prompts=router.actor_prompts,
            configured=resolve(config),
        )

    @cached_property
    def workflow(self) -> Workflow:
        """The workflow whose steps the turns run."""
        if self.configured is not None:
            return self.configured
        steps = (Step("galph", self.supervisor), Step("ralph", self.main))
        return Workflow(STANDARD, steps)

    def own_prompt(self, actor: Actor) -> str:
        """galph's supervisor prompt or ralph's main prompt, normalized."""
        return normalize(self.supervisor if actor == "galph" else self.main)

    def step_prompt(self, actor: Actor, state: State) -> str:
        """The prompt of ``actor``'s step of the workflow: it replaces the own prompt."""
        return normalize(self.workflow.steps[self.workflow.index_for(state, actor)].prompt)

    def step_prompts(self, actor: Actor) -> tuple[str, ...]:
        """The prompts of ``actor``'s steps (the workflow's prompts are the config's own)."""
        return self.workflow.prompts(actor)

    def allowed(self) -> tuple[str, ...]:
        """The allowlist, normalized (default: supervisor, main and reviewer prompts), and
        the prompts of the workflow's steps."""
        return self._allowed

    @cached_property
    def _allowed(self) -> tuple[str, ...]:
        names = self.allowlist or (self.supervisor, self.main, self.reviewer)
        steps = (*self.step_prompts("galph"), *self.step_prompts("ralph"))
        return tuple(dict.fromkeys(normalize(n) for n in (*names, *steps)))

    def gated(self, actor: Actor) -> frozenset[str]:
        """The prompts ``actor`` may run (rule 5): its own, the reviewer, its
        ``router.actor_prompts`` and its workflow steps' prompts, normalized."""
        if actor not in self._gated:
            names = (*self.actor_prompts.get(actor, ()), *self.step_prompts(actor))
            own = {self.own_prompt(actor), normalize(self.reviewer)}
            self._gated[actor] = frozenset(own | {normalize(p) for p in names})
        return self._gated[actor]

    def uses_router_prompt(self, actor: Actor) -> bool:
        """True if ``actor``'s turn asks the router prompt (galph only, SPEC §4.2)."""
        return self.enabled and self.router_prompt is not None and actor == "galph"


@dataclass(frozen=True)
class Decision:
    """The prompt a turn runs, and why."""

    actor: Actor
    iteration: int
    prompt: str
    path: Path
    source: Source
    reason: str

    def to_json(self) -> dict[str, Any]:
        """The decision as printed by ``tandem route --json`` and logged as an event."""
        return {
            "actor": self.actor,
            "iteration": self.iteration,
            "prompt": self.prompt,
            "path": str(self.path),
            "source": self.source,
            "reason": self.reason,
        }


def deterministic(actor: Actor, state: State, ctx: RouterContext) -> tuple[str, str]:
    """The table of SPEC §4.1, with the step's prompt as the own prompt: (name, reason)."""
    own = ctx.step_prompt(actor, state)
    if not ctx.enabled:
        return own, f"router disabled: {actor} runs its own prompt"
    n = ctx.review_every_n
    if not (n > 0 and state.iteration % n == 0):
        why = (
            "review cadence off"
            if n <= 0
            else f"iteration {state.iteration} is not a multiple of {n}"
        )
        return own, f"no review cadence hit ({why})"
    hit = f"review cadence hit (iteration {state.iteration} is a multiple of {n})"
    if actor == "galph":
        return normalize(ctx.reviewer), hit
    reviewer_ran = (
        state.last_prompt == normalize(ctx.reviewer) and state.last_prompt_actor == "galph"
    )
    if reviewer_ran:
        return own, "review cadence already ran on galph's turn"
    return normalize(ctx.reviewer), f"{hit}; galph did not run the reviewer"


@lru_cache(maxsize=256)  # a pure function of the name, asked several times per turn
def normalize(name: str) -> str:
    """Rule 1: no suffix gets ``.md``; any other suffix is an error (never rewritten)."""
    suffix = PurePosixPath(name).suffix
    if suffix == "":
        return f"{name}.md"
    if suffix != ".md":
        raise RoutingError(
            f"prompt '{name}' does not end in .md (rule 1: prompts are markdown files)",
            "name a .md prompt",
        )
    return name


def validate(
    name: str, actor: Actor, ctx: RouterContext, *, answer: str | None = None
) -> tuple[str, Path]:
    """Apply the rules of SPEC §4.3 to ``name``; return (normalized name, resolved path)."""

    def fail(rule: str, fix: str) -> RoutingError:
        quoted = f"; router answer: {_quote(answer)}" if answer is not None else ""
        allowed = ", ".join(ctx.allowed())
        shown = printable(name)
        return RoutingError(
            f"prompt '{shown}' rejected ({rule}){quoted}; allowlist: {allowed}", fix
        )

    name = name.strip()
    if not name:
        raise fail("empty name", "name a prompt from the allowlist")
    try:
        normalized = normalize(name)
    except RoutingError:
        raise fail("rule 1: prompts are .md files", "name a .md prompt") from None
    _check_relative(normalized, fail)
    if normalized not in ctx.allowed():
        raise fail("rule 2: not in the allowlist", "add it to router.allowlist or pick another")
    path = _locate(normalized, ctx.prompts_dir, fail)
    if normalized not in ctx.gated(actor):
        raise fail(
            f"rule 5: {actor} may not run it",
            f"list it under router.actor_prompts.{actor} if {actor} should run it",
        )
    return normalized, path


def validate_steps(ctx: RouterContext) -> None:
    """Every step of a workflow the user defined: its prompt by the rules of SPEC §4.3,
    for its actor. The built-ins run the configured prompts, checked when their turn
    comes (a missing one fails that turn, SPEC §4.4, as before workflows existed)."""
    if ctx.workflow.name in BUILTINS:
        return
    for index, step in enumerate(ctx.workflow.steps):
        try:
            validate(step.prompt, step.actor, ctx)
        except RoutingError as exc:
            where = f"workflow '{ctx.workflow.name}' step {index} ({step})"
            raise RoutingError(f"{where}: {exc.what}", exc.fix) from None


def validate_router_prompt(ctx: RouterContext) -> tuple[str, Path]:
    """The router prompt itself: a .md file inside prompts_dir (rules 1, 3 and 4)."""
    name = ctx.router_prompt or ""

    def fail(rule: str, fix: str) -> RoutingError:
        return RoutingError(f"router prompt '{name}' rejected ({rule})", fix)

    normalized = normalize(name)
    _check_relative(normalized, fail)
    return normalized, _locate(normalized, ctx.prompts_dir, fail)


_Fail = Callable[[str, str], RoutingError]


def _check_relative(name: str, fail: _Fail) -> None:
    """Rule 3, by name: no absolute path, no ``..``."""
    # as PurePosixPath would judge it (absolute, or a ``..`` part), on the string: per turn
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise fail("rule 3: it must stay inside prompts_dir", "name a prompt inside prompts_dir")


def _locate(name: str, prompts_dir: Path, fail: _Fail) -> Path:
    """Rules 3 (resolved, symlinks followed) and 4 (a regular file)."""
    # os.path on strings: this runs every turn, and pathlib's resolve costs twice as much
    base = os.path.realpath(prompts_dir)
    found = _resolved_below(base, name)
    if not found.startswith(base.rstrip(os.sep) + os.sep):
        raise fail(
            "rule 3: it resolves outside prompts_dir (a symlink leaves the folder)",
            "replace the symlink with a real file inside prompts_dir",
        )
    if not os.path.isfile(found):
        what = "does not exist" if not os.path.exists(found) else "is not a regular file"
        raise fail(f"rule 4: {found} {what}", f"create {prompts_dir / name}")
    return Path(found)


def _resolved_below(base: str, name: str) -> str:
    """``os.path.realpath(base/name)`` for a resolved ``base``: a name of plain parts none of
    which is a symlink is its own resolution, found with one ``lstat`` per part instead of
    walking ``base`` again; anything else (a link, a missing part, ``.``) asks realpath."""
    joined = os.path.join(base, name)
    parts = name.split("/")
    if all(part not in ("", ".", "..") for part in parts):
        path = base
        try:
            for part in parts:
                path = os.path.join(path, part)
                if stat.S_ISLNK(os.lstat(path).st_mode):
                    break
            else:
                return joined
        except OSError:
            pass
    return os.path.realpath(joined)


def parse_answer(text: str | None) -> str | None:
    """A router answer: exactly one non-empty line names a prompt; none means no answer.

    The name may be written as models (and the starter ``router.md``) write file names: as
    a markdown code span (`` `reviewer.md` ``) or in quotes; those marks are taken off.
    """
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return None
    if len(lines) > 1:
        raise RoutingError(
            f"router answer has {len(lines)} non-empty lines, not exactly one: {_quote(text)}",
            "make the router prompt answer with just the prompt name",
        )
    return _unquoted(lines[0])


_QUOTES = (('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"))


def _unquoted(name: str) -> str:
    """``name`` without the code-span backticks, then the quotes, around it."""
    if len(name) > 2 and name[0] == name[-1] == "`":
        name = name.strip("`").strip()
    for opening, closing in _QUOTES:
        if len(name) > 2 and name.startswith(opening) and name.endswith(closing):
            return name[1:-1].strip()
    return name


def decide(
    actor: Actor,
    state: State,
    ctx: RouterContext,
    ask_router: Callable[[], str | None] | None = None,
) -> Decision:
    """Pick and validate the prompt of ``actor``'s turn (SPEC §4.1 to §4.3).

    ``ask_router`` runs the router prompt and returns its raw answer; it is only called on
    galph's turn with the router enabled and a router prompt set.
    """
    if ask_router is None or not ctx.uses_router_prompt(actor):
        return _deterministic_decision(actor, state, ctx)
    fallback: Decision | None = None
    if ctx.mode == "router_default":
        fallback = _deterministic_decision(actor, state, ctx)
    raw = ask_router()
    chosen = parse_answer(raw)
    if chosen is None:
        if ctx.mode == "router_only":
            raise RoutingError(
                f"the router prompt gave no answer (router_only needs one): {_quote(raw)}",
                "make the router prompt answer with one prompt name",
            )
        fallback = fallback or _deterministic_decision(actor, state, ctx)
        return _with_reason(fallback, f"{fallback.reason}; the router gave no answer")
    prompt, path = validate(chosen, actor, ctx, answer=raw)
    reason = f"router prompt {ctx.router_prompt} chose it ({ctx.mode})"
    if fallback is not None and fallback.prompt != prompt:
        reason += f", replacing deterministic {fallback.prompt}"
    return Decision(actor, state.iteration, prompt, path, "router", reason)


def _deterministic_decision(actor: Actor, state: State, ctx: RouterContext) -> Decision:
    name, reason = deterministic(actor, state, ctx)
    prompt, path = validate(name, actor, ctx)
    return Decision(actor, state.iteration, prompt, path, "deterministic", reason)


def _with_reason(decision: Decision, reason: str) -> Decision:
    return Decision(
        decision.actor, decision.iteration, decision.prompt, decision.path, decision.source, reason
    )


def _quote(text: str | None) -> str:
    """The first lines of an untrusted answer, as one JSON string (so it stays one line)."""
    lines = (text or "").splitlines()
    shown = "\n".join(lines[:_QUOTE_LINES])
    more = f" (+{len(lines) - _QUOTE_LINES} more lines)" if len(lines) > _QUOTE_LINES else ""
    return printable(json.dumps(shown[:2000], ensure_ascii=False)) + more

"""The options of ``run``/``supervisor``/``loop``, each declared once (SPEC §11, §12.1).

One ``Option`` says a flag's names, the config key (or run setting) it sets, how its text
is read, its help, and the environment variables of the earlier scripts that set the same
thing. The argparse flags, the environment layer, the flag layer over the config and the
run settings' defaults are all derived from ``OPTIONS``. Precedence: flag > environment >
config file > default. Two flags (or a flag and its legacy twin) that set one thing to
different values are a usage error, never "the last one wins".
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem import readers as read
from tandem.checks import actor_name
from tandem.config import Layer
from tandem.errors import UsageError

Parse = Callable[[str], Any]
ALL = frozenset({"combined", "galph", "ralph"})
GALPH = frozenset({"galph"})
RALPH = frozenset({"ralph"})
COMBINED = frozenset({"combined"})


@dataclass(frozen=True)
class Env:
    """An environment variable of the earlier scripts, and where they read it."""

    name: str
    scope: frozenset[str] = ALL  # combined run, galph's role, ralph's role


@dataclass(frozen=True)
class Option:
    """One flag: its names, what it sets, how its text is read, and its help.

    ``target`` is a dotted config key, or ``run.<name>`` for a setting of the run only.
    ``parse`` is None for a switch, which stores ``const``.
    """

    flags: tuple[str, ...]
    target: str
    help: str
    parse: Parse | None = None
    const: Any = True
    default: Any = None
    env: tuple[Env, ...] = ()
    legacy: bool = False  # a name of the earlier scripts (listed by `config --explain`)
    metavar: str | None = None

    @property
    def dest(self) -> str:
        """The argparse destination, from the first flag."""
        return self.flags[0].lstrip("-").replace("-", "_")


def _switches(on: str, off: str, target: str, help_on: str, **kw: Any) -> tuple[Option, Option]:
    return (
        Option((on,), target, help_on, const=True, **kw),
        Option((off,), target, f"the opposite of {on}", const=False, **kw),
    )


_SUP, _LOOP = frozenset({"galph", "combined"}), frozenset({"ralph", "combined"})
# fmt: off
OPTIONS: tuple[Option, ...] = (
    Option(("--mode",), "run.mode", "combined (both actors here) or role (one actor)",
           read.text, default="combined", env=(Env("ORCHESTRATOR_MODE"),),
           metavar="combined|role"),
    Option(("--role",), "run.role", "galph|ralph (with --mode role)", read.blank_is_unset,
           env=(Env("ORCHESTRATOR_ROLE", GALPH | RALPH),), metavar="ACTOR"),
    Option(("--iterations",), "run.iterations",
           "iterations (combined) or this actor's turns (role)", read.iterations, default=1,
           env=(Env("SYNC_LOOPS"),), metavar="N"),
    Option(("--sync-loops",), "run.iterations", "the same as --iterations", read.iterations,
           legacy=True, metavar="N"),
    Option(("--sync-via-git",), "run.sync_via_git",
           "role mode: hand turns over through the git remote", default=False),
    Option(("--branch",), "sync.branch", "branch that carries the state (default: current)",
           read.text, env=(Env("ORCHESTRATION_BRANCH"),)),
    Option(("--remote",), "sync.remote", "remote that carries the state (default: origin)",
           read.text),
    Option(("--poll-interval",), "sync.poll_interval",
           "longest pause between checks of the remote while waiting", read.seconds,
           env=(Env("POLL_INTERVAL"),), metavar="SECS"),
    Option(("--max-wait-sec",), "sync.max_wait_sec",
           "give up waiting for the turn after this long (0 = never)", read.seconds,
           env=(Env("MAX_WAIT_SEC"),), metavar="SECS"),
    Option(("--max-offline-secs",), "sync.max_offline_secs",
           "give up after the remote was unreachable this long (0 = never)", read.seconds,
           metavar="SECS"),
    Option(("--heartbeat-secs",), "agent.heartbeat_secs",
           "print a still-running line after this much silence", read.seconds,
           env=(Env("HEARTBEAT_SECS"), Env("ORCHESTRATION_PROMPT_HEARTBEAT_SECS")),
           metavar="SECS"),
    Option(("--max-cost",), "limits.max_cost_usd",
           "stop at a check point once the loop spent this many US dollars", read.amount,
           metavar="USD"),
    Option(("--max-tokens",), "limits.max_tokens", "stop once the loop used this many tokens",
           read.whole, metavar="N"),
    Option(("--max-turns",), "limits.max_turns", "stop once the loop ran this many turns",
           read.whole, metavar="N"),
    Option(("--no-pause",), "limits.pause",
           "fail a turn that hits a usage or rate limit instead of waiting it out",
           const=False),
    Option(("--wait-on-peer-failure",), "run.wait_on_peer_failure",
           "keep waiting when the other actor's turn failed", default=False),
    Option(("--state-file",), "state_file", "state file (sync/state.json)", read.text,
           env=(Env("STATE_FILE"),), metavar="PATH"),
    Option(("--logdir",), "logs_dir", "logs folder (logs/)", read.text, metavar="DIR"),
    Option(("--no-git",), "run.no_git", "do not commit turns", default=False),
    Option(("--push",), "run.push", "combined mode: push after each turn", default=False),
    Option(("--commit-dry-run",), "run.commit_dry_run",
           "print what each turn would commit, commit nothing", default=False),
    Option(("--strict-tree",), "run.strict_tree",
           "fail a turn that leaves paths it may not commit", default=False),
    Option(("--tolerate-doc-dirty",), "run.tolerate_doc_dirty",
           "the scripts' name for the combined-mode default: warn about paths galph may "
           "not commit", legacy=True, default=False),
    Option(("--quiet",), "run.output", "no agent output on the console", const="quiet",
           default="normal"),
    Option(("--verbose",), "run.output", "more detail (raw agent events)", const="verbose"),
    Option(("--agent",), "agent.default",
           "default agent (claude|codex|gemini|opencode|dry-run|auto|...)", read.text,
           env=(Env("ORCHESTRATOR_AGENT", COMBINED), Env("SUPERVISOR_AGENT", GALPH),
                Env("LOOP_AGENT", RALPH))),
    Option(("--agent-role",), "run.agent_roles", "agent per actor", read.pairs, default={},
           env=(Env("ORCHESTRATOR_AGENT_ROLE", COMBINED), Env("SUPERVISOR_AGENT_ROLE", GALPH),
                Env("LOOP_AGENT_ROLE", RALPH)), metavar="ACTOR=AGENT,..."),
    Option(("--agent-prompt",), "run.agent_prompts", "agent per prompt", read.pairs, default={},
           env=(Env("ORCHESTRATOR_AGENT_PROMPT", COMBINED),
                Env("SUPERVISOR_AGENT_PROMPT", GALPH), Env("LOOP_AGENT_PROMPT", RALPH)),
           metavar="PROMPT=AGENT,..."),
    Option(("--agent-timeout",), "agent.timeout_secs",
           "wall-clock limit of one agent run (0 = none)", read.seconds, metavar="SECS"),
    Option(("--claude-cmd",), "run.claude_cmd", "the claude program (= CLAUDE_CMD)",
           read.blank_is_unset, legacy=True, env=(Env("CLAUDE_CMD"),), metavar="PATH"),
    Option(("--codex-cmd",), "run.codex_cmd", "the codex program (= CODEX_CMD)",
           read.blank_is_unset, legacy=True, env=(Env("CODEX_CMD"),), metavar="PATH"),
    Option(("--prompt-supervisor",), "supervisor_prompt", "galph's prompt", read.text,
           env=(Env("SUPERVISOR_PROMPT", _SUP), Env("ROUTER_PROMPT_SUPERVISOR")),
           metavar="NAME"),
    Option(("--prompt-main",), "main_prompt", "ralph's prompt", read.text,
           env=(Env("LOOP_PROMPT", _LOOP), Env("ROUTER_PROMPT_MAIN")), metavar="NAME"),
    Option(("--prompt-reviewer",), "reviewer_prompt", "the review-cadence prompt", read.text,
           env=(Env("REVIEWER_PROMPT", COMBINED), Env("ROUTER_PROMPT_REVIEWER")),
           metavar="NAME"),
    Option(("--prompt",), "run.own_prompt", "this actor's own prompt (supervisor/loop)",
           read.prompt, legacy=True, metavar="NAME"),
    Option(("--router-prompt-supervisor",), "supervisor_prompt", "= --prompt-supervisor",
           read.prompt, legacy=True, metavar="NAME"),
    Option(("--router-prompt-main",), "main_prompt", "= --prompt-main", read.prompt,
           legacy=True, metavar="NAME"),
    Option(("--router-prompt-reviewer",), "reviewer_prompt", "= --prompt-reviewer", read.prompt,
           legacy=True, metavar="NAME"),
    *_switches("--use-router", "--no-router", "router.enabled", "pick prompts with the router"),
    Option(("--router-prompt",), "router.prompt", "prompt that picks galph's prompt", read.text,
           env=(Env("ROUTER_PROMPT"),), metavar="NAME"),
    Option(("--router-mode",), "router.mode", "router_default | router_first | router_only",
           read.text, env=(Env("ROUTER_MODE"),), metavar="MODE"),
    Option(("--router-review-every-n",), "router.review_every_n", "review cadence (0 = off)",
           read.whole, env=(Env("ORCHESTRATION_WORKFLOW_REVIEW_EVERY_N"),
                        Env("ROUTER_REVIEW_EVERY_N")), metavar="N"),
    Option(("--workflow-review-every-n",), "router.review_every_n",
           "= --router-review-every-n", read.whole, legacy=True, metavar="N"),
    Option(("--router-allowlist",), "router.allowlist", "prompts the router may pick",
           read.items, env=(Env("ROUTER_ALLOWLIST"),), metavar="A.md,B.md"),
    Option(("--workflow",), "workflow.name", "the workflow to run (SPEC §18)",
           read.blank_is_unset, legacy=True, env=(Env("ORCHESTRATION_WORKFLOW"),),
           metavar="NAME"),
    Option(("--start-prompt",), "run.start_prompt", "combined run: begin at the step of NAME",
           read.blank_is_unset, legacy=True,
           env=(Env("ORCHESTRATION_START_PROMPT", COMBINED),), metavar="NAME"),
    Option(("--start-step",), "run.start_step", "combined run: begin at step N (from 0)",
           read.step, metavar="N"),
    *_switches("--auto-commit-docs", "--no-auto-commit-docs", "autocommit.docs",
               "galph commits its doc whitelist", legacy=True),
    Option(("--autocommit-whitelist",), "autocommit.galph", "= autocommit.galph", read.items,
           legacy=True, metavar="GLOB,..."),
    Option(("--max-autocommit-bytes",), "autocommit.max_file_bytes",
           "= autocommit.max_file_bytes", read.whole, legacy=True,
           env=(Env("MAX_AUTOCOMMIT_BYTES", _SUP),), metavar="BYTES"),
    *_switches("--auto-commit-reports", "--no-auto-commit-reports", "autocommit.reports",
               "galph commits report files (by extension)", legacy=True),
    Option(("--report-extensions",), "autocommit.report_extensions",
           "report file extensions", read.items, legacy=True,
           env=(Env("SUPERVISOR_REPORT_EXTENSIONS", _SUP), Env("REPORT_EXTENSIONS", RALPH)),
           metavar=".png,..."),
    Option(("--report-path-globs",), "autocommit.report_path_globs", "where reports may be",
           read.items, legacy=True, env=(Env("SUPERVISOR_REPORT_PATH_GLOBS", _SUP),
                                     Env("REPORT_PATH_GLOBS", RALPH)), metavar="GLOB,..."),
    Option(("--max-report-file-bytes",), "autocommit.max_file_bytes",
           "= autocommit.max_file_bytes", read.whole, legacy=True,
           env=(Env("SUPERVISOR_MAX_REPORT_FILE_BYTES", _SUP),
                Env("MAX_REPORT_FILE_BYTES", RALPH)), metavar="BYTES"),
    Option(("--max-report-total-bytes",), "autocommit.max_total_bytes",
           "= autocommit.max_total_bytes", read.whole, legacy=True,
           env=(Env("SUPERVISOR_MAX_REPORT_TOTAL_BYTES", _SUP),
                Env("MAX_REPORT_TOTAL_BYTES", RALPH)), metavar="BYTES"),
    *_switches("--force-add-reports", "--no-force-add-reports", "run.force_add_reports",
               "ignored: tandem never adds ignored files", legacy=True),
    *_switches("--auto-commit-tracked-outputs", "--no-auto-commit-tracked-outputs",
               "autocommit.tracked_outputs", "galph commits tracked outputs", legacy=True),
    Option(("--tracked-output-globs",), "autocommit.tracked_output_globs",
           "tracked outputs galph commits", read.items, legacy=True,
           env=(Env("SUPERVISOR_TRACKED_OUTPUT_GLOBS", _SUP),), metavar="GLOB,..."),
    Option(("--tracked-output-extensions",), "autocommit.tracked_output_extensions",
           "their extensions", read.items, legacy=True,
           env=(Env("SUPERVISOR_TRACKED_OUTPUT_EXTENSIONS", _SUP),), metavar=".npy,..."),
    Option(("--max-tracked-output-file-bytes",), "autocommit.max_file_bytes",
           "= autocommit.max_file_bytes", read.whole, legacy=True,
           env=(Env("SUPERVISOR_MAX_TRACKED_OUTPUT_FILE_BYTES", _SUP),), metavar="BYTES"),
    Option(("--max-tracked-output-total-bytes",), "autocommit.max_total_bytes",
           "= autocommit.max_total_bytes", read.whole, legacy=True,
           env=(Env("SUPERVISOR_MAX_TRACKED_OUTPUT_TOTAL_BYTES", _SUP),), metavar="BYTES"),
    *_switches("--prepull-auto-commit-docs", "--no-prepull-auto-commit-docs", "run.prepull",
               "ignored: tandem never commits before it pulls", legacy=True),
    Option(("--allow-dirty",), "run.allow_dirty", "ignored: see the README", legacy=True,
           default=False),
)
# fmt: on
_PATHS = ("state_file", "logs_dir")
_COMMANDS = {"claude_cmd": "CLAUDE_CMD", "codex_cmd": "CODEX_CMD"}  # set for the agents
# what each legacy switch means when tandem does otherwise on purpose (SPEC §12.1)
_DIFFERS = {
    ("run.force_add_reports", True): "--force-add-reports is ignored: tandem never adds "
    "files that git ignores (they were how virtualenvs and secrets got committed)",
    ("run.prepull", True): "--prepull-auto-commit-docs is ignored: tandem never commits "
    "before it pulls; a tree it cannot update is named in an error",
    ("run.allow_dirty", True): "--allow-dirty is ignored: tandem never pulls over local "
    "changes; paths a turn may not commit are listed and left in the tree",
}


# variables of the scripts' runner and wrappers that tandem has no use for, and why
_UNUSED_ENV = {
    "ORCHESTRATION_PTY_MODE": "agents run with pipes and structured output, no terminal",
    "ORCHESTRATION_USE_PTY": "agents run with pipes and structured output, no terminal",
    "ORCHESTRATION_PYTHONUNBUFFERED": "agent output is relayed as it comes",
    "ORCHESTRATION_USE_STDBUF": "agent output is relayed as it comes",
    "ORCHESTRATION_CLAUDE_STREAM_JSON": "claude always runs with stream-json output",
    "ORCHESTRATION_CODEX_JSON": "codex always runs with JSON output",
    "ORCHESTRATION_CLAUDE_SESSION_PERSIST": "each turn is a fresh agent session",
    "ORCHESTRATION_ENGINEER_SUMMARY_PATH": "the turn log keeps the agent's whole output",
    "ORCHESTRATION_PYTHON": "the wrappers and the shim always run tandem",
    "REPORT_SKIP_CONFIG": "what a turn commits follows autocommit globs and .gitignore",
}


def add_flags(
    parser: argparse.ArgumentParser, *, with_mode: bool = False, only: tuple[str, ...] = ()
) -> None:
    """The flags of ``OPTIONS`` on ``parser`` (``--mode``/``--role`` only on ``run``).

    ``only`` limits them to those targets (the path flags every subcommand takes).
    """
    for option in OPTIONS:
        if option.target in ("run.mode", "run.role") and not with_mode:
            continue
        if only and option.target not in only:
            continue
        hidden = argparse.SUPPRESS if option.legacy else option.help
        if option.parse is None:
            parser.add_argument(
                *option.flags, dest=option.dest, action="store_const", const=option.const,
                help=hidden,
            )  # fmt: skip
        else:
            parser.add_argument(
                *option.flags, dest=option.dest, type=argparse_type(option.parse),
                metavar=option.metavar, help=hidden,
            )  # fmt: skip


def argparse_type(parse: Parse) -> Parse:
    """``parse`` as an argparse ``type``: its ValueError becomes a usage error's words."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__.lstrip("_")
    return convert


@dataclass(frozen=True)
class Resolved:
    """The options of one run: its settings, the layers over the config, what to say."""

    run: Mapping[str, Any]
    layers: tuple[Layer, ...]
    notes: tuple[str, ...] = ()  # the environment variables used, once
    warnings: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # CLAUDE_CMD/CODEX_CMD from flags
    origins: Mapping[str, str] = field(default_factory=dict)  # run setting -> flag or variable


def resolve(args: argparse.Namespace, env: Mapping[str, str], cwd: Path) -> Resolved:
    """Flags over the environment; conflicts and bad environment values as usage errors."""
    flags = _given(args)
    scope = _scope(flags, env)
    from_env = _from_env(env, scope, set(flags))
    both = ((from_env, "env"), (flags, "flag"))  # lowest first
    for chosen, _ in both:
        _own_prompt(chosen, scope)
        for key in set(_PATHS) & chosen.keys():
            name, value = chosen[key]
            chosen[key] = (name, os.path.abspath(cwd / value))  # a symlink stays one
    run: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option in OPTIONS:
        if option.target.startswith("run."):
            run.setdefault(option.target[4:], option.default)
    for chosen, origin in both:
        for key, (name, value) in chosen.items():
            if key.startswith("run."):
                run[key[4:]] = value
                origins[key[4:]] = f"{origin} {name}"
    used = [f"{name}={env[name]}" for name, _ in from_env.values()]
    return Resolved(
        run=run,
        layers=tuple(_layer(chosen, origin) for chosen, origin in both),
        notes=(f"using environment: {', '.join(used)}",) if used else (),
        warnings=(
            *(text for (key, on), text in _DIFFERS.items() if run[key[4:]] == on),
            *(
                f"{name} is not used by tandem: {why}"
                for name, why in _UNUSED_ENV.items()
                if env.get(name)
            ),
        ),
        env={var: run[key] for key, var in _COMMANDS.items() if run[key]},
        origins=origins,
    )


def _given(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """The flags on the command line by target; two that disagree are a usage error."""
    given: dict[str, tuple[str, Any]] = {}
    for option in OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None:
            continue
        if option.target in given and not _same(given[option.target][1], value):
            other, before = given[option.target]
            raise UsageError(
                f"{other} and {option.flags[0]} disagree ({_shown(before)} vs {_shown(value)})",
                "give only one of them",
            )
        given[option.target] = (option.flags[0], value)
    return given


def _same(one: Any, other: Any) -> bool:
    """Equal, taking ``main`` and ``main.md`` for one prompt as the scripts did."""
    if isinstance(one, str) and isinstance(other, str):
        return read.prompt(one) == read.prompt(other)
    return bool(one == other)


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _scope(flags: Mapping[str, tuple[str, Any]], env: Mapping[str, str]) -> str:
    mode = flags.get("run.mode", ("", env.get("ORCHESTRATOR_MODE") or "combined"))[1]
    role = flags.get("run.role", ("", env.get("ORCHESTRATOR_ROLE") or ""))[1]
    if mode != "role":
        return "combined"
    try:
        return actor_name(role)
    except ValueError:
        return "combined"  # run.py reports the bad or missing --role


def _from_env(env: Mapping[str, str], scope: str, given: set[str]) -> dict[str, tuple[str, Any]]:
    """The scripts' environment variables, for what no flag set (first listed wins)."""
    found: dict[str, tuple[str, Any]] = {}
    for option in OPTIONS:
        for var in option.env:
            text = env.get(var.name, "")
            if not text or scope not in var.scope:
                continue
            if option.target in given or option.target in found or option.parse is None:
                continue
            try:
                value = option.parse(text)
            except ValueError as exc:
                raise UsageError(
                    f"{var.name}={text[:60]!r}: {exc}", f"fix or unset {var.name}"
                ) from None
            if value is not None:
                found[option.target] = (var.name, value)
    return found


def _own_prompt(chosen: dict[str, tuple[str, Any]], scope: str) -> None:
    """``--prompt``: the supervisor's or the loop's own prompt, so it needs one actor."""
    if "run.own_prompt" not in chosen:
        return
    name, value = chosen.pop("run.own_prompt")
    if scope == "combined":
        raise UsageError(
            f"{name} names one actor's prompt", "use --prompt-supervisor / --prompt-main"
        )
    key = "supervisor_prompt" if scope == "galph" else "main_prompt"
    if key in chosen and not _same(chosen[key][1], value):
        other, before = chosen[key]
        raise UsageError(
            f"{other} and {name} disagree ({_shown(before)} vs {_shown(value)})",
            "give only one of them",
        )
    chosen[key] = (name, value)


def _layer(chosen: Mapping[str, tuple[str, Any]], origin: str) -> Layer:
    legacy = {f for o in OPTIONS if o.legacy for f in o.flags}
    mapped = tuple(
        f"{name} -> {key} ({origin})"
        for key, (name, _) in chosen.items()
        if origin == "env" or name in legacy
    )
    config = {k: v for k, v in chosen.items() if not k.startswith("run.")}
    names = {k: name for k, (name, _) in config.items()}
    return Layer({k: v for k, (_, v) in config.items()}, names, origin, mapped)

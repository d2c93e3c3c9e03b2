"""``tandem run`` / ``supervisor`` / ``loop``: combined mode or role mode."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem import proc
from tandem.agents.dispatch import Dispatch
from tandem.agents.executor import AgentExecutor
from tandem.checks import actor_name
from tandem.commands.common import check_logs_dir, load_config
from tandem.config import Config, Layer
from tandem.errors import Interrupted, TandemError, UsageError
from tandem.host import Host, Policy, open_host
from tandem.interrupts import Interrupt
from tandem.logs import Console
from tandem.notify import Notifier
from tandem.options import resolve
from tandem.orchestrator import run_async_role, run_combined
from tandem.redaction import Redactor
from tandem.router import RouterContext, normalize, validate_steps
from tandem.state import Actor
from tandem.workflow import workflow_note


@dataclass(frozen=True)
class RunOptions:
    """Everything ``run`` takes from the command line and the environment."""

    mode: str = "combined"
    actor: Actor | None = None
    sync_via_git: bool = False
    iterations: int = 1
    config_path: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[Layer, ...] = ()  # the environment, then the flags, over the config
    use_git: bool = True
    push: bool = False
    commit_dry_run: bool = False
    strict_tree: bool = False
    quiet: bool = False
    verbose: bool = False
    agent_roles: Mapping[Actor, str] = field(default_factory=dict)
    agent_prompts: Mapping[str, str] = field(default_factory=dict)
    wait_on_peer_failure: bool = False
    start_prompt: str | None = None  # combined run: the step to begin at (SPEC §18)
    start_step: int | None = None
    notes: tuple[str, ...] = ()  # said once at the start (environment variables used)
    warnings: tuple[str, ...] = ()  # where tandem does what the scripts did not, on purpose
    env: Mapping[str, str] = field(default_factory=dict)  # set for the agents (CLAUDE_CMD)
    origins: Mapping[str, str] = field(default_factory=dict)  # run setting -> flag or variable


def run_options(args: argparse.Namespace, cwd: Path, env: Mapping[str, str]) -> RunOptions:
    """The flags over the environment, checked together, as ``RunOptions``."""
    found = resolve(args, env, cwd)
    opts = found.run
    _check_together(opts)
    warnings = list(found.warnings)
    if opts["tolerate_doc_dirty"] and opts["sync_via_git"]:
        warnings.append(
            "--tolerate-doc-dirty does not apply to sync mode: a turn that leaves paths it "
            "may not commit is not handed over (they would never reach the other machine)"
        )
    return RunOptions(
        mode=opts["mode"],
        actor=_actor(opts["role"]) if opts["role"] else None,
        sync_via_git=opts["sync_via_git"],
        iterations=opts["iterations"],
        config_path=args.config,
        layers=found.layers,
        use_git=not opts["no_git"],
        push=opts["push"],
        commit_dry_run=opts["commit_dry_run"],
        strict_tree=opts["strict_tree"],
        quiet=opts["output"] == "quiet",
        verbose=opts["output"] == "verbose",
        agent_roles={_actor(k): v for k, v in opts["agent_roles"].items()},
        agent_prompts={normalize(k): v for k, v in opts["agent_prompts"].items()},
        wait_on_peer_failure=opts["wait_on_peer_failure"],
        start_prompt=opts["start_prompt"],
        start_step=opts["start_step"],
        notes=found.notes,
        warnings=tuple(warnings),
        env=found.env,
        origins=found.origins,
    )


# (flag, flag, why): pairs that cannot work together, refused before anything runs
_INCOMPATIBLE = (
    ("push", "no_git", "--push publishes commits, and --no-git makes none"),
    ("push", "commit_dry_run", "--push publishes commits, and --commit-dry-run makes none"),
    ("no_git", "commit_dry_run", "--commit-dry-run shows commits, and --no-git makes none"),
    ("sync_via_git", "no_git", "turns are handed over by commits"),
    ("sync_via_git", "commit_dry_run", "turns are handed over by commits"),
    ("strict_tree", "tolerate_doc_dirty", "one fails a turn that --tolerate-doc-dirty lets pass"),
)


def _check_together(opts: Mapping[str, Any]) -> None:
    if opts["mode"] not in ("combined", "role"):
        raise UsageError(f"--mode must be combined or role, not '{opts['mode']}'", "fix --mode")
    if opts["mode"] == "role" and not opts["role"]:
        raise UsageError("--mode role needs --role galph|ralph", "add --role")
    if opts["mode"] == "combined" and opts["role"]:
        raise UsageError("--role only goes with --mode role", "add --mode role or drop --role")
    if opts["mode"] == "combined" and opts["sync_via_git"]:
        raise UsageError(
            "--sync-via-git needs role mode (one actor per machine)",
            "use `tandem supervisor --sync-via-git` / `tandem loop --sync-via-git`",
        )
    start = [
        f"--{k.replace('_', '-')}" for k in ("start_prompt", "start_step") if opts[k] is not None
    ]
    if start and opts["mode"] != "combined":
        raise UsageError(
            f"{start[0]} is for combined runs (in role mode each side runs its own steps)",
            f"drop {start[0]}, or run `tandem run` (combined)",
        )
    if len(start) == 2:
        raise UsageError("--start-prompt and --start-step both name a step", "keep one of them")
    for one, other, why in _INCOMPATIBLE:
        if opts[one] and opts[other]:
            first, second = (f"--{name.replace('_', '-')}" for name in (one, other))
            raise UsageError(f"{first} cannot work with {second}: {why}", f"drop {second}")


def _actor(text: str) -> Actor:
    try:
        return actor_name(text)
    except ValueError as exc:
        raise UsageError(str(exc), "name an actor") from None


def run(*, cwd: Path, options: RunOptions, env: Mapping[str, str] | None = None) -> int:
    """Run the loop the options ask for; the exit code."""
    env = {**(os.environ if env is None else env), **options.env}
    config = _auto_agent(
        load_config(cwd, options.config_path, options.overrides, env, options.layers), env
    )
    if config.source is None and not config.prompts_dir.is_dir():
        prompts = config.relative(config.prompts_dir)
        raise TandemError(
            f"no tandem host here: no orchestration.yaml and no {prompts}/ under {config.root}",
            "cd into your project, or run `tandem init` there first",
        )
    _start_step(RouterContext.from_config(config), options)  # bad steps: before anything runs
    console = Console(Redactor(env), quiet=options.quiet, verbose=options.verbose)
    for line in options.notes:
        console.say(line)
    for line in (*config.warnings, *options.warnings):
        console.warn(line)
    check_logs_dir(config)
    host = open_host(
        config,
        console=console,
        env=env,
        use_git=options.use_git,
        require_git=options.sync_via_git,
        policy=Policy(options.push, options.strict_tree, options.commit_dry_run),
    )
    host = dataclasses.replace(host, notifier=_notifier(config, console, env))
    interrupt = Interrupt()
    try:
        with host.run_lock(), interrupt.installed():
            executor = _ready_executor(host, options, env, interrupt)
            try:
                return _loop(host, options, executor, interrupt)
            except (TandemError, Interrupted) as exc:
                host.log.event("error", error=str(exc), kind=type(exc).__name__)
                raise
            finally:
                host.maintain()
    finally:
        interrupt.close()
        if host.notifier is not None:
            host.notifier.close()


def _notifier(config: Config, console: Console, env: Mapping[str, str]) -> Notifier | None:
    """The ``notify:`` receivers (SPEC §16), or None when none is configured."""
    spec = config.notify
    if not spec.command and not spec.urls:
        return None
    return Notifier(
        on=spec.on,
        command=spec.command,
        urls=spec.urls,
        redactor=console.redactor,
        warn=console.warn,
        env=env,
    )


def _auto_agent(config: Config, env: Mapping[str, str]) -> Config:
    """``auto`` (the scripts' default agent): claude if it is found, else codex."""
    agent = config.agent
    if "auto" not in (agent.default, *agent.roles.values()):
        return config
    claude = proc.which(env.get("CLAUDE_CMD") or "claude", env) is not None
    chosen = "claude" if claude else "codex"
    roles = {actor: chosen if name == "auto" else name for actor, name in agent.roles.items()}
    default = chosen if agent.default == "auto" else agent.default
    return dataclasses.replace(
        config, agent=dataclasses.replace(agent, default=default, roles=roles)
    )


def _ready_executor(
    host: Host, options: RunOptions, env: Mapping[str, str], interrupt: Interrupt
) -> AgentExecutor:
    """Check the state file and every agent; nothing is written before both pass."""
    config = host.config
    executor = AgentExecutor(
        config=config.agent,
        dispatch=Dispatch.build(config.agent, options.agent_roles, options.agent_prompts),
        root=config.root,
        env=env,
        console=host.console,
        redactor=host.console.redactor,
        interrupt=interrupt,
        state_file=config.state_file,
    )
    if host.state_file.exists():
        host.read_state()
    for name, executable, version in executor.preflight():
        host.log.event("agent", name=name, executable=executable, version=version)
        host.agent_versions[name] = version
    return executor


def _start_step(ctx: RouterContext, options: RunOptions) -> int | None:
    """Check every step of the workflow; the step ``--start-prompt``/``--start-step`` name."""
    validate_steps(ctx)
    if options.start_prompt is None and options.start_step is None:
        return None
    return ctx.workflow.start_index(options.start_prompt, options.start_step)


def _loop(host: Host, options: RunOptions, executor: AgentExecutor, interrupt: Interrupt) -> int:
    ctx = RouterContext.from_config(host.config)
    workflow = ctx.workflow
    start = _start_step(ctx, options)
    nothing = workflow_note(workflow, options.actor, sync=options.sync_via_git)
    if nothing is not None:
        host.console.say(nothing)
        if not workflow.steps or options.actor not in (None, *workflow.actors()):
            return 0
    if options.mode == "combined":
        return run_combined(
            host, ctx, executor, iterations=options.iterations, interrupt=interrupt, start=start
        )
    assert options.actor is not None
    if host.state_file.exists():
        workflow.check(host.read_state(), host.state_file.display)
    if options.sync_via_git:
        from tandem.sync import run_sync_role

        return run_sync_role(
            host,
            options.actor,
            ctx,
            executor,
            iterations=options.iterations,
            interrupt=interrupt,
            wait_on_peer_failure=options.wait_on_peer_failure,
        )
    return run_async_role(
        host, options.actor, ctx, executor, iterations=options.iterations, interrupt=interrupt
    )

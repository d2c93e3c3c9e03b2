"""``tandem run`` / ``supervisor`` / ``loop``: combined mode or role mode."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.agents.executor import AgentExecutor, Dispatch
from tandem.commands.common import load_config, path_overrides
from tandem.config import actor_name
from tandem.errors import Interrupted, TandemError, UsageError
from tandem.host import Host, Policy, open_host
from tandem.interrupts import Interrupt
from tandem.logs import Console, Redactor
from tandem.orchestrator import run_async_role, run_combined
from tandem.router import RouterContext, normalize
from tandem.state import Actor

# flag (argparse dest) -> config key it overrides (SPEC §11: a flag beats the config)
_FLAG_KEYS = {
    "agent": "agent.default",
    "agent_timeout": "agent.timeout_secs",
    "heartbeat_secs": "agent.heartbeat_secs",
    "branch": "sync.branch",
    "remote": "sync.remote",
    "poll_interval": "sync.poll_interval",
    "max_wait_sec": "sync.max_wait_sec",
    "prompt_supervisor": "supervisor_prompt",
    "prompt_main": "main_prompt",
    "prompt_reviewer": "reviewer_prompt",
    "use_router": "router.enabled",
    "router_prompt": "router.prompt",
    "router_mode": "router.mode",
    "router_review_every_n": "router.review_every_n",
}


@dataclass(frozen=True)
class RunOptions:
    """Everything ``run`` takes from the command line."""

    mode: str = "combined"
    actor: Actor | None = None
    sync_via_git: bool = False
    iterations: int = 1
    config_path: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    use_git: bool = True
    push: bool = False
    commit_dry_run: bool = False
    strict_tree: bool = False
    quiet: bool = False
    verbose: bool = False
    agent_roles: Mapping[Actor, str] = field(default_factory=dict)
    agent_prompts: Mapping[str, str] = field(default_factory=dict)
    wait_on_peer_failure: bool = False


def run_options(args: argparse.Namespace, cwd: Path) -> RunOptions:
    """Check the flags that go together and turn them into ``RunOptions``."""
    if args.mode == "role" and not args.role:
        raise UsageError("--mode role needs --role galph|ralph", "add --role")
    if args.mode == "combined" and args.role:
        raise UsageError("--role only goes with --mode role", "add --mode role or drop --role")
    if args.mode == "combined" and args.sync_via_git:
        raise UsageError(
            "--sync-via-git needs role mode (one actor per machine)",
            "use `tandem supervisor --sync-via-git` / `tandem loop --sync-via-git`",
        )
    if args.sync_via_git and (args.no_git or args.commit_dry_run):
        flag = "--no-git" if args.no_git else "--commit-dry-run"
        raise UsageError(
            f"--sync-via-git cannot work with {flag}: turns are handed over by commits",
            f"drop {flag}",
        )
    overrides = {
        key: getattr(args, dest)
        for dest, key in _FLAG_KEYS.items()
        if getattr(args, dest) is not None
    }
    if args.router_allowlist is not None:
        overrides["router.allowlist"] = _list(args.router_allowlist)
    overrides.update(path_overrides(args.state_file, args.logdir, cwd))
    return RunOptions(
        mode=args.mode,
        actor=_actor(args.role) if args.role else None,
        sync_via_git=args.sync_via_git,
        iterations=args.iterations,
        config_path=args.config,
        overrides=overrides,
        use_git=not args.no_git,
        push=args.push,
        commit_dry_run=args.commit_dry_run,
        strict_tree=args.strict_tree,
        quiet=args.quiet,
        verbose=args.verbose,
        agent_roles={_actor(k): v for k, v in _pairs(args.agent_role, "--agent-role").items()},
        agent_prompts={
            normalize(k): v for k, v in _pairs(args.agent_prompt, "--agent-prompt").items()
        },
        wait_on_peer_failure=args.wait_on_peer_failure,
    )


def _actor(text: str) -> Actor:
    try:
        return actor_name(text)
    except ValueError as exc:
        raise UsageError(str(exc), "name an actor") from None


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _pairs(text: str | None, flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in _list(text or ""):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(
                f"{flag} takes KEY=AGENT pairs separated by commas, not '{item}'",
                f"e.g. {flag} galph=codex,ralph=claude",
            )
        pairs[key.strip()] = value.strip()
    return pairs


def run(*, cwd: Path, options: RunOptions, env: Mapping[str, str] | None = None) -> int:
    """Run the loop the options ask for; the exit code."""
    env = dict(os.environ if env is None else env)
    config = load_config(cwd, options.config_path, options.overrides, env)
    if config.source is None and not config.prompts_dir.is_dir():
        prompts = config.relative(config.prompts_dir)
        raise TandemError(
            f"no tandem host here: no orchestration.yaml and no {prompts}/ under {config.root}",
            "cd into your project, or run `tandem init` there first",
        )
    console = Console(Redactor(env), quiet=options.quiet, verbose=options.verbose)
    host = open_host(
        config,
        console=console,
        env=env,
        use_git=options.use_git,
        require_git=options.sync_via_git,
        policy=Policy(options.push, options.strict_tree, options.commit_dry_run),
    )
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
    return executor


def _loop(host: Host, options: RunOptions, executor: AgentExecutor, interrupt: Interrupt) -> int:
    ctx = RouterContext.from_config(host.config)
    if options.mode == "combined":
        return run_combined(host, ctx, executor, iterations=options.iterations, interrupt=interrupt)
    assert options.actor is not None
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

"""The frozen ``Config``: every section of ``orchestration.yaml`` with its defaults.

A value here has passed the schema already (``configfile.py`` reads, checks and layers
the file, the environment and the flags), so the rest of tandem reads plain typed fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: --help need not import the state module
    from tandem.state import Actor

CONFIG_NAME = "orchestration.yaml"
GALPH_GLOBS = (
    "input.md",
    "galph_memory.md",
    "docs/fix_plan.md",
    "plans/**/*.md",
    "prompts/**/*.md",
    ".gitignore",
    ".gitattributes",
)


@dataclass(frozen=True)
class RouterConfig:
    """``router:``: when and how a prompt is picked (SPEC §4)."""

    enabled: bool = False
    mode: str = "router_default"
    prompt: str | None = None
    review_every_n: int = 0
    allowlist: tuple[str, ...] = ()
    actor_prompts: Mapping[Actor, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentConfig:
    """``agent:``: which agent runs a prompt and how (SPEC §6)."""

    default: str = "claude"
    roles: Mapping[Actor, str] = field(default_factory=dict)
    prompts: Mapping[str, str] = field(default_factory=dict)
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timeout_secs: float = 7200.0
    kill_grace_secs: float = 10.0
    heartbeat_secs: float = 60.0
    retries: int = 0  # reruns of a turn that failed with a transient error (SPEC §14.3)
    retry_delay_secs: float = 30.0  # the wait before the first rerun; doubling after it


@dataclass(frozen=True)
class LimitsConfig:
    """``limits:``: pauses for usage limits and the loop's budgets (SPEC §14.2, §14.4)."""

    pause: bool = True
    max_pause_secs: float = 86400.0
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_turns: int | None = None


@dataclass(frozen=True)
class NotifyConfig:
    """``notify:``: who hears about failures, pauses, budgets, stops (SPEC §16)."""

    on: tuple[str, ...] = ("failure", "pause", "budget", "stop", "done")
    command: tuple[str, ...] | None = None
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncConfig:
    """``sync:``: the remote that carries the turn between machines (SPEC §8)."""

    remote: str = "origin"
    branch: str | None = None
    poll_interval: float = 5.0
    max_wait_sec: float = 0.0
    lease_secs: float = 900.0  # renewed while the turn runs (SPEC §3.4.1)
    lease_renew_secs: float | None = None  # default: a third of the lease
    git_timeout_secs: float = 120.0  # a remote git command without progress is ended (§8.7)
    max_offline_secs: float = 0.0  # 0: ride out an unreachable remote forever (§8.7)

    @property
    def renew_secs(self) -> float:
        """How often the owner renews its lease through the remote."""
        return self.lease_renew_secs if self.lease_renew_secs is not None else self.lease_secs / 3


@dataclass(frozen=True)
class AutocommitConfig:
    """``autocommit:``: what each actor's turn publishes (SPEC §9)."""

    galph: tuple[str, ...] = GALPH_GLOBS
    ralph: tuple[str, ...] = ("**",)
    max_file_bytes: int = 5 * 1024 * 1024
    max_total_bytes: int = 20 * 1024 * 1024

    def globs(self, actor: Actor) -> tuple[str, ...]:
        """The globs of ``actor``."""
        return self.galph if actor == "galph" else self.ralph


@dataclass(frozen=True)
class WorkflowConfig:
    """``workflow:``: the workflow run and the user-defined ones (SPEC §18)."""

    name: str = "standard"
    steps: Mapping[str, tuple[tuple[Actor, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """Values above the config file, by dotted key: the environment, then the flags.

    ``names`` says where each key came from (``--poll-interval``, ``POLL_INTERVAL``), for
    error messages and ``tandem config --explain``; ``mapped`` lists the legacy names met.
    """

    values: Mapping[str, Any]
    names: Mapping[str, str] = field(default_factory=dict)
    origin: str = "flag"
    mapped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The validated configuration, with paths made absolute."""

    root: Path
    source: Path | None = None
    prompts_dir: Path = Path("prompts")
    supervisor_prompt: str = "supervisor.md"
    main_prompt: str = "main.md"
    reviewer_prompt: str = "reviewer.md"
    state_file: Path = Path("sync/state.json")
    logs_dir: Path = Path("logs")
    router: RouterConfig = field(default_factory=RouterConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    autocommit: AutocommitConfig = field(default_factory=AutocommitConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    # where each dotted key's value came from, legacy names met, warnings to show once
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)
    mapped: tuple[str, ...] = field(default=(), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def lease_secs(self) -> float:
        """How long a claim lasts without a renewal (SPEC §3.4.1)."""
        return self.sync.lease_secs

    def relative(self, path: Path) -> str:
        """``path`` relative to the host root when it is inside it (for git and messages)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

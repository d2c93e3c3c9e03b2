"""``orchestration.yaml``: discovery, strict validation, and the layers above the file.

Every key has a check in ``SCHEMA``. An unknown key is an error with a "did you mean"
hint, a wrong type is an error naming the key (a quoted ``"false"`` is not a bool), and
all problems are reported at once in one ``ConfigError`` (SPEC §12). The environment and
the flags are ``Layer``s above the file that go through the same schema, so a bad value
gets the same message wherever it came from, naming the variable or flag. The names of
the earlier orchestration scripts are rewritten first (``legacy``, SPEC §12.1). What comes
out is the frozen ``config.Config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tandem import legacy, yamlfile
from tandem.checks import (
    MAX_BYTES,
    MAX_COUNT,
    actor_name,
    argv,
    boolean,
    choice,
    integer,
    mapping,
    number,
    opt,
    str_list,
    string,
)
from tandem.config import (
    CONFIG_NAME,
    GALPH_GLOBS,
    AgentConfig,
    AutocommitConfig,
    Config,
    Layer,
    LimitsConfig,
    NotifyConfig,
    RouterConfig,
    SyncConfig,
    WorkflowConfig,
)
from tandem.errors import ConfigError, UsageError
from tandem.workflow import CADENCE, check_name, steps_value

ROUTER_MODES = {
    "router_default": "router_default",
    "default": "router_default",
    "router_first": "router_first",
    "first": "router_first",
    "router-first": "router_first",
    "router_only": "router_only",
    "only": "router_only",
    "router-only": "router_only",
}
GIT_TIMEOUT_MAX = 3600.0  # a git command silent for an hour is not making progress
MAX_TOKENS = 10**15  # a budget in tokens may be far above a count of iterations
_LINE = 200  # problems shown in one error line; the rest are counted (rule 7)


SCHEMA: dict[str, Any] = {
    "prompts_dir": string,
    "supervisor_prompt": string,
    "main_prompt": string,
    "reviewer_prompt": string,
    "state_file": string,
    "logs_dir": string,
    "router": {
        "enabled": boolean,
        "mode": choice(ROUTER_MODES),
        "prompt": opt(string),
        "review_every_n": integer(0),
        "allowlist": str_list,
        "actor_prompts": mapping(actor_name, str_list),
    },
    "agent": {
        "default": string,
        "roles": mapping(actor_name, string),
        "prompts": mapping(string, string),
        "commands": mapping(string, argv),
        "args": mapping(string, str_list),
        "permissions": mapping(string, str_list),
        "timeout_secs": number(0),
        "kill_grace_secs": number(0),
        "heartbeat_secs": number(0),
        "retries": integer(0, 100),
        "retry_delay_secs": number(0),
    },
    "sync": {
        "remote": string,
        "branch": opt(string),
        "poll_interval": number(0, exclusive=True),
        "max_wait_sec": number(0),
        "lease_secs": number(0, exclusive=True),
        "lease_renew_secs": opt(number(0, exclusive=True)),
        "git_timeout_secs": number(1, GIT_TIMEOUT_MAX),
        "max_offline_secs": number(0),
    },
    "autocommit": {
        "galph": str_list,
        "ralph": str_list,
        "max_file_bytes": integer(0, MAX_BYTES),
        "max_total_bytes": integer(0, MAX_BYTES),
        # the earlier scripts' switches and filters; they shape galph's globs (SPEC §12.1)
        "docs": boolean,
        "reports": boolean,
        "tracked_outputs": boolean,
        "report_extensions": str_list,
        "report_path_globs": str_list,
        "tracked_output_globs": str_list,
        "tracked_output_extensions": str_list,
    },
    "limits": {
        "pause": boolean,
        "max_pause_secs": number(0),
        "max_cost_usd": opt(number(0, MAX_COUNT)),
        "max_tokens": opt(integer(0, MAX_TOKENS)),
        "max_turns": opt(integer(0)),
    },
    "notify": {
        "on": str_list,
        "command": opt(argv),
        "urls": str_list,
    },
    "workflow": {
        "name": string,
        "steps": steps_value,
    },
}


def find_config(cwd: Path, explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else TANDEM_CONFIG, else the nearest orchestration.yaml upward."""
    chosen = explicit or env.get("TANDEM_CONFIG")
    if chosen:
        path = (cwd / chosen).resolve()
        if not path.is_file():
            source = "--config" if explicit else "TANDEM_CONFIG"
            raise ConfigError(f"{source} names {chosen}, which does not exist", "fix the path")
        return path
    for folder in (cwd, *cwd.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load(
    cwd: Path,
    *,
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    layers: Sequence[Layer] = (),
    default_root: Callable[[Path], Path] | None = None,
) -> Config:
    """Find, read and validate the config, then apply ``layers`` and ``overrides`` on top.

    ``overrides`` maps dotted keys (``router.mode``) to flag values; a bad layer value is
    a ``UsageError`` naming its flag or variable. Without a config file the root is
    ``default_root(cwd)``.
    """
    env = os.environ if env is None else env
    source = find_config(cwd, explicit, env)
    raw: dict[str, Any] = {}
    if source is not None:
        raw = yamlfile.read(source)
        root = source.parent
    else:
        root = default_root(cwd) if default_root else cwd
    shown = source.name if source else CONFIG_NAME
    raw, warnings = legacy.unused(raw, shown)
    raw, problems, names = legacy.unalias(raw)
    mapped = [f"{name} -> {key} ({shown})" for key, name in names.items()]
    values = _validate(raw, shown, problems, names)
    origins = dict.fromkeys(_leaves(values), shown)
    stack = [*layers, Layer(overrides)] if overrides else list(layers)
    for layer in stack:
        top = _validate(_nest(layer.values), "", [], layer.names, usage=True)
        values = _merge(values, top)
        origins |= {k: f"{layer.origin} {layer.names.get(k, k)}" for k in _leaves(top)}
        mapped += layer.mapped
    built = _build(values, root.resolve(), source)
    where = origins.get("workflow.name", shown)
    check_name(built.workflow.name, built.workflow.steps, where, usage=where != shown)
    _check_lease(built, origins)
    _check_state_place(built, origins)
    return _with_notes(built, origins, tuple(mapped), tuple(warnings))


def _check_state_place(config: Config, origins: Mapping[str, str]) -> None:
    """The state file lies in the work tree, outside .git/ and logs_dir (SPEC §13.1 rule 7):
    it is committed with every turn, and git never commits what is in those folders."""
    where = origins.get("state_file", "default")
    state, root = config.state_file, config.root
    logs = Path(os.path.abspath(config.logs_dir))
    if not state.is_relative_to(root):
        problem = f"is outside the work tree {root}"
    elif state.is_relative_to(root / ".git"):
        problem = "is inside .git/"
    elif state.is_relative_to(logs):
        problem = f"is inside logs_dir ({config.relative(logs)})"
    else:
        return
    raise ConfigError(
        f"state_file {state} {problem} ({where})",
        "put the state file in the work tree, e.g. sync/state.json",
    )


def _check_lease(config: Config, origins: Mapping[str, str]) -> None:
    """A lease that can lapse between two renewals would be taken over from a live owner."""
    sync = config.sync
    if sync.lease_secs >= 2 * sync.renew_secs:
        return
    where = origins.get("sync.lease_secs") or origins.get("sync.lease_renew_secs") or "config"
    raise ConfigError(
        f"sync.lease_secs ({sync.lease_secs:g}) must be at least twice sync.lease_renew_secs "
        f"({sync.renew_secs:g}) ({where})",
        "raise sync.lease_secs or lower sync.lease_renew_secs",
    )


def _with_notes(
    config: Config, origins: dict[str, str], mapped: tuple[str, ...], warnings: tuple[str, ...]
) -> Config:
    return dataclasses.replace(config, origins=origins, mapped=mapped, warnings=warnings)


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *sections, key = dotted.split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = value
    return nested


def _leaves(values: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        if isinstance(SCHEMA.get(key), dict):
            out += [f"{key}.{inner}" for inner in value]
        else:
            out.append(key)
    return out


def _validate(
    raw: dict[str, Any],
    shown: str,
    problems: list[str],
    names: Mapping[str, str],
    usage: bool = False,
) -> dict[str, Any]:
    """Checked values; every problem at once, in one line of bounded length.

    ``names`` are the names the user wrote for dotted keys (a flag, a variable, a legacy
    key), so a problem names what to fix; ``usage`` makes it a usage error (exit 2).
    """
    values = _walk(raw, SCHEMA, "", problems, names)
    if problems:
        if usage:
            raise UsageError(_joined(problems), "fix the flag or the environment variable")
        raise ConfigError(
            _joined([f"{shown}: {p}" for p in problems[:1]] + problems[1:]),
            f"fix {shown} (see the README's config reference)",
        )
    return values


def _joined(problems: list[str]) -> str:
    line = problems[0]
    for count, problem in enumerate(problems[1:], start=1):
        if len(line) + len(problem) > _LINE:
            rest = len(problems) - count
            return f"{line}; and {rest} more problem{'s' if rest > 1 else ''}"
        line += f"; {problem}"
    return line


def _walk(
    raw: Any,
    schema: dict[str, Any],
    prefix: str,
    problems: list[str],
    names: Mapping[str, str],
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(f"{prefix.rstrip('.')}: must be a mapping, not {type(raw).__name__}")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str) or key not in schema:
            problems.append(_unknown(str(key), prefix, schema))
        elif isinstance(schema[key], dict):
            section = {} if value is None else value  # `router:` with every key commented out
            out[key] = _walk(section, schema[key], f"{dotted}.", problems, names)
        else:
            try:
                out[key] = schema[key](value)
            except ValueError as exc:
                shown = f"{names[dotted]}: {dotted}" if dotted in names else dotted
                problems.append(f"{shown}: {exc}")
    return out


def _unknown(key: str, prefix: str, schema: dict[str, Any]) -> str:
    known = list(schema) + (list(legacy.ALIASES) if not prefix else [])
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return f"unknown key '{prefix}{key}'{hint}"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key in SCHEMA:
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _build(values: dict[str, Any], root: Path, source: Path | None) -> Config:
    def path(key: str, default: Path) -> Path:
        return (root / Path(values.get(key, default))).resolve()

    router = dict(values.get("router", {}))
    workflow = dict(values.get("workflow", {}))
    if workflow.get("name") in CADENCE and router.get("review_every_n"):
        router.setdefault("enabled", True)  # the scripts ran the cadence without the router
    return Config(
        root=root,
        source=source,
        prompts_dir=path("prompts_dir", Path("prompts")),
        supervisor_prompt=values.get("supervisor_prompt", "supervisor.md"),
        main_prompt=values.get("main_prompt", "main.md"),
        reviewer_prompt=values.get("reviewer_prompt", "reviewer.md"),
        # not resolved: a symlink there must be seen (and refused) as one (SPEC §13.1 rule 7)
        state_file=Path(os.path.abspath(root / Path(values.get("state_file", "sync/state.json")))),
        logs_dir=path("logs_dir", Path("logs")),
        router=RouterConfig(**router),
        agent=AgentConfig(**values.get("agent", {})),
        sync=SyncConfig(**values.get("sync", {})),
        autocommit=_autocommit(dict(values.get("autocommit", {}))),
        workflow=WorkflowConfig(**workflow),
        limits=LimitsConfig(**values.get("limits", {})),
        notify=NotifyConfig(**values.get("notify", {})),
    )


def _autocommit(values: dict[str, Any]) -> AutocommitConfig:
    fields = AutocommitConfig.__dataclass_fields__
    inputs = {key: values.pop(key) for key in list(values) if key not in fields}
    values["galph"] = legacy.galph_globs(tuple(values.get("galph", GALPH_GLOBS)), inputs)
    return AutocommitConfig(**values)

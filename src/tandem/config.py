"""``orchestration.yaml``: discovery, strict validation, and the frozen ``Config``.

Every key has a type in ``SCHEMA``. An unknown key is an error with a "did you mean"
hint, a wrong type is an error naming the key (a quoted ``"false"`` is not a bool), and
all problems are reported at once in one ``ConfigError`` (SPEC §12). Command-line flags
go through the same schema, so a bad flag value gets the same message.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.errors import ConfigError, UsageError
from tandem.state import Actor

CONFIG_NAME = "orchestration.yaml"
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
ACTOR_ALIASES: dict[str, Actor] = {
    "galph": "galph",
    "supervisor": "galph",
    "ralph": "ralph",
    "loop": "ralph",
    "engineer": "ralph",
}
GALPH_GLOBS = (
    "input.md",
    "galph_memory.md",
    "docs/fix_plan.md",
    "plans/**/*.md",
    "prompts/**/*.md",
    ".gitignore",
    ".gitattributes",
)
# The flat keys of the existing system (SPEC §12), and where they live now.
ALIASES = {
    "router_enabled": "router.enabled",
    "router_mode": "router.mode",
    "router_prompt": "router.prompt",
    "router_review_every_n": "router.review_every_n",
    "router_allowlist": "router.allowlist",
    "doc_whitelist": "router.allowlist",
}


# -- value checkers: each returns the converted value or raises ValueError(message) ------
Check = Callable[[Any], Any]


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}" (a quoted string)' if value.lower() in _BOOL_WORDS else f'"{value}"'
    return repr(value) if not isinstance(value, bool) else str(value).lower()


_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off"}


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_show(value)}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, not {_show(value)}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _number(minimum: float, exclusive: bool = False) -> Check:
    def check(value: Any) -> float:
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if bad or value < minimum or (exclusive and value == minimum):
            sign = ">" if exclusive else "≥"
            raise ValueError(f"must be a number {sign} {minimum:g}, not {_show(value)}")
        return float(value)

    return check


def _integer(minimum: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer ≥ {minimum}, not {_show(value)}")
        return value

    return check


def _opt(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ValueError(f"must be a list of strings, not the string {_show(value)}")
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of non-empty strings, not {_show(value)}")
    return tuple(value)


def _argv(value: Any) -> tuple[str, ...]:
    argv = _str_list(value)
    if not argv:
        raise ValueError("must be a non-empty list: [program, arg, ...]")
    return argv


def _choice(choices: Mapping[str, str]) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            allowed = ", ".join(sorted(set(choices.values())))
            raise ValueError(f"must be one of {allowed}, not {_show(value)}")
        return choices[value]

    return check


def _mapping(key_check: Check, value_check: Check) -> Check:
    def check(value: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"must be a mapping, not {_show(value)}")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            try:
                out[key_check(key)] = value_check(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return out

    return check


def actor_name(value: Any) -> Actor:
    """An actor from its name or alias (supervisor, loop, engineer)."""
    if not isinstance(value, str) or value.lower() not in ACTOR_ALIASES:
        raise ValueError(f"'{value}' is not an actor (use galph/supervisor or ralph/loop/engineer)")
    return ACTOR_ALIASES[value.lower()]


SCHEMA: dict[str, Any] = {
    "prompts_dir": _str,
    "supervisor_prompt": _str,
    "main_prompt": _str,
    "reviewer_prompt": _str,
    "state_file": _str,
    "logs_dir": _str,
    "router": {
        "enabled": _bool,
        "mode": _choice(ROUTER_MODES),
        "prompt": _opt_str,
        "review_every_n": _integer(0),
        "allowlist": _str_list,
        "actor_prompts": _mapping(actor_name, _str_list),
    },
    "agent": {
        "default": _str,
        "roles": _mapping(actor_name, _str),
        "prompts": _mapping(_str, _str),
        "commands": _mapping(_str, _argv),
        "args": _mapping(_str, _str_list),
        "permissions": _mapping(_str, _str_list),
        "timeout_secs": _number(0),
        "kill_grace_secs": _number(0),
        "heartbeat_secs": _number(0),
    },
    "sync": {
        "remote": _str,
        "branch": _opt_str,
        "poll_interval": _number(0, exclusive=True),
        "max_wait_sec": _number(0),
        "lease_secs": _opt(_number(0, exclusive=True)),
    },
    "autocommit": {
        "galph": _str_list,
        "ralph": _str_list,
        "max_file_bytes": _integer(0),
        "max_total_bytes": _integer(0),
    },
}


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


@dataclass(frozen=True)
class SyncConfig:
    """``sync:``: the remote that carries the turn between machines (SPEC §8)."""

    remote: str = "origin"
    branch: str | None = None
    poll_interval: float = 5.0
    max_wait_sec: float = 0.0
    lease_secs: float | None = None


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

    @property
    def lease_secs(self) -> float:
        """How long a claim lasts: the agent timeout plus 10 minutes (a day with no timeout)."""
        if self.sync.lease_secs is not None:
            return self.sync.lease_secs
        timeout = self.agent.timeout_secs
        return timeout + 600 if timeout > 0 else 86400.0

    def relative(self, path: Path) -> str:
        """``path`` relative to the host root when it is inside it (for git and messages)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


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
    default_root: Callable[[Path], Path] | None = None,
) -> Config:
    """Find, read and validate the config, then apply command-line ``overrides``.

    ``overrides`` maps dotted keys (``router.mode``) to flag values; a bad one is a
    ``UsageError``. Without a config file the root is ``default_root(cwd)``.
    """
    env = os.environ if env is None else env
    source = find_config(cwd, explicit, env)
    raw: dict[str, Any] = {}
    if source is not None:
        raw = _read_yaml(source)
        root = source.parent
    else:
        root = default_root(cwd) if default_root else cwd
    shown = source.name if source else CONFIG_NAME
    values = _validate(_unalias(raw, shown), shown)
    if overrides:
        flags = _validate(_nest(overrides), "command line", flags=True)
        values = _merge(values, flags)
    return _build(values, root.resolve(), source)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path.name}: {exc}", "keep one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path.name} is not valid YAML{where}: {problem}", "fix the YAML syntax"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", "check the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path.name} must be a mapping of keys, not {type(data).__name__}",
            "see the README's config reference",
        )
    return data


class _DuplicateKey(Exception):
    """A mapping names the same key twice (YAML would silently keep the last)."""


def _strict_loader() -> type[Any]:
    """A SafeLoader that refuses duplicate keys instead of keeping the last one."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    continue  # SafeLoader reports unhashable keys itself
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _DuplicateKey(f"duplicate key '{key}' at line {line}")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _unalias(raw: dict[str, Any], shown: str) -> dict[str, Any]:
    out = {k: v for k, v in raw.items() if k not in ALIASES}
    for flat, dotted in ALIASES.items():
        if flat not in raw:
            continue
        section, key = dotted.split(".")
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            continue  # the section's own type error is reported by _validate
        if key in target:
            raise ConfigError(f"{shown}: both {flat} and {dotted} are set", f"keep only {dotted}")
        target[key] = raw[flat]
    return out


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *sections, key = dotted.split(".")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = value
    return nested


def _validate(raw: dict[str, Any], shown: str, flags: bool = False) -> dict[str, Any]:
    problems: list[str] = []
    values = _walk(raw, SCHEMA, "", problems)
    if problems:
        error = UsageError if flags else ConfigError
        fix = "fix the flag" if flags else f"fix {shown} (see the README's config reference)"
        raise error(f"{shown}: " + "; ".join(problems), fix)
    return values


def _walk(raw: Any, schema: dict[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(f"{prefix.rstrip('.')}: must be a mapping, not {_show(raw)}")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str) or key not in schema:
            problems.append(_unknown(str(key), prefix, schema))
        elif isinstance(schema[key], dict):
            out[key] = _walk(value, schema[key], f"{dotted}.", problems)
        else:
            try:
                out[key] = schema[key](value)
            except ValueError as exc:
                problems.append(f"{dotted}: {exc}")
    return out


def _unknown(key: str, prefix: str, schema: dict[str, Any]) -> str:
    known = list(schema) + (list(ALIASES) if not prefix else [])
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

    return Config(
        root=root,
        source=source,
        prompts_dir=path("prompts_dir", Path("prompts")),
        supervisor_prompt=values.get("supervisor_prompt", "supervisor.md"),
        main_prompt=values.get("main_prompt", "main.md"),
        reviewer_prompt=values.get("reviewer_prompt", "reviewer.md"),
        state_file=path("state_file", Path("sync/state.json")),
        logs_dir=path("logs_dir", Path("logs")),
        router=RouterConfig(**values.get("router", {})),
        agent=AgentConfig(**values.get("agent", {})),
        sync=SyncConfig(**values.get("sync", {})),
        autocommit=AutocommitConfig(**values.get("autocommit", {})),
    )

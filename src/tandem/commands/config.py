"""``tandem config [--explain]``: the configuration a run would use (SPEC §12.1).

It takes the same flags as ``run`` and reads the same environment, so it answers "what
will my cron line do": every value, where it came from (flag, environment, file,
default), the legacy names it mapped, and the warning lines a run would print.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tandem.commands.common import load_config
from tandem.commands.run import RunOptions
from tandem.config import Config

_RUN_NAMES = {"actor": "role", "use_git": "no_git"}  # RunOptions field -> option target
_NOT_SHOWN = {"root", "source", "origins", "mapped", "warnings"}


def explain(*, cwd: Path, options: RunOptions, sources: bool = True) -> int:
    """Print the effective configuration; with ``sources``, where each value came from."""
    config = load_config(cwd, options.config_path, options.overrides, os.environ, options.layers)
    print(f"config file: {config.source or 'none (defaults)'}")
    print(f"root: {config.root}")
    shown = set()
    for key, value in leaves(config):
        shown.add(key)
        origin = f"  ({config.origins.get(key, 'default')})" if sources else ""
        print(f"{key}: {_text(config, value)}{origin}")
    for name in ("mode", "actor", "iterations", "sync_via_git", "use_git", "push"):
        origin = f"  ({options.origins.get(_RUN_NAMES.get(name, name), 'default')})"
        print(f"run.{name}: {_text(config, getattr(options, name))}{origin if sources else ''}")
    folded = [key for key in config.origins if key not in shown]
    for key in folded:
        print(f"{key}: folded into autocommit.galph  ({config.origins[key]})")
    if sources:
        print("legacy names:" if config.mapped else "legacy names: none")
        for line in config.mapped:
            print(f"  {line}")
    for line in options.notes:
        print(line)
    for line in (*config.warnings, *options.warnings):
        print(f"warning: {line}")
    return 0


def leaves(config: Config) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every setting, sections flattened."""
    for item in dataclasses.fields(config):
        if item.name in _NOT_SHOWN:
            continue
        value = getattr(config, item.name)
        if dataclasses.is_dataclass(value):
            for inner in dataclasses.fields(value):
                yield f"{item.name}.{inner.name}", getattr(value, inner.name)
        else:
            yield item.name, value


def _text(config: Config, value: Any) -> str:
    if isinstance(value, Path):
        return config.relative(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(config, v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(config, v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)

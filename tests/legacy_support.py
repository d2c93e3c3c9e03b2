"""A host as the earlier orchestration scripts' README sets one up, and option probes."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from helpers import PROMPTS, git, write
from tandem.cli import build_parser
from tandem.commands.common import load_config
from tandem.commands.run import RunOptions, run_options
from tandem.config import Config

LEGACY = Path(__file__).parent / "data" / "legacy"


def legacy_host(tmp_path: Path, config: str, state: str, *, name: str = "legacy") -> Path:
    """A git repo with the scripts' README config copied verbatim, their prompts and state."""
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch", "main")
    write(root, {f"prompts/{k}": v for k, v in PROMPTS.items()})
    shutil.copy(LEGACY / config, root / "orchestration.yaml")
    (root / "sync").mkdir()
    shutil.copy(LEGACY / state, root / "sync" / "state.json")
    write(root, {".gitignore": "logs/\n", "supervisor.sh": "#!/bin/bash\n"})
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "host of the orchestration scripts")
    return root


def effective(
    root: Path, *argv: str, env: Mapping[str, str] | None = None, config: str = ""
) -> tuple[RunOptions, Config]:
    """What ``tandem ARGV`` would run with in ``root``: its options and its config."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "orchestration.yaml").exists():
        (root / "orchestration.yaml").write_text(config)
    environ = dict(env or {})
    options = run_options(build_parser().parse_args(list(argv)), root, environ)
    loaded = load_config(root, options.config_path, options.overrides, environ, options.layers)
    return options, loaded

"""Helpers shared by the subcommands: config loading and path flags."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from tandem import configfile
from tandem.config import Config, Layer
from tandem.errors import ConfigError, NotAGitRepo
from tandem.git import Repo
from tandem.host import Host, open_host
from tandem.logs import Console
from tandem.redaction import Redactor


def path_overrides(state_file: str | None, logdir: str | None, cwd: Path) -> dict[str, Any]:
    """--state-file and --logdir as config overrides, absolute against the current folder."""
    overrides: dict[str, Any] = {}
    if state_file:
        overrides["state_file"] = os.path.abspath(cwd / state_file)  # a symlink stays one
    if logdir:
        overrides["logs_dir"] = str((cwd / logdir).resolve())
    return overrides


def load_config(
    cwd: Path,
    config_path: str | None,
    overrides: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    layers: Sequence[Layer] = (),
) -> Config:
    """The config, with the git top level as the root when there is no config file."""
    return configfile.load(
        cwd,
        explicit=config_path,
        env=os.environ if env is None else env,
        overrides=overrides,
        layers=layers,
        default_root=host_root,
    )


def check_logs_dir(config: Config) -> None:
    """A ``logs_dir`` tandem cannot write is one clear error before anything runs (rule 7)."""
    folder = config.logs_dir
    shown = config.relative(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"logs_dir {shown} is not a folder", "move that file away or set logs_dir elsewhere"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create logs_dir {shown}: {exc.strerror}", "set logs_dir to a writable folder"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"logs_dir {shown} is not writable", "fix its permissions or set logs_dir"
        )


def host_root(cwd: Path) -> Path:
    """The git top level of ``cwd``, or ``cwd`` outside git."""
    try:
        return Repo.discover(cwd).root
    except NotAGitRepo:
        return cwd


def quiet_host(
    cwd: Path, config_path: str | None, overrides: Mapping[str, Any], *, use_git: bool = True
) -> Host:
    """A ``Host`` for a read-only or short command (no agent output)."""
    config = load_config(cwd, config_path, overrides)
    console = Console(Redactor(os.environ))
    return open_host(config, console=console, use_git=use_git)


def sync_overrides(remote: str | None, branch: str | None) -> dict[str, Any]:
    """--remote and --branch as config overrides."""
    found: dict[str, Any] = {}
    if remote:
        found["sync.remote"] = remote
    if branch:
        found["sync.branch"] = branch
    return found


@contextlib.contextmanager
def quit_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end a viewing command (watch, logs --follow) like Ctrl-C does,
    through every ``finally`` on the way (the terminal is restored)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

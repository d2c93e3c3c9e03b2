"""``tandem watch``: the live view of a loop, or one line per change without a terminal."""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tandem.commands.common import quiet_host, quit_on_signals, sync_overrides
from tandem.errors import TandemError
from tandem.host import Host
from tandem.watch import RemoteSource, Watcher

QUIT_KEYS = (b"q", b"Q")


def watch(
    *,
    cwd: Path,
    remote: bool,
    remote_name: str | None,
    branch: str | None,
    interval: float,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Show the loop until ``q``, Ctrl-C or SIGTERM (exit 0); never writes anything."""
    host = quiet_host(cwd, config_path, {**overrides, **sync_overrides(remote_name, branch)})
    watcher = make_watcher(host, remote=remote, interval=interval)
    with quit_on_signals():
        try:
            if sys.stdout.isatty() and sys.stdin.isatty():
                _live(watcher, interval)
            else:
                _plain(watcher, interval)
        except KeyboardInterrupt:
            pass
    return 0


def make_watcher(host: Host, *, remote: bool, interval: float = 1.0) -> Watcher:
    """A watcher of ``host``'s files, or of its remote branch with ``remote`` (asked every
    five refreshes: ``ls-remote`` is a round trip, the local files are a ``stat``)."""
    source = None
    if remote:
        branch = host.config.sync.branch or host.branch
        if host.repo is None or branch is None:
            raise TandemError(
                "tandem watch --remote needs a git clone on a branch",
                "run it inside a clone of the host repository",
            )
        if not host.repo.has_remote(host.config.sync.remote):
            raise TandemError(
                f"there is no remote '{host.config.sync.remote}' here",
                "name it with --remote-name, or add it with git remote add",
            )
        source = RemoteSource(
            host.repo, host.config.sync.remote, branch, host.state_path, every=5 * interval
        )
    return Watcher(
        repo=host.repo,
        state_path=host.state_file.path,
        logs_folder=host.log.folder,
        limits=_limits(host),
        shown=host.state_path,
        remote=source,
    )


def _limits(host: Host) -> dict[str, float | None]:
    """The budgets of SPEC §14.4 where the config has them (``limits``)."""
    limits = getattr(host.config, "limits", None)
    keys = ("max_cost_usd", "max_tokens", "max_turns")
    return {key: getattr(limits, key, None) for key in keys}


def _plain(watcher: Watcher, interval: float) -> None:
    """One line per change, for ``ssh host tandem watch | tee``."""
    from tandem.view import plain

    last = None
    while True:
        snap = watcher.snapshot()
        line = plain(snap)
        if line != last:
            sys.stdout.write(f"{snap.now:%H:%M:%S}Z {line}\n")
            sys.stdout.flush()
            last = line
        time.sleep(interval)


def _live(watcher: Watcher, interval: float) -> None:
    """The full-screen view: refreshed every ``interval``, quits on ``q``."""
    from rich.console import Console
    from rich.live import Live

    from tandem.view import frame

    console = Console()
    fd = sys.stdin.fileno()
    with _keys(fd), Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            size = console.size
            live.update(frame(watcher.snapshot(), size.width, size.height), refresh=True)
            if _pressed(fd, interval) in QUIT_KEYS:
                return


def _pressed(fd: int, timeout: float) -> bytes:
    """The key pressed within ``timeout`` seconds, or b""."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return b""
    key = os.read(fd, 32)[:1]
    if not key:  # the terminal went away
        raise KeyboardInterrupt
    return key


@contextlib.contextmanager
def _keys(fd: int) -> Iterator[None]:
    """Keys arrive one by one, unechoed; the terminal's settings come back on every exit."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

"""``tandem logs``: the last iterations' turn logs, galph before ralph (SPEC §10)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

from tandem.commands.common import quiet_host, quit_on_signals
from tandem.config import actor_name
from tandem.errors import UsageError
from tandem.state import ACTORS

_NAME = re.compile(r"^iter-(\d+)_(\d{8}T\d{6}Z)_(.+)\.log$")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed even in CDATA


@dataclass(frozen=True)
class LogFile:
    """One turn log found on disk."""

    iteration: int
    actor: str
    stamp: str
    path: Path
    display: str


def logs(
    *,
    cwd: Path,
    iterations: int,
    actor: str | None,
    fmt: str,
    config_path: str | None,
    overrides: Mapping[str, Any],
    follow: bool = False,
    poll: float = 0.5,
) -> int:
    """Print the turn logs of the last ``iterations`` iterations (or ``follow`` the newest)."""
    host = quiet_host(cwd, config_path, overrides)
    try:
        actors = (actor_name(actor),) if actor else ACTORS
    except ValueError as exc:
        raise UsageError(str(exc), "use --actor galph or --actor ralph") from None
    if follow:
        with contextlib.suppress(KeyboardInterrupt), quit_on_signals():
            _follow(host.log.folder, actors, host.log.display, poll)
        return 0
    found = find_logs(host.log.folder, actors, host.log.display)
    wanted = sorted({f.iteration for f in found})[-iterations:]
    chosen = [f for f in found if f.iteration in wanted]
    if not chosen:
        print(f"tandem: no turn logs under {host.log.display(host.log.folder)}", file=sys.stderr)
        return 0
    if fmt == "xml":
        commits = host.repo.log_trailers("Tandem-Log") if host.repo is not None else {}
        _print_xml(chosen, commits)
    else:
        for log in chosen:
            print(f"==> {log.display} <==")
            sys.stdout.write(log.path.read_text(errors="replace"))
    return 0


def find_logs(folder: Path, actors: tuple[str, ...], display: Any) -> list[LogFile]:
    """Turn logs of ``actors``, ordered by iteration, galph before ralph, then by time."""
    found = []
    for who in actors:
        for path in (folder / who).glob("iter-*.log"):
            match = _NAME.match(path.name)
            if match and not path.is_symlink():
                found.append(LogFile(int(match[1]), who, match[2], path, display(path)))
    return sorted(found, key=lambda f: (f.iteration, actors.index(f.actor), f.stamp))


def _print_xml(chosen: list[LogFile], commits: Mapping[str, str]) -> None:
    print("<logs>")
    for log in chosen:
        commit = commits.get(log.display, "")
        text = _NOT_XML.sub("\ufffd", log.path.read_text(errors="replace"))
        text = text.replace("]]>", "]]]]><![CDATA[>")
        print(
            f"<log role={quoteattr(log.actor)} iter={quoteattr(str(log.iteration))} "
            f"path={quoteattr(log.display)} commit={quoteattr(commit)}><![CDATA[{text}]]></log>"
        )
    print("</logs>")


def _follow(folder: Path, actors: tuple[str, ...], display: Any, poll: float) -> None:
    """The newest turn log as it grows; when a newer one starts, the rest of the old one,
    then the new one from its start. Runs until Ctrl-C or SIGTERM."""
    current: Path | None = None
    offset = 0
    out = sys.stdout.buffer
    while True:
        newest = _newest(folder, actors)
        if current is not None:
            offset += _copy(current, offset, out)
        if newest is not None and newest != current:
            out.write(f"==> {display(newest)} <==\n".encode())
            current, offset = newest, 0
            offset += _copy(current, offset, out)
        out.flush()
        time.sleep(poll)


def _newest(folder: Path, actors: tuple[str, ...]) -> Path | None:
    """The turn log that ``latest.log`` of any actor points at, the most recently begun."""
    found = []
    for who in actors:
        latest = folder / who / "latest.log"
        with contextlib.suppress(OSError):
            target = latest.parent / os.readlink(latest)
            found.append((target.stat().st_ctime_ns, target))
    return max(found)[1] if found else None


def _copy(path: Path, offset: int, out: IO[bytes]) -> int:
    """Write what ``path`` holds past ``offset``; how many bytes that was."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return 0
    out.write(data)
    return len(data)

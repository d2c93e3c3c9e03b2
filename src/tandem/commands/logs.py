"""``tandem logs``: the last iterations' turn logs, galph before ralph (SPEC §10)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import quoteattr

from tandem.checks import actor_name
from tandem.commands.common import quiet_host, quit_on_signals
from tandem.errors import UsageError
from tandem.state import ACTORS

# tandem's names are iter-<N>_<UTC time>_<prompt>.log; the earlier scripts' logs and
# summaries (iter-<N>_<anything>.log, iter-<N>_<anything>-summary.md) are read too.
_NAMES = {
    "logs": ("{actor}", "iter-*.log", re.compile(r"^iter-(\d+)_(.+)\.log$")),
    "summaries": (
        "{actor}-summaries",
        "iter-*-summary.md",
        re.compile(r"^iter-(\d+)_(.*)-summary\.md$"),
    ),
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed even in CDATA


@dataclass(frozen=True)
class Pick:
    """Which logs to show, as the earlier ``tail_interleave_logs`` chose them."""

    branch: str | None = None  # logs/<branch>; None: the current branch
    roles: str | None = None  # "galph,ralph"
    min_iter: int | None = None
    max_iter: int | None = None
    source: str = "logs"  # or "summaries"
    ls_paths: str | None = None  # "docs,plans": list these folders at each log's commit

    def actors(self, actor: str | None) -> tuple[str, ...]:
        """The actors asked for by --actor or --roles (both: their intersection)."""
        try:
            named = [actor_name(a) for a in ([actor] if actor else [])]
            listed = [actor_name(a.strip()) for a in (self.roles or "").split(",") if a.strip()]
        except ValueError as exc:
            raise UsageError(str(exc), "name galph or ralph (--actor, --roles)") from None
        chosen = [a for a in ACTORS if (not named or a in named) and (not listed or a in listed)]
        if not chosen:
            raise UsageError("--actor and --roles name no actor in common", "drop one of them")
        return tuple(chosen)

    def keeps(self, iteration: int) -> bool:
        """True if ``iteration`` is inside --min-iter/--max-iter."""
        low, high = self.min_iter or 1, self.max_iter or iteration
        return low <= iteration <= high


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
    pick: Pick | None = None,
) -> int:
    """Print the turn logs of the last ``iterations`` iterations (or ``follow`` the newest)."""
    pick = pick or Pick()
    host = quiet_host(cwd, config_path, overrides)
    actors = pick.actors(actor)
    folder = host.log.folder
    if pick.branch is not None:
        name = pick.branch.removeprefix("logs/").strip("/").replace("/", "-")
        folder = host.config.logs_dir / name
    if follow:
        with contextlib.suppress(KeyboardInterrupt), quit_on_signals():
            _follow(folder, actors, host.log.display, poll)
        return 0
    found = [
        f
        for f in find_logs(folder, actors, host.log.display, pick.source)
        if pick.keeps(f.iteration)
    ]
    wanted = sorted({f.iteration for f in found})[-iterations:]
    chosen = [f for f in found if f.iteration in wanted]
    if not chosen:
        print(f"tandem: no turn {pick.source} under {host.log.display(folder)}", file=sys.stderr)
        return 0
    if fmt == "xml":
        repo = host.repo
        commits = repo.log_trailers("Tandem-Log") if repo is not None else {}
        roots = [r.strip() for r in (pick.ls_paths or "").split(",") if r.strip()]
        listing = (lambda sha: repo.files_at(sha, roots)) if repo and roots else None
        _print_xml(chosen, commits, listing)
    else:
        for log in chosen:
            print(f"==> {log.display} <==")
            sys.stdout.write(log.path.read_text(errors="replace"))
    return 0


def find_logs(
    folder: Path, actors: tuple[str, ...], display: Any, source: str = "logs"
) -> list[LogFile]:
    """Turn logs of ``actors``, ordered by iteration, galph before ralph, then by time."""
    subfolder, pattern, name = _NAMES[source]
    found = []
    for who in actors:
        for path in (folder / subfolder.format(actor=who)).glob(pattern):
            match = name.match(path.name)
            if match and not path.is_symlink():
                found.append(LogFile(int(match[1]), who, match[2], path, display(path)))
    return sorted(found, key=lambda f: (f.iteration, actors.index(f.actor), f.stamp))


def _print_xml(
    chosen: list[LogFile],
    commits: Mapping[str, str],
    listing: Callable[[str], dict[str, list[str]]] | None = None,
) -> None:
    print("<logs>")
    for log in chosen:
        commit = commits.get(log.display, "")
        print(
            f"<log role={quoteattr(log.actor)} iter={quoteattr(str(log.iteration))} "
            f"path={quoteattr(log.display)} commit={quoteattr(commit)}>"
            f"{_cdata(log.path.read_text(errors='replace'))}"
        )
        for root, files in (listing(commit) if listing and commit else {}).items():
            entries = "".join(f"{name}\n" for name in files)
            print(f"  <ls path={quoteattr(root)} commit={quoteattr(commit)}>{_cdata(entries)}</ls>")
        print("</log>")
    print("</logs>")


def _cdata(text: str) -> str:
    clean = _NOT_XML.sub("\ufffd", text).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{clean}]]>"


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

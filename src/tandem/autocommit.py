"""Which dirty paths a turn publishes (SPEC §9).

The actor's globs have gitignore semantics: a pattern without a slash matches at any
depth, ``**`` spans folders (``plans/**/*.md`` matches ``plans/x.md``), a pattern that
matches a folder matches everything in it, a trailing ``/`` matches folders only, and
``!pattern`` takes paths back out (the last matching pattern wins). Ignored files never
reach this module: ``git status`` does not list them, and nothing is force-added.
``selection_for`` applies an actor's globs to a host's dirty paths; the state file, its
temp files and the logs are never among them.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tandem.errors import TandemError
from tandem.files import is_temp_of
from tandem.gitstatus import Dirty
from tandem.host import Host
from tandem.state import Actor


@dataclass(frozen=True)
class Selection:
    """The outcome of matching a turn's dirty paths against the actor's globs."""

    commit: tuple[str, ...] = ()  # paths for the turn commit
    untracked: tuple[str, ...] = ()  # the new ones among them (``git add`` first)
    too_big: tuple[tuple[str, str], ...] = ()  # (path, why) left out by a size cap
    unmatched: tuple[str, ...] = ()  # dirty paths no glob matches

    @property
    def left_dirty(self) -> tuple[str, ...]:
        """Paths that stay dirty after the commit."""
        return (*self.unmatched, *(path for path, _ in self.too_big))


def select(
    dirty: Iterable[Dirty],
    globs: Sequence[str],
    *,
    root: Path,
    never: Iterable[str] = (),
    max_file_bytes: int,
    max_total_bytes: int,
) -> Selection:
    """Split ``dirty`` into what the turn commits and what stays (with reasons).

    ``never`` holds paths and folders (``logs/``) that are never committed here; the state
    file is committed by the stamp itself, so callers pass it in ``never`` too.
    """
    matcher = Matcher(tuple(globs))
    excluded = tuple(never)
    chosen: list[Dirty] = []
    unmatched: list[str] = []
    for entry in sorted(dirty, key=lambda d: d.path):
        if _under(entry.path, excluded):
            continue
        if matcher.matches(entry.path):
            chosen.append(entry)
        else:
            unmatched.append(entry.path)
    commit: list[str] = []
    untracked: list[str] = []
    too_big: list[tuple[str, str]] = []
    total = 0
    for entry in chosen:
        size = _size(os.path.join(root, entry.path))
        if size > max_file_bytes:
            too_big.append((entry.path, f"{size} bytes > autocommit.max_file_bytes"))
            continue
        if total + size > max_total_bytes:
            too_big.append((entry.path, "over autocommit.max_total_bytes for one turn"))
            continue
        total += size
        commit.append(entry.path)
        if entry.orig:
            commit.append(entry.orig)  # a rename is committed whole
        if entry.untracked:
            untracked.append(entry.path)
    return Selection(tuple(commit), tuple(untracked), tuple(too_big), tuple(unmatched))


def selection_for(host: Host, actor: Actor, dirty: Iterable[Dirty]) -> Selection:
    """Match dirty paths against ``actor``'s globs; never the state file, its temp files
    (an interrupted atomic write) or the logs."""
    config = host.config
    kept = [d for d in dirty if not _is_state_temp(host, d.path)]
    return select(
        kept,
        config.autocommit.globs(actor),
        root=config.root,
        never=(host.state_path, host.logs_path),
        max_file_bytes=config.autocommit.max_file_bytes,
        max_total_bytes=config.autocommit.max_total_bytes,
    )


def _is_state_temp(host: Host, path: str) -> bool:
    state = host.state_file.path
    name = path.rpartition("/")[2]
    if name not in ("", ".") and not is_temp_of(state, name):
        return False  # most paths: no Path built (its name is the same string then)
    full = host.config.root / path
    return full.parent == state.parent and is_temp_of(state, full.name)


def require_tree_for(host: Host, actor: Actor, fix: str) -> None:
    """Refuse to start when the tree has changes ``actor`` may not commit (listed)."""
    if host.repo is None:
        return
    unmatched = selection_for(host, actor, host.repo.status().dirty).unmatched
    if unmatched:
        more = f" (+{len(unmatched) - 10} more)" if len(unmatched) > 10 else ""
        raise TandemError(
            f"the work tree has changes {actor} may not commit: "
            + ", ".join(unmatched[:10])
            + more,
            fix,
        )


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _size(path: str) -> int:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return 0  # a deletion
    return 0 if stat.S_ISDIR(info.st_mode) else info.st_size


class Matcher:
    """gitignore-style matching of repo-relative POSIX paths."""

    def __init__(self, globs: tuple[str, ...]) -> None:
        self._rules = [_compile(g) for g in globs if g.strip() and not g.startswith("#")]

    def matches(self, path: str) -> bool:
        """True if the last pattern that matches ``path`` is not a negation."""
        hit = False
        for regex, negated in self._rules:
            if regex.match(path):
                hit = not negated
        return hit


@lru_cache(maxsize=256)
def _compile(glob: str) -> tuple[re.Pattern[str], bool]:
    negated = glob.startswith("!")
    pattern = glob[1:] if negated else glob
    folder_only = pattern.endswith("/")
    pattern = pattern.rstrip("/")
    anchored = "/" in pattern
    body = _translate(pattern.lstrip("/"))
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.+" if folder_only else "(?:/.*)?"
    return re.compile(f"^{prefix}{body}{suffix}$", re.DOTALL), negated


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            if at_start and pattern.startswith("**/", i):
                out.append("(?:.*/)?")
                i += 3
                continue
            if at_start and i + 2 == n:
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and pattern.find("]", i + 2) != -1:
            end = pattern.find("]", i + 2)  # a ] right after [ is a member, as in fnmatch
            inner = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + inner[1:] if inner.startswith("!") else inner) + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)

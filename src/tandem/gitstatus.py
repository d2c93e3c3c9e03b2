"""What ``git status --porcelain=v2 --branch -z`` says: HEAD, the branch, dirty paths.

Values and their parser only, apart from ``git.py`` (which runs the command), so the
rules that read a work tree (autocommit, the guard) and their tests need no git process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dirty:
    """One dirty path of the work tree, from ``git status --porcelain=v2 -z``."""

    path: str
    code: str  # the XY status pair, "??" for untracked
    orig: str | None = None  # the old path of a rename or copy

    @property
    def untracked(self) -> bool:
        """Not known to git yet (needs ``git add`` before a commit)."""
        return self.code == "??"

    @property
    def deleted(self) -> bool:
        """Deleted in the index or the work tree."""
        return "D" in self.code

    @property
    def unmerged(self) -> bool:
        """Part of an unresolved merge."""
        return self.code == "UU" or "U" in self.code or self.code in ("AA", "DD")


@dataclass(frozen=True)
class TreeStatus:
    """HEAD, branch and dirty paths, read in one ``git status`` call."""

    head: str | None  # full sha, None before the first commit
    branch: str | None  # None when detached
    dirty: tuple[Dirty, ...]


def parse_status(out: bytes) -> TreeStatus:
    """Parse ``git status --porcelain=v2 --branch -z``."""
    head: str | None = None
    branch: str | None = None
    dirty: list[Dirty] = []
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i].decode("utf-8", errors="surrogateescape")
        i += 1
        if not entry:
            continue
        kind = entry[0]
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            head = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            name = entry[len("# branch.head ") :]
            branch = None if name == "(detached)" else name
        elif kind == "1":
            parts = entry.split(" ", 8)
            dirty.append(Dirty(parts[8], parts[1]))
        elif kind == "2":
            parts = entry.split(" ", 9)
            orig = fields[i].decode("utf-8", errors="surrogateescape")
            i += 1
            dirty.append(Dirty(parts[9], parts[1], orig))
        elif kind == "u":
            parts = entry.split(" ", 10)
            dirty.append(Dirty(parts[10], parts[1]))
        elif kind == "?":
            dirty.append(Dirty(entry[2:], "??"))
    return TreeStatus(head, branch, tuple(dirty))

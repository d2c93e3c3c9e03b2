"""The rebase that never stops on the state file (SPEC §13.1 rule 3).

A rebase that meets another change to the state file merges the two states field by
field (``state.merge``) instead of stopping; any other conflict aborts it and leaves all
as it was. A state file changed locally but not committed (a local ``tandem stop``) is
set aside while the branch moves and merged back after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tandem.errors import GitError, RebaseConflict, StateError
from tandem.files import atomic_write
from tandem.git import Repo
from tandem.host import Host
from tandem.state import merge
from tandem.statefile import parse


@contextlib.contextmanager
def state_set_aside(host: Host, repo: Repo) -> Iterator[None]:
    """Move the branch with HEAD's state file in place, then merge a local change back."""
    path, shown = host.state_file.path, host.state_path
    committed = repo.show("HEAD", shown)
    if committed is None or not path.exists() or path.read_bytes() == committed:
        yield
        return
    local = host.read_state()
    base = parse(committed, f"HEAD:{shown}")
    atomic_write(path, committed)
    try:
        yield
    except BaseException:
        host.state_file.write(local)
        raise
    theirs = parse(repo.show("HEAD", shown) or committed, f"HEAD:{shown}")
    host.state_file.write(merge(theirs, local, base))
    host.log.event("state_merge", kept="local change")


def rebase_merging_state(host: Host, repo: Repo, onto: str, other: str) -> None:
    """Rebase onto ``onto``; a conflict in the state file alone is merged, any other
    conflict aborts the rebase and leaves everything as it was."""
    done = repo.git("rebase", "--quiet", "--no-autostash", onto, check=False)
    while done.returncode != 0:
        if repo.operation_in_progress(host.git_dir) != "rebase":
            why = _first_line(done.stderr.decode(errors="replace"))
            raise GitError(
                f"cannot rebase onto {onto[:12]}: {why}",
                "commit or move the local changes, then restart",
            )
        unmerged = ("diff", "--name-only", "--diff-filter=U", "-z")
        conflicted = repo.git(*unmerged, check=False).stdout
        paths = [p.decode(errors="replace") for p in conflicted.split(b"\0") if p]
        if paths != [host.state_path] or not _merge_state_stages(host, repo, other):
            repo.git("rebase", "--abort", check=False)
            raise RebaseConflict(
                f"rebasing local commits onto {onto[:12]} hit a conflict in "
                f"{', '.join(paths) or 'the tree'}; the rebase was aborted and nothing changed",
                "resolve it by hand (git pull --rebase), then restart",
            )
        done = repo.git("-c", "core.editor=true", "rebase", "--continue", check=False)


def _merge_state_stages(host: Host, repo: Repo, other: str) -> bool:
    """Resolve a state-file conflict: the replayed turn's fields, the other side's stop
    request and keys. False if a side is missing or invalid (then the rebase aborts)."""
    shown = host.state_path
    stages = [repo.show(f":{n}", shown) for n in (1, 2, 3)]
    if stages[1] is None or stages[2] is None:
        return False
    try:
        base = parse(stages[0], f"{shown} (base)") if stages[0] is not None else None
        other_side = parse(stages[1], f"{shown} ({other})")
        turn = parse(stages[2], f"{shown} (local)")
    except StateError:
        return False
    host.state_file.write(merge(turn, other_side, base))
    if repo.git("add", "--", shown, check=False).returncode != 0:
        return False
    host.log.event("state_merge", kept="the other side's stop request and keys")
    return True


def _first_line(text: str) -> str:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("hint:", "Hint:")):
            return line.removeprefix("error: ").removeprefix("fatal: ")
    return "git failed"

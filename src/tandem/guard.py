"""What the agent did to git and to the state file, checked after every turn (SPEC §13.1
rule 4), before anything is stamped or pushed.

An agent runs git commands of its own. If it left HEAD on another branch, below the turn's
claim, in the middle of a merge, or behind a lock, a stamp commit or a push would put the
turn's record in the wrong place; if it rewrote tandem's fields of the state file, the
record would lie. Each finding becomes the reason a turn fails, naming what the agent did
and the command that repairs it. Nothing here changes anything.
"""

from __future__ import annotations

import os

from tandem.gitstatus import TreeStatus
from tandem.host import Host
from tandem.state import State

_AFTER = "then restart (the failed turn is recorded then; nothing was reset or pushed)"


def git_problem(
    host: Host, branch: str | None, claim: str | None, status: TreeStatus | None
) -> str | None:
    """What the agent left wrong in git, as a failure reason with its repair; or None.

    ``branch`` is HEAD's branch when the turn began, ``claim`` its claim commit (sync mode).
    """
    if host.repo is None or status is None or host.git_dir is None:
        return None
    if branch is not None and status.branch != branch:
        now = f"branch {status.branch}" if status.branch else "a detached HEAD"
        return (
            f"the agent left the turn's branch {branch} for {now}; switch back "
            f"(git switch {branch}) and bring over what it committed there, {_AFTER}"
        )
    busy = host.repo.operation_in_progress(host.git_dir)
    if busy:
        return (
            f"the agent left a {busy} in progress; finish it (git {busy} --continue) or "
            f"abort it (git {busy} --abort), {_AFTER}"
        )
    lock = os.path.join(host.git_dir, "index.lock")
    if os.path.exists(lock):
        return (
            f"the agent left {lock} behind (a git command of its turn was killed); no git "
            f"command of this turn runs any more, so delete it (rm {lock}), {_AFTER}"
        )
    if claim is not None and not _descends(host, claim, status.head):
        return (
            f"the agent moved HEAD below the turn's claim commit {claim[:12]} "
            f"(git reset?); its commits stay reachable: put them back on top of the claim "
            f"(git rebase --autostash {claim[:12]}), {_AFTER}"
        )
    return None


def _descends(host: Host, ancestor: str, head: str | None) -> bool:
    assert host.repo is not None
    return head is not None and host.repo.is_ancestor(ancestor, head)


def state_problem(shown: str, running: State, found: State | None) -> str | None:
    """How the agent changed tandem's own fields of the state file during the turn; None if
    it changed only ``exit``, ``exit_reason`` or keys of its own (which are kept)."""
    if found is None:
        return (
            f"the agent left {shown} missing or invalid; tandem wrote its own record of the "
            "turn back (an agent may change only exit, exit_reason and keys of its own)"
        )
    if found is running:  # the file holds the bytes the turn's start wrote (``StateFile``)
        return None
    before, after = running.protocol_fields(), found.protocol_fields()
    changed = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    if not changed:
        return None
    return (
        f"the agent rewrote tandem's fields of {shown} ({', '.join(changed)}); tandem wrote "
        "its own record of the turn back (an agent may change only exit, exit_reason and "
        "keys of its own)"
    )

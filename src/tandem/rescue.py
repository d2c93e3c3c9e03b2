"""The old owner's way out after its turn was taken over elsewhere (SPEC §3.4.1).

A turn is taken over when its lease expired: the owner's machine died, or was cut off
longer than the lease, or its clock was behind. If the old owner is alive after all, its
turn must not be merged into the new owner's: its work (the finish commit, or the tree a
killed run left) goes to ``tandem/rescue/<actor>-i<iteration>-<host>`` on the remote and
as a local branch, the sync branch moves to the remote's tip (``reset --keep``: nothing of
the user's is lost, the work is on the rescue branch), and the run stops with one line
naming that branch and the turn's new owner (exit 1). Exactly one stamp lands, the new
owner's.
"""

from __future__ import annotations

import re

from tandem.autocommit import selection_for
from tandem.errors import StateError, TurnTakenOver
from tandem.git import Repo
from tandem.host import Host
from tandem.state import Actor, State
from tandem.statefile import parse
from tandem.subjects import parse_subject

_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


def taken_over(mine: State, theirs: State | None, actor: Actor) -> bool:
    """True if the remote's state says ``mine`` (our running turn) went to someone else."""
    if theirs is None or mine.status != f"running-{actor}" or mine.lease_owner is None:
        return False
    if theirs.iteration != mine.iteration or theirs.expected_actor != actor:
        return theirs.iteration >= mine.iteration  # moved on past it (the other stamped it)
    if theirs.status == f"running-{actor}":
        return theirs.lease_owner != mine.lease_owner
    return theirs.status in ("failed", "paused") and theirs.lease_owner != mine.lease_owner


def _new_owner(host: Host, repo: Repo, remote_sha: str, mine: State) -> str | None:
    """Who claimed ``mine``'s turn on the remote after us (its newest claim commit)."""
    for sha, subject in reversed(repo.commits(f"HEAD..{remote_sha}")):
        claim = parse_subject(subject)
        if claim is None or claim.status != "running" or claim.iteration != mine.iteration:
            continue
        text = repo.show(sha, host.state_path)
        try:
            owner = parse(text, sha).lease_owner if text is not None else None
        except StateError:
            continue
        if owner and owner != mine.lease_owner:
            return owner
    return None


def branch_name(actor: Actor, iteration: int, owner: str) -> str:
    """``tandem/rescue/ralph-i3-host-b``."""
    host = _UNSAFE.sub("-", owner.rpartition(":")[0] or owner).strip("-.") or "host"
    return f"tandem/rescue/{actor}-i{iteration}-{host}"


def rescue(
    host: Host, repo: Repo, remote: str, remote_sha: str, mine: State, theirs: State
) -> None:
    """Save ``mine``'s work on a rescue branch (local and remote), move to ``remote_sha``,
    and raise ``TurnTakenOver`` naming the branch and the new owner."""
    actor: Actor = "galph" if mine.status == "running-galph" else "ralph"
    name = branch_name(actor, mine.iteration, mine.lease_owner or str(host.owner))
    new_owner = _new_owner(host, repo, remote_sha, mine) or theirs.lease_owner or "another run"
    dirty = selection_for(host, actor, repo.status().dirty)
    if dirty.commit:
        repo.commit_paths(
            dirty.commit,
            dirty.untracked,
            f"tandem: rescued work of {actor}'s turn {mine.iteration} ({mine.lease_owner})",
        )
    head = repo.rev_parse("HEAD") or remote_sha
    repo.git("branch", "--force", name, head)
    repo.push(remote, name)
    repo.drop_commits(head, remote_sha)
    host.log.event("rescue", branch=name, head=head[:12], new_owner=theirs.lease_owner)
    raise TurnTakenOver(
        f"{actor}'s turn {mine.iteration} was taken over by {new_owner} while this run was "
        f"away; its work is on branch {name} (pushed to {remote}), nothing was merged",
        f"compare {name} with the new owner's turn and merge what you need by hand",
    )

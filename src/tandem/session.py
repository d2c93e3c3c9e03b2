"""One checked session with the remote: every command that touches it goes through here.

``Session.open`` runs the start-up checks of SPEC §8.1 once (work tree, branch, remote, no
operation in progress, the tree) and finishes what a killed run left (``recovery.py``);
role mode, ``stamp --sync-via-git``, ``stop --sync-via-git`` and ``run --push`` all open
one, so a commit of another branch is never pushed to the sync branch (SPEC §13.1 rule 5).
Its methods are the protocol's remote steps: catch up, publish, claim, request a stop.

The state file never causes a git conflict (rule 3): a rebase that meets another change
to it merges the two states field by field (``state.merge``) instead of stopping, and a
state file changed locally but not committed (a local ``tandem stop``) is set aside while
the branch moves and merged back after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from tandem.autocommit import Selection, require_tree_for
from tandem.errors import (
    ClaimedElsewhere,
    GitError,
    LeaseHeld,
    PushRejected,
    RebaseConflict,
    StateError,
    TandemError,
)
from tandem.files import atomic_write
from tandem.git import Repo
from tandem.host import Host
from tandem.recovery import recover, refuse_busy_repo
from tandem.state import Actor, State, merge, parse
from tandem.turns import (
    Started,
    begin_turn,
    claim_subject,
    commit_turn,
    parse_subject,
    stop_subject,
)

_PUSH_ATTEMPTS = 3


@dataclass(frozen=True)
class Remote:
    """The remote branch that carries the state."""

    name: str
    branch: str

    @property
    def ref(self) -> str:
        """Our copy of it: ``refs/remotes/<name>/<branch>``."""
        return f"refs/remotes/{self.name}/{self.branch}"

    @property
    def shown(self) -> str:
        """``origin/main``."""
        return f"{self.name}/{self.branch}"


class Session:
    """The host's repository and its remote branch, checked once when opened."""

    def __init__(self, host: Host, repo: Repo, remote: Remote) -> None:
        self.host = host
        self.repo = repo
        self.remote = remote

    @classmethod
    def open(
        cls, host: Host, *, actor: Actor | None = None, tree_fix: str | None = None
    ) -> Session:
        """Run the start-up checks (each a one-line error, nothing changed), then recover.

        With ``actor`` and ``tree_fix``, the tree may hold only changes ``actor`` may
        commit (role mode); the error names the others and says ``tree_fix``.
        """
        repo = _repo(host)
        refuse_busy_repo(host)
        branch = repo.status().branch
        if branch is None:
            raise GitError("HEAD is detached", "check out the branch to sync (git switch <branch>)")
        wanted = host.config.sync.branch
        if wanted and wanted != branch:
            raise GitError(
                f"on branch '{branch}', but --branch/sync.branch is '{wanted}'",
                f"git switch {wanted}, or drop --branch",
            )
        remote = Remote(host.config.sync.remote, branch)
        if not repo.has_remote(remote.name):
            raise GitError(
                f"remote '{remote.name}' does not exist",
                f"git remote add {remote.name} <url>, or pass --remote",
            )
        if not wanted:
            _refuse_a_new_branch(host, repo, remote)
        recover(host, sync=True)
        if actor is not None and tree_fix is not None:
            require_tree_for(host, actor, tree_fix)
        return cls(host, repo, remote)

    # -- catch up (SPEC §8.2.1) ----------------------------------------------------------
    def catch_up(self) -> str | None:
        """Bring the local branch up to the remote (fast-forward or rebase); its sha."""
        remote_sha = self.repo.fetch(self.remote.name, self.remote.branch)
        if remote_sha is None:
            return None
        self._drop_unpublished_claims(remote_sha)
        head = self.repo.rev_parse("HEAD")
        if head == remote_sha or (head is not None and self.repo.is_ancestor(remote_sha, head)):
            return remote_sha
        self.check_remote_state(remote_sha)
        with self._state_set_aside():
            if head is None or self.repo.is_ancestor(head, remote_sha):
                self.repo.fast_forward(remote_sha)
            else:
                self._rebase(remote_sha)
                self.host.log.event("rebase", onto=remote_sha[:12])
        return remote_sha

    def _drop_unpublished_claims(self, remote_sha: str) -> None:
        """A claim that never reached the remote never happened: undo it (it held no work)."""
        local_only = self.repo.commits(f"{remote_sha}..HEAD")
        claims = [parse_subject(subject) for _, subject in local_only]
        if not local_only or any(c is None or c.status != "running" for c in claims):
            return
        state_path = self.host.state_path
        if any(self.repo.changed_paths(sha) != [state_path] for sha, _ in local_only):
            return
        self.repo.drop_commits(local_only[-1][0], f"{local_only[0][0]}^")
        self.host.console.warn(
            f"dropped {len(local_only)} unpublished claim commit(s) of an earlier run"
        )
        self.host.log.event("drop_claim", commits=[sha[:12] for sha, _ in local_only])

    @contextlib.contextmanager
    def _state_set_aside(self) -> Iterator[None]:
        """Move the branch with HEAD's state file in place, then merge a local change back."""
        path, shown = self.host.state_file.path, self.host.state_path
        committed = self.repo.show("HEAD", shown)
        if committed is None or not path.exists() or path.read_bytes() == committed:
            yield
            return
        local = self.host.read_state()
        base = parse(committed, f"HEAD:{shown}")
        atomic_write(path, committed)
        try:
            yield
        except BaseException:
            self.host.state_file.write(local)
            raise
        theirs = parse(self.repo.show("HEAD", shown) or committed, f"HEAD:{shown}")
        self.host.state_file.write(merge(theirs, local, base))
        self.host.log.event("state_merge", kept="local change")

    def _rebase(self, onto: str) -> None:
        """Rebase onto ``onto``; a conflict in the state file alone is merged, any other
        conflict aborts the rebase and leaves everything as it was."""
        done = self.repo.git("rebase", "--quiet", "--no-autostash", onto, check=False)
        while done.returncode != 0:
            if self.repo.operation_in_progress(self.host.git_dir) != "rebase":
                why = _first_line(done.stderr.decode(errors="replace"))
                raise GitError(
                    f"cannot rebase onto {onto[:12]}: {why}",
                    "commit or move the local changes, then restart",
                )
            unmerged = ("diff", "--name-only", "--diff-filter=U", "-z")
            conflicted = self.repo.git(*unmerged, check=False).stdout
            paths = [p.decode(errors="replace") for p in conflicted.split(b"\0") if p]
            if paths != [self.host.state_path] or not self._merge_state_stages():
                self.repo.git("rebase", "--abort", check=False)
                raise RebaseConflict(
                    f"rebasing local commits onto {onto[:12]} hit a conflict in "
                    f"{', '.join(paths) or 'the tree'}; the rebase was aborted and nothing changed",
                    "resolve it by hand (git pull --rebase), then restart",
                )
            done = self.repo.git("-c", "core.editor=true", "rebase", "--continue", check=False)

    def _merge_state_stages(self) -> bool:
        """Resolve a state-file conflict: the replayed turn's fields, the other side's stop
        request and keys. False if a side is missing or invalid (then the rebase aborts)."""
        shown = self.host.state_path
        stages = [self.repo.show(f":{n}", shown) for n in (1, 2, 3)]
        if stages[1] is None or stages[2] is None:
            return False
        try:
            base = parse(stages[0], f"{shown} (base)") if stages[0] is not None else None
            other_side = parse(stages[1], f"{shown} ({self.remote.shown})")
            turn = parse(stages[2], f"{shown} (local)")
        except StateError:
            return False
        self.host.state_file.write(merge(turn, other_side, base))
        if self.repo.git("add", "--", shown, check=False).returncode != 0:
            return False
        self.host.log.event("state_merge", kept="the other side's stop request and keys")
        return True

    def check_remote_state(self, remote_sha: str) -> State | None:
        """The remote's state is untrusted: refuse an invalid one or one that went back."""
        shown = self.host.state_path
        text = self.repo.show(remote_sha, shown)
        if text is None:
            return None
        try:
            theirs = parse(text, f"{self.remote.shown}:{shown}")
        except StateError as exc:
            raise StateError(
                f"refused the remote's state: {exc.what}",
                f"commit a valid {shown} to {self.remote.shown}, then restart",
            ) from None
        ours = _parse_or_none(self.repo.show("HEAD", shown), shown)
        if ours is not None and theirs.iteration < ours.iteration:
            raise StateError(
                f"refused the remote's state: its iteration went back from {ours.iteration} "
                f"to {theirs.iteration} ({self.remote.shown}:{shown})",
                "find out who rewrote the remote; restore its state file, then restart",
            )
        return theirs

    # -- publish (SPEC §8.2.2 and 8.2.7) ---------------------------------------------------
    def publish(self, what: str = "the turn") -> bool:
        """Push local commits, catching up with a moved remote up to 3 times; True if
        that brought in commits made elsewhere."""
        caught_up = False
        for _ in range(_PUSH_ATTEMPTS):
            if not self._ahead():
                return caught_up
            try:
                self.repo.push(self.remote.name, self.remote.branch)
            except PushRejected:
                self.catch_up()
                caught_up = True
                continue
            self.host.log.event("push", what=what, head=(self.repo.rev_parse("HEAD") or "")[:12])
            return caught_up
        raise PushRejected(
            f"the push of {what} to {self.remote.shown} was rejected {_PUSH_ATTEMPTS} times "
            "(the remote keeps moving)",
            "rerun: tandem publishes pending commits first",
        )

    def _ahead(self) -> bool:
        head = self.repo.rev_parse("HEAD")
        remote_sha = self.repo.rev_parse(self.remote.ref)
        if head is None:
            return False
        return remote_sha is None or (
            head != remote_sha and not self.repo.is_ancestor(head, remote_sha)
        )

    def publish_turn(self) -> bool:
        """Step 7's push: on failure the stamp stays local, and the next start publishes it."""
        try:
            return self.publish()
        except TandemError as exc:
            raise GitError(
                f"turn stamped locally but not pushed ({exc.what})",
                "rerun to publish (the next start pushes it first)",
            ) from exc

    # -- claim (SPEC §8.2.5) ----------------------------------------------------------------
    def claim(self, actor: Actor, seen: State) -> Started:
        """Write, commit and push ``running-<actor>``; the agent starts only after this push."""
        for _ in range(_PUSH_ATTEMPTS):
            base = self.repo.rev_parse("HEAD")
            running = begin_turn(self.host, actor).state
            sha = commit_turn(self.host, running, Selection(), claim_subject(running), None)
            try:
                self.repo.push(self.remote.name, self.remote.branch)
            except PushRejected:
                self._undo_claim(sha, base)
                self._refuse_if_claimed(actor, seen)
                self.catch_up()
                self._refuse_if_moved_on(actor, seen)
                continue
            except TandemError:
                self._undo_claim(sha, base)
                raise
            self.host.log.event(
                "claim",
                actor=actor,
                iteration=running.iteration,
                commit=(sha or "")[:12],
                lease=running.lease_expires_at,
            )
            return Started(running, self.remote.branch, sha)
        raise PushRejected(
            f"could not claim {actor}'s turn: {self.remote.shown} moved {_PUSH_ATTEMPTS} times",
            "restart",
        )

    def _refuse_if_claimed(self, actor: Actor, seen: State) -> None:
        fetched = self.repo.fetch(self.remote.name, self.remote.branch) or ""
        theirs = self.check_remote_state(fetched)
        if theirs is None or theirs.same_turn(seen) or self._taken_over(actor, theirs):
            return
        self.host.log.event(
            "claimed_elsewhere",
            actor=actor,
            iteration=seen.iteration,
            owner=theirs.lease_owner,
            status=theirs.status,
        )
        raise ClaimedElsewhere(
            f"turn claimed elsewhere: {self.remote.shown} now says {theirs.status} at "
            f"iteration {theirs.iteration} (lease {theirs.lease_owner})",
            "nothing ran here; let that process finish",
        )

    def _refuse_if_moved_on(self, actor: Actor, seen: State) -> None:
        """A dead owner's claim seen in the remote may have been finished by then: once
        caught up, a turn that is no longer ``actor``'s at ``seen``'s iteration was run
        elsewhere."""
        now = self.host.read_state()
        if (now.expected_actor, now.iteration) == (actor, seen.iteration):
            return
        raise ClaimedElsewhere(
            f"turn claimed elsewhere: {self.remote.shown} now says {now.status} at "
            f"iteration {now.iteration}",
            "nothing ran here; the turn was run by another process",
        )

    def _taken_over(self, actor: Actor, theirs: State) -> bool:
        """True if the remote's claim is a dead process's (a killed run's own push, landed
        after it died): the retry takes that turn over instead of giving up."""
        try:
            return theirs.check_lease(actor, self.host.owner, self.host.clock()) is not None
        except LeaseHeld:
            return False

    def _undo_claim(self, sha: str | None, base: str | None) -> None:
        if sha is not None and base is not None:
            self.repo.drop_commits(sha, base)

    # -- stop and status -----------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """``tandem stop --sync-via-git``: commit and push the stop request."""
        self.catch_up()
        with self.host.locked():
            current = self.host.read_state()
            requested = self.host.state_file.write(current.with_stop(reason), self.host.clock())
        title = stop_subject(requested.iteration, reason, requested=True)
        commit_turn(self.host, requested, Selection(), title, None)
        self.publish("the stop request")

    def remote_state(self) -> State | None:
        """The state as the remote has it, after a fetch (read-only); None if it has none."""
        sha = self.repo.fetch(self.remote.name, self.remote.branch)
        text = self.repo.show(sha, self.host.state_path) if sha else None
        return None if text is None else parse(text, f"{self.remote.shown}:{self.host.state_path}")


def remote_view(host: Host) -> tuple[str, State] | None:
    """(``origin/main``, its state) for ``tandem status``: no checks that could refuse, and
    None without a remote, a branch or a state there (a fetch error is a warning)."""
    branch = host.config.sync.branch or host.branch
    if host.repo is None or branch is None:
        return None
    session = Session(host, host.repo, Remote(host.config.sync.remote, branch))
    if not host.repo.has_remote(session.remote.name):
        return None
    try:
        found = session.remote_state()
    except GitError as exc:
        host.console.warn(f"{exc.what}; showing the local state only")
        return None
    return None if found is None else (session.remote.shown, found)


def _refuse_a_new_branch(host: Host, repo: Repo, remote: Remote) -> None:
    """A loop is never moved to another branch unasked: a branch the remote has never
    had, whose history holds a state file (an agent may have switched to it), needs
    ``--branch`` to become a sync branch."""
    if repo.rev_parse(remote.ref) is not None or repo.show("HEAD", host.state_path) is None:
        return
    raise GitError(
        f"{remote.shown} does not exist, but this branch carries a loop ({host.state_path})",
        f"switch to the loop's branch (git switch <branch>), or pass --branch "
        f"{remote.branch} to sync this one",
    )


def _repo(host: Host) -> Repo:
    if host.repo is None:  # open_host(require_git=True) makes this unreachable
        raise GitError("sync via git needs a git work tree", "run inside the host repository")
    return host.repo


def _parse_or_none(text: bytes | None, source: str) -> State | None:
    if text is None:
        return None
    try:
        return parse(text, source)
    except StateError:
        return None


def _first_line(text: str) -> str:
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("hint:", "Hint:")):
            return line.removeprefix("error: ").removeprefix("fatal: ")
    return "git failed"

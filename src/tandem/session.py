"""One checked session with the remote: every command that touches it goes through here.

``Session.open`` runs the start-up checks of SPEC §8.1 once (work tree, branch, remote, no
operation in progress, the tree) and finishes what a killed run left (``recovery.py``);
role mode, ``stamp --sync-via-git``, ``stop --sync-via-git`` and ``run --push`` all open
one, so a commit of another branch is never pushed to the sync branch (SPEC §13.1 rule 5).
Its methods are the protocol's remote steps: catch up, publish, claim, request a stop;
each rides out an unreachable remote (``outage.py``, SPEC §8.7), and a turn this clone
ran that the remote shows taken over elsewhere is rescued, never merged (``rescue.py``).

The state file never causes a git conflict (rule 3): a rebase that meets another change
to it merges the two states field by field (``state.merge``) instead of stopping, and a
state file changed locally but not committed (a local ``tandem stop``) is set aside while
the branch moves and merged back after (``statemerge.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tandem.autocommit import Selection, require_tree_for, selection_for
from tandem.errors import (
    ClaimedElsewhere,
    GitError,
    LeaseHeld,
    PushRejected,
    StateError,
    TandemError,
    TurnTakenOver,
)
from tandem.git import Repo
from tandem.host import Host
from tandem.lease import Owner, judge
from tandem.outage import Outage
from tandem.recovery import recover, refuse_busy_repo
from tandem.renewal import Renewal, Renewer, lease_ref, seen_ref
from tandem.rescue import rescue, taken_over
from tandem.state import Actor, State
from tandem.statefile import parse
from tandem.statemerge import rebase_merging_state, state_set_aside
from tandem.subjects import INIT_SUBJECT, claim_subject, parse_subject, stop_subject
from tandem.turns import Started, begin_turn, commit_turn

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

    def __init__(self, host: Host, repo: Repo, remote: Remote, actor: Actor | None = None) -> None:
        self.host = host
        self.repo = repo
        self.remote = remote
        self.actor = actor  # role mode: the actor whose turns this run plays
        self.outage = Outage(host)
        self.turn: State | None = None  # the running state of the turn this run claimed

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
        return cls(host, repo, remote, actor)

    # -- catch up (SPEC §8.2.1) ----------------------------------------------------------
    def catch_up(self) -> str | None:
        """Bring the local branch up to the remote (fast-forward or rebase); its sha."""
        return self._catch_up_to(self.fetch())

    def _catch_up_to(self, remote_sha: str | None) -> str | None:
        """``catch_up`` to a remote tip just fetched."""
        if remote_sha is None:
            return None
        self._drop_unpublished_claims(remote_sha)
        head = self.repo.rev_parse("HEAD")
        if head == remote_sha or (head is not None and self.repo.is_ancestor(remote_sha, head)):
            return remote_sha
        theirs = self.check_remote_state(remote_sha)
        mine = self.turn or self._orphaned_turn(remote_sha)
        if mine is not None and taken_over(mine, theirs, _actor_of(mine)):
            assert theirs is not None
            rescue(self.host, self.repo, self.remote.name, remote_sha, mine, theirs)
        with state_set_aside(self.host, self.repo):
            if head is None or self.repo.is_ancestor(head, remote_sha):
                self.repo.fast_forward(remote_sha)
            else:
                rebase_merging_state(self.host, self.repo, remote_sha, self.remote.shown)
                self.host.log.event("rebase", onto=remote_sha[:12])
        return remote_sha

    def fetch(self) -> str | None:
        """Fetch the remote branch (riding out an outage); its sha, None if absent."""
        return self.outage.ride("sync", lambda: self.repo.fetch(*self._where))

    @property
    def _where(self) -> tuple[str, str]:
        return self.remote.name, self.remote.branch

    def _orphaned_turn(self, remote_sha: str) -> State | None:
        """HEAD's running turn of our actor, owned by a process of this host that is gone
        and holding work (files, or commits the remote lacks): a killed run's turn, whose
        work a restart rescues if the remote gave the turn to someone else."""
        state = _parse_or_none(self.repo.show("HEAD", self.host.state_path), "HEAD")
        if state is None or self.actor is None or state.status != f"running-{self.actor}":
            return None
        holder = Owner.parse(state.lease_owner or "", state.lease_identity)
        if judge(holder, self.host.owner, expired=False) != "stale":
            return None
        work = selection_for(self.host, self.actor, self.repo.status().dirty).commit
        return state if work or self.repo.commits(f"{remote_sha}..HEAD") else None

    def _drop_unpublished_claims(self, remote_sha: str) -> None:
        """A claim that never reached the remote never happened: undo it (it held no work).

        So is a state file galph created while another galph's reached the remote first
        (two first starts at once): the remote's is kept; as with a claim, the first wins."""
        local_only = self.repo.commits(f"{remote_sha}..HEAD")
        if not local_only:
            return
        state_path = self.host.state_path
        created = [sha for sha, subject in local_only if subject == INIT_SUBJECT]
        claims = [parse_subject(s) for sha, s in local_only if sha not in created]
        if any(c is None or c.status != "running" for c in claims):
            return
        if created and self.repo.show(remote_sha, state_path) is None:
            return  # the remote has no state file yet: ours is still the one to publish
        if any(self.repo.changed_paths(sha) != [state_path] for sha, _ in local_only):
            return
        self.repo.drop_commits(local_only[-1][0], f"{local_only[0][0]}^")
        if created:
            self.host.console.say(f"another galph created {state_path} first; using the remote's")
        else:
            self.host.console.warn(
                f"dropped {len(local_only)} unpublished claim commit(s) of an earlier run"
            )
        self.host.log.event("drop_claim", commits=[sha[:12] for sha, _ in local_only])

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
                self.outage.ride("publish", lambda: self.repo.push(*self._where))
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
        """Step 7's push: on failure the stamp stays local, and the next start publishes it.

        A remote that shows the turn taken over meanwhile gets the work on a rescue branch
        instead (``TurnTakenOver``)."""
        try:
            published = self.publish()
        except TurnTakenOver:
            raise
        except TandemError as exc:
            raise GitError(
                f"turn stamped locally but not pushed ({exc.what})",
                "rerun to publish (the next start pushes it first)",
            ) from exc
        self.turn = None
        return published

    # -- claim (SPEC §8.2.5) ----------------------------------------------------------------
    def claim(self, actor: Actor, seen: State, lease_now: datetime | None = None) -> Started:
        """Write, commit and push ``running-<actor>``; the agent starts only after this push.

        ``lease_now`` is now on the lease owner's clock, when the wait knows it differs."""
        for _ in range(_PUSH_ATTEMPTS):
            base = self.repo.rev_parse("HEAD")
            running = begin_turn(self.host, actor, lease_now=lease_now).state
            sha = commit_turn(self.host, running, Selection(), claim_subject(running), None)
            try:
                self.outage.ride("claim", lambda: self.repo.push(*self._where))
            except PushRejected:
                remote_sha = self.fetch()  # once: it both judges and catches up
                theirs = self.check_remote_state(remote_sha) if remote_sha else None
                if remote_sha is not None and theirs is not None and _own_claim(theirs, running):
                    return self._adopt(running, sha, base, remote_sha)
                self._undo_claim(sha, base)
                self._refuse_if_claimed(actor, seen, theirs)
                self._catch_up_to(remote_sha)
                # A push that raced another for the remote's ref lock is refused while the
                # remote still shows the old state: what the catch-up brought decides.
                self._refuse_if_claimed(actor, seen, self.host.read_state())
                continue
            except TandemError:
                self._undo_claim(sha, base)
                raise
            return self._claimed(running, sha)
        raise PushRejected(
            f"could not claim {actor}'s turn: {self.remote.shown} moved {_PUSH_ATTEMPTS} times",
            "restart",
        )

    def _claimed(self, running: State, sha: str | None, **more: object) -> Started:
        self.host.log.event(
            "claim",
            actor=_actor_of(running),
            iteration=running.iteration,
            commit=(sha or "")[:12],
            lease=running.lease_expires_at,
            **more,
        )
        self.turn = running
        return Started(running, self.remote.branch, sha)

    def _adopt(self, running: State, sha: str | None, base: str | None, remote: str) -> Started:
        """The remote shows this process's own claim: a push that timed out after the
        remote applied it (the answer was lost). The turn is ours; go on with it."""
        if sha is None or not self.repo.is_ancestor(sha, remote):
            self._undo_claim(sha, base)  # the remote holds the claim as another commit
            sha = remote
        self._catch_up_to(remote)  # anything pushed on top meanwhile (a stop request)
        self.host.console.say("the claim push had reached the remote; going on with the turn")
        return self._claimed(running, sha, adopted=True)

    def _refuse_if_claimed(self, actor: Actor, seen: State, theirs: State | None) -> None:
        if theirs is None or theirs.same_turn(seen) or self._taken_over(actor, theirs):
            return
        self.host.log.event(
            "claimed_elsewhere",
            actor=actor,
            iteration=seen.iteration,
            owner=theirs.lease_owner,
            status=theirs.status,
        )
        lease = f" (lease {theirs.lease_owner})" if theirs.lease_owner else ""
        raise ClaimedElsewhere(
            f"turn claimed elsewhere: {self.remote.shown} now says {theirs.status} at "
            f"iteration {theirs.iteration}{lease}",
            "nothing ran here; let that process finish",
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

    # -- lease renewal (SPEC §3.4.1, renewal.py) ----------------------------------------------
    def renewer(self, running: State) -> Renewer:
        """A renewer of ``running``'s lease through this remote (``start()`` it, ``stop()`` it)."""
        sync = self.host.config.sync
        return Renewer(
            self.repo,
            self.remote.name,
            self.remote.branch,
            running,
            self.host.log,
            self.host.clock,
            sync.lease_secs,
            sync.renew_secs,
            self.outage,
        )

    def renewal(self) -> Renewal | None:
        """The remote's latest renewal, fetched; None if absent or garbage (never trusted)."""
        branch = self.remote.branch
        sha = self.repo.fetch_ref(self.remote.name, lease_ref(branch), seen_ref(branch))
        text = self.repo.show(sha, "lease.json") if sha else None
        found = Renewal.parse(text) if text is not None else None
        if text is not None and found is None:
            self.host.log.event("renewal_garbage", ref=lease_ref(branch))
        return found

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
        sha = self.repo.fetch(*self._where)
        text = self.repo.show(sha, self.host.state_path) if sha else None
        return None if text is None else parse(text, f"{self.remote.shown}:{self.host.state_path}")


def remote_view(host: Host) -> tuple[str, State, Renewal | None] | None:
    """(``origin/main``, its state, its latest renewal) for ``tandem status``: no checks
    that could refuse, and None without a remote, a branch or a state there (a fetch error
    is a warning)."""
    branch = host.config.sync.branch or host.branch
    if host.repo is None or branch is None:
        return None
    session = Session(host, host.repo, Remote(host.config.sync.remote, branch))
    if not host.repo.has_remote(session.remote.name):
        return None
    try:
        found = session.remote_state()
        renewal = session.renewal() if found is not None else None
    except GitError as exc:
        host.console.warn(f"{exc.what}; showing the local state only")
        return None
    return None if found is None else (session.remote.shown, found, renewal)


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


def _own_claim(theirs: State, running: State) -> bool:
    """True if ``theirs`` is ``running``'s claim: same turn, same owner, same process."""
    keys = ("status", "iteration", "lease_owner", "lease_identity")
    return all(getattr(theirs, k) == getattr(running, k) for k in keys)


def _actor_of(running: State) -> Actor:
    return "galph" if running.status == "running-galph" else "ralph"

"""Sync via git: two machines hand the turn to each other through the remote (SPEC §8).

One turn of actor A: sync with the remote → publish pending commits → stop check → wait
for A's turn → claim it (pushed before the agent starts) → run → finish commit → push.
The remote decides every race: a claim is a fast-forward push, so of two processes that
claim the same turn exactly one push lands; the other sees "claimed elsewhere".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from tandem.autocommit import Selection
from tandem.errors import (
    ClaimedElsewhere,
    GitError,
    PushRejected,
    RemoteUnreachable,
    StateError,
    TandemError,
)
from tandem.git import Repo
from tandem.host import Host
from tandem.interrupts import Interrupt
from tandem.logs import human_duration
from tandem.orchestrator import play_turn, stopped_after
from tandem.router import RouterContext
from tandem.runner import PromptExecutor
from tandem.state import Actor, State, other, parse
from tandem.turns import (
    begin_turn,
    commit_turn,
    pending_stop,
    record_stop,
    require_tree_for,
)

_CLAIM = re.compile(r"^\[SYNC i=\d+\] actor=(galph|ralph) status=running$")
_PUSH_ATTEMPTS = 3
_FIRST_POLL = 0.2
_BACKOFF = 1.5


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

    @classmethod
    def of(cls, host: Host) -> Remote:
        """From the config (``--remote``/``--branch``) and the current branch."""
        branch = host.config.sync.branch or host.branch
        if branch is None:
            raise GitError("HEAD is detached", "check out the branch to sync (git switch main)")
        return cls(host.config.sync.remote, branch)


def _repo(host: Host) -> Repo:
    if host.repo is None:  # open_host(require_git=True) makes this unreachable
        raise GitError("sync via git needs a git work tree", "run inside the host repository")
    return host.repo


# -- the role loop --------------------------------------------------------------------------
def run_sync_role(
    host: Host,
    actor: Actor,
    ctx: RouterContext,
    executor: PromptExecutor,
    *,
    iterations: int,
    interrupt: Interrupt,
    wait_on_peer_failure: bool,
) -> int:
    """``iterations`` turns of ``actor``, each waited for and claimed through the remote."""
    remote = check_startup(host, actor)
    host.log.event(
        "run_start", actor=actor, mode="sync", iterations=iterations, remote=remote.shown
    )
    waiter = _Waiter(host, remote, actor, interrupt, wait_on_peer_failure)
    for _ in range(iterations):
        interrupt.check()
        sync(host, remote)
        publish(host, remote, what="pending commits")
        if _stopped(host, remote, actor):
            return 0
        seen = waiter.wait()
        if seen is None:
            return 0  # a stop request arrived while waiting
        running = claim(host, remote, actor, seen)
        finished = play_turn(
            host, actor, ctx, executor, gated=True, leftovers="fail", running=running
        )
        publish_turn(host, remote)
        if stopped_after(host, finished):
            return 0
    host.log.event("run_end", actor=actor, mode="sync")
    return 0


def _stopped(host: Host, remote: Remote, actor: Actor) -> bool:
    """The stop check: honour, record and publish a stop request."""
    reason = pending_stop(host) if host.state_file.exists() else None
    if reason is None:
        return False
    record_stop(host, reason, actor)
    publish(host, remote, what="the stop")
    return True


# -- start-up checks (SPEC §8.1) ----------------------------------------------------------------
def check_startup(host: Host, actor: Actor) -> Remote:
    """Every precondition of a sync run, each a one-line error with nothing changed."""
    repo = _repo(host)
    busy = repo.operation_in_progress()
    if busy:
        raise GitError(
            f"a {busy} is in progress in {repo.root}",
            f"finish it (git {busy} --continue) or abort it (git {busy} --abort), then restart",
        )
    status = repo.status()
    if status.branch is None:
        raise GitError("HEAD is detached", "check out the branch to sync (git switch <branch>)")
    wanted = host.config.sync.branch
    if wanted and wanted != status.branch:
        raise GitError(
            f"on branch '{status.branch}', but --branch/sync.branch is '{wanted}'",
            f"git switch {wanted}, or drop --branch",
        )
    remote = Remote.of(host)
    if not repo.has_remote(remote.name):
        raise GitError(
            f"remote '{remote.name}' does not exist",
            f"git remote add {remote.name} <url>, or pass --remote",
        )
    _reconcile_state_file(host, repo, [d.path for d in status.dirty])
    require_tree_for(host, actor, f"commit or move them first (see autocommit.{actor})")
    return remote


def _reconcile_state_file(host: Host, repo: Repo, dirty: list[str]) -> None:
    """An uncommitted state write left by a killed run is superseded by the committed one.

    Only tandem's own fields may differ; a stop request or new keys are the user's and
    are never discarded (the error says how to publish them).
    """
    if host.state_path not in dirty:
        return
    committed_text = repo.show("HEAD", host.state_path)
    if committed_text is None:
        return  # new, not yet committed: galph's init commits it
    committed = parse(committed_text, f"HEAD:{host.state_path}")
    local = host.read_state()
    if local.exit or dict(local.extra) != dict(committed.extra):
        raise StateError(
            f"{host.state_path} has uncommitted changes (a stop request or new keys)",
            f"commit them (git commit {host.state_path}) or use `tandem stop --sync-via-git`",
        )
    host.state_file.path.write_bytes(committed_text)
    host.console.warn(
        f"discarded an uncommitted write of {host.state_path} left by an interrupted run "
        f"(it said {local.status} at iteration {local.iteration})"
    )


# -- step 1: sync ----------------------------------------------------------------------------
def sync(host: Host, remote: Remote) -> str | None:
    """Bring the local branch up to the remote (fast-forward or rebase); the remote sha."""
    repo = _repo(host)
    remote_sha = repo.fetch(remote.name, remote.branch)
    _drop_unpublished_claims(host, repo, remote_sha)
    if remote_sha is None:
        return None
    head = repo.rev_parse("HEAD")
    if head == remote_sha or (head is not None and repo.is_ancestor(remote_sha, head)):
        return remote_sha
    check_remote_state(host, remote, remote_sha)
    if head is None or repo.is_ancestor(head, remote_sha):
        repo.fast_forward(remote_sha)
    else:
        repo.rebase(remote_sha)
        host.log.event("rebase", onto=remote_sha[:12])
    return remote_sha


def _drop_unpublished_claims(host: Host, repo: Repo, remote_sha: str | None) -> None:
    """A claim that never reached the remote never happened: undo it (it held no work)."""
    if remote_sha is None:
        return
    local_only = repo.commits(f"{remote_sha}..HEAD")
    if not local_only or not all(_CLAIM.match(subject) for _, subject in local_only):
        return
    if any(repo.changed_paths(sha) != [host.state_path] for sha, _ in local_only):
        return
    first = local_only[0][0]
    repo.drop_commits(local_only[-1][0], f"{first}^")
    host.console.warn(f"dropped {len(local_only)} unpublished claim commit(s) of an earlier run")
    host.log.event("drop_claim", commits=[sha[:12] for sha, _ in local_only])


def check_remote_state(host: Host, remote: Remote, remote_sha: str) -> State | None:
    """The remote's state is untrusted: refuse an invalid one or one that went backwards."""
    repo = _repo(host)
    text = repo.show(remote_sha, host.state_path)
    if text is None:
        return None
    try:
        theirs = parse(text, f"{remote.shown}:{host.state_path}")
    except StateError as exc:
        raise StateError(
            f"refused the remote's state: {exc.what}",
            f"commit a valid {host.state_path} to {remote.shown}, then restart",
        ) from None
    ours_text = repo.show("HEAD", host.state_path)
    ours = _parse_or_none(ours_text, host.state_path)
    if ours is not None and theirs.iteration < ours.iteration:
        raise StateError(
            f"refused the remote's state: its iteration went back from {ours.iteration} "
            f"to {theirs.iteration} ({remote.shown}:{host.state_path})",
            "find out who rewrote the remote; restore its state file, then restart",
        )
    return theirs


def _parse_or_none(text: bytes | None, source: str) -> State | None:
    if text is None:
        return None
    try:
        return parse(text, source)
    except StateError:
        return None


# -- step 2 and 7: publish -----------------------------------------------------------------
def publish(host: Host, remote: Remote, what: str = "the turn") -> None:
    """Push local commits (none: nothing to do), rebasing onto a moved remote up to 3 times."""
    repo = _repo(host)
    for _ in range(_PUSH_ATTEMPTS):
        if not _ahead(repo, remote):
            return
        try:
            repo.push(remote.name, remote.branch)
        except PushRejected:
            sync(host, remote)
            continue
        host.log.event("push", what=what, head=(repo.rev_parse("HEAD") or "")[:12])
        return
    raise PushRejected(
        f"the push of {what} to {remote.shown} was rejected {_PUSH_ATTEMPTS} times "
        "(the remote keeps moving)",
        "rerun: tandem publishes pending commits first",
    )


def _ahead(repo: Repo, remote: Remote) -> bool:
    head = repo.rev_parse("HEAD")
    remote_sha = repo.rev_parse(remote.ref)
    if head is None:
        return False
    return remote_sha is None or (head != remote_sha and not repo.is_ancestor(head, remote_sha))


def publish_turn(host: Host, remote: Remote) -> None:
    """Step 7's push: on failure the stamp stays local, and the next start publishes it."""
    try:
        publish(host, remote)
    except TandemError as exc:
        raise GitError(
            f"turn stamped locally but not pushed ({exc.what})",
            "rerun to publish (the next start pushes it first)",
        ) from exc


# -- step 4: wait --------------------------------------------------------------------------
class _Waiter:
    """Waits for ``actor``'s turn, polling the remote cheaply with back-off (SPEC §8.2.4)."""

    def __init__(
        self,
        host: Host,
        remote: Remote,
        actor: Actor,
        interrupt: Interrupt,
        wait_on_peer_failure: bool,
    ) -> None:
        self.host = host
        self.remote = remote
        self.actor = actor
        self.interrupt = interrupt
        self.wait_on_peer_failure = wait_on_peer_failure

    def wait(self) -> State | None:
        """The state once it is our turn; None if a stop request ended the wait."""
        host, repo = self.host, _repo(self.host)
        started = time.monotonic()
        interval = _FIRST_POLL
        last_beat = started
        known = repo.rev_parse(self.remote.ref)
        announced = False
        while True:
            if _stopped(host, self.remote, self.actor):
                return None
            state = self._current()
            if state is not None and self._ours(state):
                if announced:
                    host.log.event(
                        "wait_end",
                        actor=self.actor,
                        iteration=state.iteration,
                        waited_secs=round(time.monotonic() - started, 3),
                    )
                return state
            if not announced:
                announced = True
                host.console.say(self._describe(state))
                host.log.event(
                    "wait_start", actor=self.actor, iteration=state.iteration if state else None
                )
            now = time.monotonic()
            self._check_limits(now - started)
            if now - last_beat >= host.config.agent.heartbeat_secs > 0:
                last_beat = now
                host.console.say(f"{self._describe(state)}, {human_duration(now - started)} so far")
            if self.interrupt.sleep(interval):
                self.interrupt.check()
            interval = min(interval * _BACKOFF, host.config.sync.poll_interval)
            moved = self._poll(known)
            if moved is not None:
                known = moved
                interval = _FIRST_POLL  # the peer is active: the handoff is near

    def _current(self) -> State | None:
        """The state in the work tree; galph creates a missing one, ralph waits for it."""
        if self.host.state_file.exists():
            return self.host.read_state()
        if self.actor == "ralph":
            return None
        created = self.host.read_state(create=True)
        commit_turn(self.host, created, Selection(), "[SYNC init] actor=galph status=idle", None)
        publish(self.host, self.remote, what="the new state file")
        return created

    def _ours(self, state: State) -> bool:
        if state.expected_actor != self.actor:
            self._check_peer(state)
            return False
        # our turn; a live lease of another process of our actor raises LeaseHeld
        state.check_lease(self.actor, self.host.owner, self.host.clock())
        return True

    def _check_peer(self, state: State) -> None:
        peer = other(self.actor)
        if state.status != "failed" or self.wait_on_peer_failure or state.failure is None:
            return
        raise TandemError(
            f"{peer} failed at iteration {state.failure.iteration}: {state.failure.reason}",
            f"fix it there and restart {peer} (or pass --wait-on-peer-failure)",
        )

    def _check_limits(self, waited: float) -> None:
        limit = self.host.config.sync.max_wait_sec
        if limit and waited >= limit:
            raise TandemError(
                f"gave up waiting for {self.actor}'s turn after {human_duration(waited)} "
                "(--max-wait-sec)",
                f"check that {other(self.actor)} is running, then restart",
            )

    def _poll(self, known: str | None) -> str | None:
        """One cheap look at the remote; fetch and fast-forward only if it moved."""
        repo = _repo(self.host)
        try:
            sha = repo.ls_remote(self.remote.name, self.remote.branch)
        except RemoteUnreachable as exc:
            self.host.console.warn(f"{exc.what}; still waiting")
            return None
        if sha is None or sha == known:
            return None
        sync(self.host, self.remote)
        return sha

    def _describe(self, state: State | None) -> str:
        if state is None:
            return f"waiting for {self.remote.shown} to get a state file (galph creates it)"
        holder = f", lease {state.lease_owner}" if state.lease_owner else ""
        return (
            f"waiting for {self.actor}'s turn: iteration {state.iteration}, "
            f"{state.expected_actor}'s turn ({state.status}{holder})"
        )


# -- step 5: claim -------------------------------------------------------------------------
def claim(host: Host, remote: Remote, actor: Actor, seen: State) -> State:
    """Write, commit and push ``running-<actor>``; the agent starts only after this push."""
    repo = _repo(host)
    for _ in range(_PUSH_ATTEMPTS):
        base = repo.rev_parse("HEAD")
        running = begin_turn(host, actor)
        title = f"[SYNC i={running.iteration}] actor={actor} status=running"
        sha = commit_turn(host, running, Selection(), title, None)
        try:
            repo.push(remote.name, remote.branch)
        except PushRejected:
            _undo_claim(repo, sha, base)
            theirs = check_remote_state(host, remote, repo.fetch(remote.name, remote.branch) or "")
            if theirs is not None and not theirs.same_turn(seen):
                host.log.event(
                    "claimed_elsewhere",
                    actor=actor,
                    iteration=seen.iteration,
                    owner=theirs.lease_owner,
                    status=theirs.status,
                )
                raise ClaimedElsewhere(
                    f"turn claimed elsewhere: {remote.shown} now says {theirs.status} at "
                    f"iteration {theirs.iteration} (lease {theirs.lease_owner})",
                    "nothing ran here; let that process finish",
                ) from None
            sync(host, remote)
            continue
        except TandemError:
            _undo_claim(repo, sha, base)
            raise
        host.log.event(
            "claim",
            actor=actor,
            iteration=running.iteration,
            commit=(sha or "")[:12],
            lease=running.lease_expires_at,
        )
        return running
    raise PushRejected(
        f"could not claim {actor}'s turn: {remote.shown} moved {_PUSH_ATTEMPTS} times",
        "restart",
    )


def _undo_claim(repo: Repo, sha: str | None, base: str | None) -> None:
    if sha is not None and base is not None:
        repo.drop_commits(sha, base)


# -- status and stop --------------------------------------------------------------------------
def remote_state(host: Host) -> tuple[str, State] | None:
    """(``origin/main``, its state) after a fetch; None without a remote or state there."""
    if host.repo is None or (host.branch is None and host.config.sync.branch is None):
        return None
    remote = Remote.of(host)
    if not host.repo.has_remote(remote.name):
        return None
    try:
        sha = host.repo.fetch(remote.name, remote.branch)
    except GitError as exc:
        host.console.warn(f"{exc.what}; showing the local state only")
        return None
    text = host.repo.show(sha, host.state_path) if sha else None
    if text is None:
        return None
    return remote.shown, parse(text, f"{remote.shown}:{host.state_path}")


def publish_stop(host: Host, reason: str) -> None:
    """``tandem stop --sync-via-git``: commit and push the stop request."""
    remote = Remote.of(host)
    with host.run_lock():
        sync(host, remote)
        with host.locked():
            current = host.read_state()
            requested = host.state_file.write(current.with_stop(reason), host.clock())
        commit_turn(
            host,
            requested,
            Selection(),
            f"[SYNC i={requested.iteration}] stop requested: {reason}",
            None,
        )
        publish(host, remote, what="the stop request")

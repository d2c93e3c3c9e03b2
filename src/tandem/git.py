"""Small git operations over ``proc.run``, with machine-readable output.

Every failure of a git command that leaves this module is a ``GitError`` naming the
command and git's reason (translated by ``git_errors``); commands that talk to the remote
end when they make no progress for ``network_timeout`` seconds (SPEC §8.7). tandem never
resets, cleans, stashes or force-pushes anything of the user's (SPEC §13); the one history
edit it makes is dropping its own unpushed claim commits (``drop_commits``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from tandem import git_errors, proc
from tandem.errors import GitError, NotAGitRepo
from tandem.gitenv import tandem_env
from tandem.gitstatus import TreeStatus, parse_status

_COMMITTED = re.compile(r"\[[^\]]* ([0-9a-f]{7,40})\] ")
# What git leaves in its folder while an operation waits to be continued or aborted.
_OPERATION_MARKERS = (
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
)


class Repo:
    """A git work tree; every method is one or two git commands."""

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str] | None = None,
        *,
        network_timeout: float = 120.0,
    ) -> None:
        self.root = root
        self.env = tandem_env(os.environ if env is None else env)
        self.network_timeout = network_timeout  # SPEC §8.7 sync.git_timeout_secs

    # -- plumbing ---------------------------------------------------------------------
    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> proc.Completed:
        """Run ``git <args>`` in the work tree; a failure is a ``GitError`` saying why."""
        try:
            return self._run(args, input=input, check=check)
        except proc.ProcessError as exc:
            raise git_errors.translate(args, exc) from exc

    def git_output(self, *args: str) -> Iterator[bytes]:
        """``git <args>``'s stdout in pieces as git writes them (a whole history's log); a
        failure, after the last piece, is a ``GitError`` saying why."""
        try:
            yield from proc.output(("git", *args), cwd=self.root, env=self.env)
        except proc.ProcessError as exc:
            raise git_errors.translate(args, exc) from exc

    def _run(
        self, args: Sequence[str], input: bytes | None = None, check: bool = True
    ) -> proc.Completed:
        return proc.run(("git", *args), cwd=self.root, env=self.env, input=input, check=check)

    def _bounded(self, *args: str) -> proc.Completed:
        """A command that talks to a remote: bounded by time without progress (§8.7).

        One mechanism for every transport (ssh, git://, https): git's progress meter on
        stderr is the heartbeat, and silence for ``network_timeout`` kills the process group
        with git's ssh or remote helper in it. The user's own ssh and http settings
        (core.sshCommand, ~/.ssh/config, http.lowSpeed*) are left as they are: tandem adds
        no ServerAliveInterval of its own, which would override a user's GIT_SSH_COMMAND or
        core.sshCommand and is not needed for the bound.
        """
        return proc.run_bounded(
            ("git", *args), cwd=self.root, env=self.env, idle_timeout=self.network_timeout
        )

    def _remote_error(self, remote: str, exc: proc.ProcessError) -> GitError:
        return git_errors.remote_error(remote, self._remote_url(remote), exc.argv[1:], exc)

    def _remote_url(self, remote: str) -> str | None:
        """The URL of ``remote`` (or ``remote`` itself, when it is a URL or a path)."""
        done = self.git("remote", "get-url", remote, check=False)
        return (done.text.strip() or None) if done.returncode == 0 else remote

    def _text(self, *args: str) -> str:
        return self.git(*args).text.strip()

    @classmethod
    def discover(
        cls, start: Path, env: Mapping[str, str] | None = None, *, network_timeout: float = 120.0
    ) -> Repo:
        """The work tree containing ``start``; ``NotAGitRepo`` if there is none."""
        try:
            top = proc.run(
                ("git", "rev-parse", "--show-toplevel"),
                cwd=start,
                env=tandem_env(os.environ if env is None else env),
            ).text.strip()
        except proc.ProcessError as exc:
            if exc.returncode in (126, 127):
                raise git_errors.translate(("rev-parse",), exc) from exc
            raise NotAGitRepo(
                f"{start} is not inside a git work tree",
                "run tandem inside the host repository (or pass --no-git)",
            ) from exc
        return cls(Path(top), env, network_timeout=network_timeout)

    # -- reading ----------------------------------------------------------------------
    def status(self) -> TreeStatus:
        """HEAD, branch and every dirty path (untracked files listed one by one)."""
        out = self.git(
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=dirty",
        ).stdout
        return parse_status(out)

    def git_dir(self) -> Path:
        """The .git folder of this work tree (absolute)."""
        return Path(self._text("rev-parse", "--absolute-git-dir"))

    def operation_in_progress(self, git_dir: Path | None = None) -> str | None:
        """'rebase', 'merge', 'cherry-pick' or 'revert' if one is under way, else None.

        ``git_dir`` saves the ``rev-parse`` when the caller knows the folder already.
        """
        gdir = os.fspath(git_dir or self.git_dir())
        for marker, name in _OPERATION_MARKERS:  # after every turn: plain strings, no Paths
            if os.path.exists(os.path.join(gdir, marker)):
                return name
        return None

    def rev_parse(self, ref: str) -> str | None:
        """The full sha of ``ref``, or None if it does not exist."""
        done = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return done.text.strip() or None if done.returncode == 0 else None

    def show(self, ref: str, path: str) -> bytes | None:
        """The content of ``path`` at ``ref``, or None if it is not there."""
        done = self.git("show", f"{ref}:{path}", check=False)
        return done.stdout if done.returncode == 0 else None

    def count(self, revs: str) -> int:
        """``git rev-list --count``."""
        return int(self._text("rev-list", "--count", revs))

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True if ``older`` is reachable from ``newer``."""
        return self.git("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def commits(self, revs: str) -> list[tuple[str, str]]:
        """(sha, subject) of each commit in ``revs``, oldest first."""
        out = self.git("log", "--reverse", "--format=%H%x00%s", revs).text
        return [tuple(line.split("\0", 1)) for line in out.splitlines() if line]  # type: ignore[misc]

    def changed_paths(self, commit: str) -> list[str]:
        """Paths that ``commit`` changed against its first parent."""
        out = self.git("diff-tree", "--no-commit-id", "--name-only", "-r", "-z", commit).stdout
        return [p.decode("utf-8", errors="surrogateescape") for p in out.split(b"\0") if p]

    def log_trailers(self, key: str, max_count: int = 2000) -> dict[str, str]:
        """{trailer value: short sha} for recent commits that carry trailer ``key``."""
        out = self.git(
            "log",
            f"--max-count={max_count}",
            f"--format=%h%x00%(trailers:key={key},valueonly,separator=%x00)%x01",
        ).text
        found: dict[str, str] = {}
        for record in out.split("\x01"):
            sha, _, values = record.strip("\n").partition("\0")
            for value in values.split("\0"):
                if value.strip():
                    found.setdefault(value.strip(), sha)
        return found

    def files_at(self, commit: str, roots: Sequence[str]) -> dict[str, list[str]]:
        """{root: the files under it at ``commit``} (``tandem logs --ls-paths``)."""
        out = self.git("ls-tree", "-r", "-z", "--name-only", commit, "--", *roots).stdout
        names = [n.decode("utf-8", errors="surrogateescape") for n in out.split(b"\0") if n]
        return {r: [n for n in names if n == r or n.startswith(f"{r}/")] for r in roots}

    def has_remote(self, remote: str) -> bool:
        """True if ``remote`` is configured."""
        return remote in self._text("remote").split()

    def identity_missing(self) -> bool:
        """True when git has no user.name/user.email to commit with."""
        return self.git("var", "GIT_COMMITTER_IDENT", check=False).returncode != 0

    def use_fallback_identity(self) -> None:
        """Commit as ``tandem <tandem@host>`` when the user has no identity configured."""
        host = socket.gethostname() or "localhost"
        for who in ("AUTHOR", "COMMITTER"):
            self.env.setdefault(f"GIT_{who}_NAME", "tandem")
            self.env.setdefault(f"GIT_{who}_EMAIL", f"tandem@{host}")

    # -- writing ----------------------------------------------------------------------
    def commit_paths(self, paths: Sequence[str], untracked: Iterable[str], message: str) -> str:
        """Commit exactly ``paths`` (work-tree content), whatever else is staged; the new sha.

        ``untracked`` paths are added first; ignored files are never added (no ``-f``).
        Pathspecs go through stdin, literally, so no name is read as a pattern or an option.
        """
        new = sorted(set(untracked))
        if new:
            self.git(
                "--literal-pathspecs",
                "add",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
                input=_nul_join(new),
            )
        done = self.git(
            # git would start `maintenance run --auto` after every commit (a process per
            # turn); tandem runs it itself now and then instead (``maintain``).
            "-c",
            "maintenance.auto=false",
            "--literal-pathspecs",
            "commit",
            "--no-verify",
            "--only",
            "--allow-empty",
            "-m",
            message,
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            input=_nul_join(sorted(set(paths))),
        )
        # "[main 1a2b3c4] subject" (or "[main (root-commit) 1a2b3c4]"): the sha, no extra call
        match = _COMMITTED.match(done.text)
        return match.group(1) if match else self._text("rev-parse", "--short=12", "HEAD")

    def maintain(self) -> None:
        """``git maintenance run --auto``: what git does after commits, batched."""
        self.git("maintenance", "run", "--auto", "--quiet", check=False)

    # -- remote -----------------------------------------------------------------------
    def ls_remote(self, remote: str, branch: str) -> str | None:
        """The sha of ``branch`` on ``remote`` (one cheap round trip), None if absent."""
        try:
            out = self._bounded("ls-remote", "--heads", remote, f"refs/heads/{branch}").text
        except proc.ProcessError as exc:
            raise self._remote_error(remote, exc) from exc
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def ls_remote_refs(self, remote: str, refs: Sequence[str]) -> dict[str, str]:
        """The shas of ``refs`` on ``remote`` in one round trip (absent ones are left out)."""
        try:
            out = self._bounded("ls-remote", remote, *refs).text
        except proc.ProcessError as exc:
            raise self._remote_error(remote, exc) from exc
        found = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref in refs:
                found[ref] = sha
        return found

    def fetch_ref(self, remote: str, ref: str, into: str) -> str | None:
        """Fetch one of tandem's own refs into the local ``into``; its sha, None if absent."""
        try:
            self._bounded("fetch", "--no-tags", "--no-write-fetch-head", remote, f"+{ref}:{into}")
        except proc.ProcessError as exc:
            if "couldn't find remote ref" in exc.output:
                return None
            raise self._remote_error(remote, exc) from exc
        return self.rev_parse(into)

    def record(self, name: str, content: bytes, message: str) -> str:
        """A root commit holding one file, in the object store only: no index, no work
        tree and no ref is touched, so it is safe while an agent works in the tree."""
        blob = self.git("hash-object", "-w", "--stdin", input=content).text.strip()
        tree = self.git("mktree", input=f"100644 blob {blob}\t{name}\n".encode()).text.strip()
        return self.git("commit-tree", tree, "-m", message).text.strip()

    def push_own_ref(self, remote: str, sha: str, ref: str) -> None:
        """Point tandem's own ``ref`` on ``remote`` at ``sha`` (forced: only its owner
        writes it, and each value replaces the last). Never used for a branch."""
        if ref.startswith("refs/heads/"):
            raise ValueError(f"{ref} is a branch; tandem never force-pushes one")
        try:
            self._bounded("push", "--porcelain", remote, f"+{sha}:{ref}")
        except proc.ProcessError as exc:
            raise git_errors.push_error(remote, ref, self._remote_url(remote), exc) from exc

    def fetch(self, remote: str, branch: str) -> str | None:
        """Fetch ``branch`` into ``refs/remotes/<remote>/<branch>``; its sha or None."""
        refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
        try:
            # index-pack (unpackLimit=1) reports bytes received every second; the default
            # unpack-objects for small fetches says nothing until an object is complete, so a
            # large file on a slow link would look like a stall.
            self._bounded(
                "-c", "fetch.unpackLimit=1", "fetch", "--progress", "--no-tags", remote, refspec
            )
        except proc.ProcessError as exc:
            if "couldn't find remote ref" in exc.output:
                return None
            raise self._remote_error(remote, exc) from exc
        return self.rev_parse(f"refs/remotes/{remote}/{branch}")

    def push(self, remote: str, branch: str) -> None:
        """Push HEAD to ``branch`` with an explicit refspec and never with force.

        ``PushRejected`` when the remote moved; ``RemoteRefused`` (quoting the remote's
        hook) when it said no; ``RemoteUnreachable`` when it could not be reached.
        """
        refspec = f"HEAD:refs/heads/{branch}"
        try:
            self._bounded("push", "--progress", "--porcelain", remote, refspec)
        except proc.ProcessError as exc:
            url = self._remote_url(remote)
            raise git_errors.push_error(remote, branch, url, exc) from exc

    def fast_forward(self, target: str) -> None:
        """Move the branch and work tree to ``target`` (a descendant of HEAD)."""
        try:
            self._run(("merge", "--ff-only", "--quiet", target))
        except proc.ProcessError as exc:
            raise git_errors.locked(exc) or GitError(
                f"cannot fast-forward to {target[:12]}: {_first_line(exc)}",
                "commit or move the local changes that block it, then restart",
            ) from exc

    def drop_commits(self, head: str, base: str) -> None:
        """Undo tandem's own unpushed commits ``base..head`` (``head`` is HEAD), keeping
        every local change in the work tree."""
        if self.rev_parse(head) != self.rev_parse("HEAD"):
            raise GitError(
                f"expected HEAD at {head[:12]} to undo an unpublished claim",
                "inspect `git log` and restart",
            )
        self.git("reset", "--quiet", "--keep", base)


def _nul_join(paths: Sequence[str]) -> bytes:
    return b"".join(p.encode("utf-8", errors="surrogateescape") + b"\0" for p in paths)


def _first_line(exc: proc.ProcessError) -> str:
    return git_errors.reason(exc.output)

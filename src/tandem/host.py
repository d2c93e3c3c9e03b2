"""The host project as one object: config, state file, logs, git, and who we are.

Built once per command from the config and the flags; every mode and ``stamp`` work on
a ``Host``. The clock and the owner string are fields so tests can set them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tandem import state as state_mod
from tandem.config import Config
from tandem.errors import NotAGitRepo, TandemError
from tandem.git import Repo
from tandem.lease import Owner, this_owner
from tandem.logs import Console, Logbook
from tandem.state import State, StateFile, utcnow

NO_GIT_BRANCH = "local"
_MAINTAIN_EVERY = 50


@dataclass
class Host:
    """Everything a turn needs to know about where it runs."""

    config: Config
    state_file: StateFile
    log: Logbook
    repo: Repo | None  # None: turns are not committed (--no-git, or not a git work tree)
    branch: str | None = None
    owner: Owner = field(default_factory=this_owner)
    clock: Callable[[], datetime] = utcnow
    commit_dry_run: bool = False
    strict_tree: bool = False
    push: bool = False  # combined/async mode: push after each turn (--push)
    agent_versions: dict[str, str | None] = field(default_factory=dict)  # for receipts
    _state_tracked: bool = field(default=False, repr=False)
    _commits: int = field(default=0, repr=False)  # since the last maintenance

    @property
    def console(self) -> Console:
        """The console of the log book."""
        return self.log.console

    @property
    def state_path(self) -> str:
        """The state file relative to the root (for git pathspecs and messages)."""
        return self.config.relative(self.state_file.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-modify-write of the state with ``tandem stop`` and friends."""
        with state_mod.locked(self.config.logs_dir / ".state.lock"):
            yield

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """One tandem run per work tree: a second one is refused, naming the first."""
        import fcntl

        folder = self.repo.git_dir() if self.repo is not None else self.config.logs_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "tandem.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise TandemError(
                    f"another tandem run ({holder}) is using this work tree",
                    "wait for it to end, or stop it (tandem stop) first",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(self.owner).encode(), 0)
            yield
        finally:
            os.close(fd)

    def state_needs_add(self) -> bool:
        """True while git does not know the state file yet (one ``ls-files``, then cached)."""
        if self._state_tracked or self.repo is None:
            return False
        listed = self.repo.git("ls-files", "--", self.state_path).text.strip()
        self._state_tracked = bool(listed)
        return not self._state_tracked

    def committed(self) -> None:
        """Count a commit; every 50, let git do its housekeeping."""
        self._commits += 1
        if self._commits >= _MAINTAIN_EVERY:
            self.maintain()

    def maintain(self) -> None:
        """Run git's automatic maintenance if this run committed anything."""
        if self.repo is not None and self._commits:
            self.repo.maintain()
            self._commits = 0

    def read_state(self, *, create: bool = False) -> State:
        """The state on disk; with ``create``, a missing file becomes iteration 1 (logged)."""
        if create and not self.state_file.exists():
            fresh = self.state_file.write(state_mod.initial(self.clock()))
            self.console.say(f"created {self.state_path} (iteration 1, galph's turn)")
            self.log.event("state_init", iteration=1, state=self.state_path)
            return fresh
        return self.state_file.read()


def open_host(
    config: Config,
    *,
    console: Console,
    env: Mapping[str, str] | None = None,
    use_git: bool = True,
    require_git: bool = False,
    commit_dry_run: bool = False,
    strict_tree: bool = False,
) -> Host:
    """Build the ``Host`` for ``config``: find the repo and branch, open the log book."""
    env = os.environ if env is None else env
    repo: Repo | None = None
    branch: str | None = None
    if use_git:
        try:
            repo = Repo.discover(config.root, env)
        except NotAGitRepo:
            if require_git:
                raise
        if repo is not None:
            branch = repo.status().branch
            if repo.identity_missing():
                repo.use_fallback_identity()
    log_branch = branch or ("detached" if repo is not None else NO_GIT_BRANCH)
    logbook = Logbook(config.logs_dir, log_branch, console.redactor, console, root=config.root)
    display = config.relative(config.state_file)
    return Host(
        config=config,
        state_file=StateFile(config.state_file, display),
        log=logbook,
        repo=repo,
        branch=branch,
        commit_dry_run=commit_dry_run,
        strict_tree=strict_tree,
    )

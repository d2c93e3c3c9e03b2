"""The host project as one object: config, state file, logs, git, and who we are.

Built once per command from the config and the flags; every mode and ``stamp`` work on
a ``Host``. It is frozen: the run flags are one ``Policy`` value fixed at start, and the
clock (the only source of "now" for states, leases and turn times) and the owner string
are fields so tests can set them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from tandem import files
from tandem import state as state_mod
from tandem.config import Config
from tandem.errors import NotAGitRepo, TandemError
from tandem.git import Repo
from tandem.lease import Owner, this_owner
from tandem.logs import Console, Logbook
from tandem.notify import Notifier
from tandem.state import State
from tandem.statefile import StateFile
from tandem.times import utcnow

NO_GIT_BRANCH = "local"
_MAINTAIN_EVERY = 50

TreePolicy = Literal["warn", "fail"]


@dataclass(frozen=True)
class Policy:
    """The run flags that change how turns are recorded and published."""

    push: bool = False  # combined/async mode: push after each turn (--push)
    strict_tree: bool = False  # dirty paths left by a turn fail it (--strict-tree)
    commit_dry_run: bool = False  # print the commits instead of making them

    def tree(self, *, sync: bool) -> TreePolicy:
        """What paths a turn leaves dirty do: fail the turn (sync mode, --strict-tree) or
        warn (combined and async mode), decided once per run (SPEC §9)."""
        return "fail" if sync or self.strict_tree else "warn"


@dataclass
class _Upkeep:
    """What a run learns as it goes: whether git tracks the state, commits since upkeep."""

    state_tracked: bool = False
    commits: int = 0


@dataclass(frozen=True)
class Host:
    """Everything a turn needs to know about where it runs."""

    config: Config
    state_file: StateFile
    log: Logbook
    repo: Repo | None  # None: turns are not committed (--no-git, or not a git work tree)
    branch: str | None = None
    owner: Owner = field(default_factory=this_owner)
    clock: Callable[[], datetime] = utcnow
    policy: Policy = Policy()
    agent_versions: dict[str, str | None] = field(default_factory=dict)  # for receipts
    notifier: Notifier | None = None  # notify: (SPEC §16); None when nothing listens
    _upkeep: _Upkeep = field(default_factory=_Upkeep, repr=False)

    @property
    def console(self) -> Console:
        """The console of the log book."""
        return self.log.console

    @cached_property
    def state_path(self) -> str:
        """The state file relative to the root (for git pathspecs and messages; both are
        fixed for the run, and every turn asks a few times)."""
        return self.config.relative(self.state_file.path)

    @cached_property
    def logs_path(self) -> str:
        """The logs folder relative to the root: no turn commits anything under it."""
        return self.config.relative(self.config.logs_dir)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-modify-write of the state with ``tandem stop`` and friends."""
        with files.locked(self.config.logs_dir / ".state.lock"):
            yield

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """One tandem run per work tree: a second one is refused, naming the first."""
        path = (self.git_dir or self.config.logs_dir) / "tandem.lock"
        try:
            with files.locked(path, holder=str(self.owner)):
                yield
        except files.LockBusy as busy:
            raise TandemError(
                f"another tandem run ({busy.holder or 'another process'}) is using this work tree",
                "wait for it to end, or stop it (tandem stop) first",
            ) from None

    @cached_property
    def git_dir(self) -> Path | None:
        """The repository's .git folder, asked of git once per run."""
        return None if self.repo is None else self.repo.git_dir()

    def state_needs_add(self) -> bool:
        """True while git does not know the state file yet (one ``ls-files``, then cached)."""
        if self._upkeep.state_tracked or self.repo is None:
            return False
        listed = self.repo.git("ls-files", "--", self.state_path).text.strip()
        self._upkeep.state_tracked = bool(listed)
        return not self._upkeep.state_tracked

    def committed(self) -> None:
        """Count a commit; every 50, let git do its housekeeping."""
        self._upkeep.commits += 1
        if self._upkeep.commits >= _MAINTAIN_EVERY:
            self.maintain()

    def maintain(self) -> None:
        """Run git's automatic maintenance if this run committed anything."""
        if self.repo is not None and self._upkeep.commits:
            self.repo.maintain()
            self._upkeep.commits = 0

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
    policy: Policy = Policy(),
) -> Host:
    """Build the ``Host`` for ``config``: find the repo and branch, open the log book."""
    env = os.environ if env is None else env
    repo: Repo | None = None
    branch: str | None = None
    if use_git:
        try:
            repo = Repo.discover(config.root, env, network_timeout=config.sync.git_timeout_secs)
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
        policy=policy,
    )

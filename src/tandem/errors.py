"""The error tree: every problem a user can act on is a ``TandemError``.

The CLI prints a ``TandemError`` as one line and exits with its ``exit_code``; anything
else that escapes is a bug (exit 3, traceback to a crash log). See SPEC §11.
"""

from __future__ import annotations


class TandemError(Exception):
    """A problem the user can fix: printed as ``tandem: error: <what>; <fix>``, exit 1."""

    exit_code = 1
    prefix = "error: "

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(f"{what}; {fix}" if fix else what)


class UsageError(TandemError):
    """Bad command-line usage (unknown flag, bad value, flags that do not go together)."""

    exit_code = 2


class ConfigError(TandemError):
    """orchestration.yaml is unreadable or invalid."""


class StateError(TandemError):
    """The state file is unreadable, invalid, or does not allow what was asked."""


class LeaseHeld(StateError):
    """Another live process holds the current turn."""


class RoutingError(TandemError):
    """A prompt name (deterministic or router-chosen) broke a rule of SPEC §4.3."""


class AgentError(TandemError):
    """An agent cannot be dispatched or started (missing binary, bad setup)."""


class GitError(TandemError):
    """A git command failed: the message names the command and git's reason, and the fix.

    Every failure of a git command that leaves ``git.py`` is one of these (SPEC §13.1
    rule 6); no lower-level process error escapes it.
    """


class NotAGitRepo(GitError):
    """The host is not inside a git work tree."""


class GitLocked(GitError):
    """A git lock file (``index.lock``, a ref's ``.lock``) is in the way."""


class PushRejected(GitError):
    """A push was not a fast-forward: the remote moved. Fetch, rebase, push again."""


class RebaseConflict(GitError):
    """A rebase onto the remote stopped on a conflict; it was aborted."""


class RemoteUnreachable(GitError):
    """The remote could not be reached, or stopped answering: an outage, worth a retry."""


class RemoteRefused(GitError):
    """The remote answered and said no (host key, authentication, permission, a hook).

    Not an outage: retrying cannot help, so waiting loops stop on it (SPEC §8.7).
    """


class ClaimedElsewhere(TandemError):
    """Another process claimed or advanced the turn on the remote first."""


class TurnTakenOver(TandemError):
    """This run's turn went to another owner while it was away; its work was rescued."""


class TurnFailed(TandemError):
    """A turn failed; the run stops (SPEC §7.4). Printed without the ``error:`` prefix."""

    prefix = ""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the run stops with exit 130."""

    exit_code = 130

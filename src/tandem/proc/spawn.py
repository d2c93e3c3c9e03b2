"""Starting an agent so that it cannot outlive tandem, even a SIGKILLed one (SPEC §6.4).

The agent gets PR_SET_PDEATHSIG (SIGTERM when tandem dies). Setting it from Python needs a
``preexec_fn``, which makes ``subprocess`` fork the whole interpreter instead of using
vfork: about 2 ms more per turn. util-linux ``setpriv --pdeathsig`` sets the same flag and
then execs the agent (same pid, the flag survives the exec), so where it is installed the
agent is started through it and ``subprocess`` keeps its fast path; elsewhere the
``preexec_fn`` is used. Either way the flag is set before the agent's own code runs.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: int
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with piped output and the parent-death signal.

    Raises ``FileNotFoundError``/``PermissionError`` when the program cannot start.
    """
    become_subreaper()
    linux = sys.platform == "linux"
    wrapper = _setpriv() if linux else None
    command = list(argv)
    if wrapper is not None:
        command = [wrapper, "--pdeathsig", "TERM", "--", _executable(argv[0], cwd, env)]
        command += argv[1:]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent if linux and wrapper is None else None,  # noqa: PLW1509
    )


@functools.cache
def become_subreaper() -> None:
    """Orphaned descendants of the agent are re-parented to us, so none escapes the cleanup.

    A property of the process: set once (cached), not before every turn.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@functools.cache
def _setpriv() -> str | None:
    """util-linux ``setpriv`` if it is installed, knows ``--pdeathsig`` (2.33 and later) and
    may use it here: tried once per process, on its own ``--help``."""
    found = shutil.which("setpriv")
    if found is None:
        return None
    try:
        done = subprocess.run(
            [found, "--pdeathsig", "TERM", "--", found, "--help"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return None
    return found if done.returncode == 0 and b"--pdeathsig" in done.stdout else None


def _executable(name: str, cwd: Path, env: Mapping[str, str]) -> str:
    """The program ``name`` as ``subprocess`` would find it (``env``'s PATH, or relative to
    ``cwd`` when it has a slash); the errors it would raise when it cannot be started, so a
    missing agent is reported the same with or without the wrapper."""
    if os.sep in name:
        candidates = [os.path.join(cwd, name)]  # an absolute name stays as it is
    else:  # a relative PATH entry is taken from ``cwd``, as the child resolves it there
        candidates = [os.path.join(cwd, d, name) for d in os.get_exec_path(dict(env))]
    denied = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = denied or candidate
    if denied is not None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)


def _die_with_parent() -> None:
    """In the child: get SIGTERM if tandem dies (even by SIGKILL), so no agent runs on alone."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

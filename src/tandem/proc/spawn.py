"""Starting an agent so that it cannot outlive tandem, even a SIGKILLed one (SPEC §6.4).

While tandem lives, it ends the agent's whole tree itself (``streaming``; tandem is the
subreaper of that tree). For tandem's death, each agent is registered with the *warden*, one
small process per tandem process, over a pipe. However tandem dies, the kernel closes the
pipe; the warden reads its end and sends every agent still listed SIGTERM (to the agent's
process group: an agent leads its own session), then SIGKILL to what is left after the
agent's grace.

Why not PR_SET_PDEATHSIG: it must be set in the child, which takes either a ``preexec_fn``
(``subprocess`` then forks the whole interpreter instead of using vfork, about 2 ms a turn)
or an exec wrapper such as util-linux ``setpriv`` (an extra exec, about 1 ms a turn), and
it reaches the agent only, not its group. The warden costs one interpreter start per tandem
process and a line per agent. Its one gap: a SIGKILL in the microseconds between the agent's
exec and the line that registers it leaves that agent running (``setpriv`` had the same gap,
before its prctl, for a millisecond).

The warden is double-forked while tandem is not a subreaper, so it is never tandem's child:
``streaming``'s one-syscall check that tandem has no children stays true between turns.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

# Run by ``python -I -S``: the standard library only. It prints its pid, then reads lines:
# "+ <pid> <grace>" watches an agent, "- <pid>" stops. At the end of its input (tandem is
# gone): TERM to each group still watched, then KILL to what is left at its deadline.
_WARDEN = """
import os, signal, sys, time
if os.fork():
    os._exit(0)
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
print(os.getpid(), flush=True)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
watched = {}
for line in sys.stdin:
    sign, pid, *grace = line.split()
    if sign == "+":
        watched[int(pid)] = float(grace[0])
    else:
        watched.pop(int(pid), None)
def send(pid, sig):
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, sig)
        except OSError:
            pass
def alive(pid):
    try:
        os.killpg(pid, 0)
    except OSError:
        return False
    return True
deadlines = {pid: time.monotonic() + grace for pid, grace in watched.items()}
for pid in deadlines:
    send(pid, signal.SIGTERM)
while deadlines:
    for pid, deadline in list(deadlines.items()):
        if not alive(pid):
            del deadlines[pid]
        elif time.monotonic() >= deadline:
            send(pid, signal.SIGKILL)
            del deadlines[pid]
    time.sleep(0.05)
"""


def spawn(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin: int, kill_grace: float
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with piped output, watched by the warden until
    ``release``: if tandem dies, it gets SIGTERM, and SIGKILL ``kill_grace`` seconds later.

    Raises ``FileNotFoundError``/``PermissionError`` when the program cannot start.
    """
    WARDEN.start()
    become_subreaper()
    child = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    WARDEN.send(f"+ {child.pid} {kill_grace:g}\n")
    return child


def release(pid: int) -> None:
    """The agent ``pid`` and its tree are ended and reaped: the warden forgets it, as the
    number may be given to another process."""
    WARDEN.send(f"- {pid}\n")


@functools.cache
def become_subreaper() -> None:
    """Orphaned descendants of the agent are re-parented to us, so none escapes the cleanup.

    A property of the process: set once (cached), not before every turn.
    """
    _set_subreaper(on=True)


def _set_subreaper(*, on: bool) -> None:
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


@contextlib.contextmanager
def _not_a_subreaper() -> Iterator[None]:
    """For a moment, orphans go to init: so does the double-forked warden started now."""
    if sys.platform != "linux":
        yield
        return
    flag = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
    _set_subreaper(on=False)
    try:
        yield
    finally:
        _set_subreaper(on=bool(flag.value))


class Warden:
    """This process's link to its warden, which is started with the first agent."""

    def __init__(self) -> None:
        self.pid: int | None = None  # the warden's own
        self._pipe: int | None = None  # the write end of its input
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the warden unless it is running."""
        with self._lock:
            if self._pipe is None:
                self._launch()

    def send(self, line: str) -> None:
        """Tell the warden ``line``; a warden that died (killed on its own) starts again."""
        with self._lock:
            for _ in range(2):
                if self._pipe is None:
                    self._launch()
                assert self._pipe is not None
                try:
                    os.write(self._pipe, line.encode())  # a line is far below PIPE_BUF
                except BrokenPipeError:
                    os.close(self._pipe)
                    self._pipe = None
                else:
                    return

    def _launch(self) -> None:
        """Start the warden; keep the write end of its input. That end is close-on-exec, so
        no agent holds it open: the pipe ends when tandem does."""
        read_end, write_end = os.pipe()
        try:
            with _not_a_subreaper():
                child = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _WARDEN],
                    stdin=read_end,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    cwd="/",  # it may outlive tandem for a grace: it holds no host folder
                    env={},  # nor its secrets
                    start_new_session=True,  # no Ctrl-C from tandem's terminal reaches it
                    text=True,
                )
                child.wait()  # the first fork exits at once; the warden is its child
            assert child.stdout is not None
            with child.stdout:
                pid = child.stdout.readline().strip()
            if not pid.isdigit():
                raise OSError(f"tandem's warden process did not start ({sys.executable} -I -S)")
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self.pid = int(pid)
        self._pipe = write_end


WARDEN = Warden()

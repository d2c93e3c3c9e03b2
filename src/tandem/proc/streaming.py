"""Long-running children (agents): output handed on as it arrives, a wall-clock limit,
and when the run ends every descendant of the agent ends too (SPEC §6.3, §6.4).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tandem.interrupts import Interrupt
from tandem.proc.commands import PROC_CHILDREN, READ_SIZE, is_zombie
from tandem.proc.spawn import become_subreaper, release, spawn

_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
# After the agent exits, output still buffered in the pipes is read for this long at most:
# a descendant that escaped the cleanup must not keep the turn open by holding a pipe.
_DRAIN_SECS = 1.0


class Ending(enum.Enum):
    """How a streamed child ended."""

    EXITED = "exited"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted"


@dataclass
class Outcome:
    """What happened to a streamed child."""

    ending: Ending
    returncode: int | None
    duration: float
    leftovers: int = 0  # descendants still alive when the agent ended, then killed


@dataclass
class StreamOptions:
    """Limits and hooks for ``stream``."""

    timeout: float | None = None  # wall clock; None or 0 = none
    kill_grace: float = 10.0
    heartbeat_secs: float = 0.0  # 0 = no heartbeat
    on_heartbeat: Callable[[float, float], None] | None = None  # (elapsed, silent_for)
    interrupt: Interrupt | None = None
    clock: Callable[[], float] = field(default=time.monotonic)
    # When the run last did something, if the caller judges that (an agent's own retry
    # notices are output but not activity); by default, the last output of any kind.
    activity: Callable[[], float] | None = None


Sink = Callable[[bytes], None]


def stream(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: Path | None,
    on_stdout: Sink,
    on_stderr: Sink,
    options: StreamOptions,
) -> Outcome:
    """Run ``argv``, handing its output to the sinks as it arrives, and end its whole tree.

    Raises ``FileNotFoundError``/``PermissionError`` when the program cannot start.
    """
    become_subreaper()  # before the scan: children orphaned from now on come to us
    before = set() if _childless() else _children(os.getpid())
    started = options.clock()
    with _open_stdin(stdin) as stdin_file:
        child = spawn(argv, cwd=cwd, env=env, stdin=stdin_file, kill_grace=options.kill_grace)
    watcher = _Watcher(child, before, options, started)
    try:
        watcher.pump(on_stdout, on_stderr)
    finally:
        watcher.end_tree()
        release(child.pid)
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()
    child.stderr.close()
    return Outcome(
        ending=watcher.ending,
        returncode=child.returncode,
        duration=options.clock() - started,
        leftovers=watcher.leftovers,
    )


class _Watcher:
    """The select loop of one streamed child: output, deadline, signals, heartbeat."""

    def __init__(
        self,
        child: subprocess.Popen[bytes],
        before: set[int],
        options: StreamOptions,
        started: float,
    ) -> None:
        self.child = child
        self.before = before
        self.options = options
        self.started = started
        self.ending = Ending.EXITED
        self.leftovers = 0
        self.last_output = started
        self.last_beat = started
        self.kill_at: float | None = None  # set once SIGTERM went out
        self.exited_at: float | None = None
        self.adopted: set[int] = set()  # orphans of the tree found by the last scan
        self._ended = False

    def pump(self, on_stdout: Sink, on_stderr: Sink) -> None:
        """Read output until the agent exits and its pipes close (or the drain time after
        its exit runs out). An agent that closed its pipes and works on is still running:
        it is waited for, timed out or interrupted like any other (SPEC §13.1 rule 2)."""
        child = self.child
        assert child.stdout is not None
        assert child.stderr is not None
        sel = selectors.DefaultSelector()
        sinks: dict[int, Sink] = {}
        for pipe, sink in ((child.stdout, on_stdout), (child.stderr, on_stderr)):
            _widen_pipe(pipe.fileno())
            sel.register(pipe.fileno(), selectors.EVENT_READ)
            sinks[pipe.fileno()] = sink
        interrupt = self.options.interrupt
        if interrupt is not None:
            sel.register(interrupt.fileno(), selectors.EVENT_READ)
        pidfd = _pidfd(child.pid)
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ)
        try:
            while sinks or self.exited_at is None:
                for key, _ in sel.select(self._wait_time()):
                    fd = int(key.fd)
                    if fd in sinks:
                        self._read(fd, sinks, sel)
                    else:  # the exit (pidfd) or a signal: _tick acts on it; once is enough
                        sel.unregister(fd)
                self._tick()
                if self.exited_at is not None and self.options.clock() - self.exited_at > (
                    _DRAIN_SECS
                ):
                    break
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)

    def _read(self, fd: int, sinks: dict[int, Sink], sel: selectors.BaseSelector) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            sel.unregister(fd)
            del sinks[fd]
            return
        self.last_output = self.options.clock()
        sinks[fd](data)

    def _wait_time(self) -> float:
        now = self.options.clock()
        waits = [0.5]
        if self.exited_at is not None:
            waits.append(max(0.0, self.exited_at + _DRAIN_SECS - now))
        if self.kill_at is not None:
            waits.append(max(0.0, self.kill_at - now))
        elif self.options.timeout:
            waits.append(max(0.0, self.started + self.options.timeout - now))
        if self.options.heartbeat_secs > 0:
            waits.append(max(0.0, self.last_beat + self.options.heartbeat_secs - now))
        return min(waits)

    def _tick(self) -> None:
        """Check exit, signals, the deadline, the grace period and the heartbeat."""
        now = self.options.clock()
        if self.exited_at is None and self.child.poll() is not None:
            self.exited_at = now
            self.end_tree()
            return
        interrupt = self.options.interrupt
        if interrupt is not None and interrupt.fired and self.kill_at is None:
            self.ending = Ending.INTERRUPTED
            self._terminate(now)
        timeout = self.options.timeout
        if timeout and self.kill_at is None and now - self.started >= timeout:
            self.ending = Ending.TIMED_OUT
            self._terminate(now)
        if self.kill_at is not None and now >= self.kill_at and self.child.poll() is None:
            _signal_all(self._tree(), signal.SIGKILL)
        self._beat(now)

    def _beat(self, now: float) -> None:
        beat = self.options.heartbeat_secs
        if beat <= 0 or self.options.on_heartbeat is None or self.exited_at is not None:
            return
        activity = self.options.activity
        last = max(activity(), self.started) if activity is not None else self.last_output
        if now - last >= beat and now - self.last_beat >= beat:
            self.last_beat = now
            self.options.on_heartbeat(now - self.started, now - last)

    def _terminate(self, now: float) -> None:
        """SIGTERM to the agent's group and every descendant; SIGKILL after the grace."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child.pid, signal.SIGTERM)
        _signal_all(self._tree(), signal.SIGTERM)
        self.kill_at = now + max(0.0, self.options.kill_grace)

    def _tree(self) -> set[int]:
        """The live agent and descendants, plus orphans that were re-parented to us.

        Once the agent has exited its children are all orphans (we are their subreaper),
        so its own pid is not walked again: one /proc read when nothing is left, and no
        walk of a stranger that was given the reaped agent's pid.
        """
        pids = {self.child.pid} | _descendants(self.child.pid) if self._running() else set()
        for orphan in self._orphans():
            pids |= {orphan} | _descendants(orphan)
        return {pid for pid in pids if not is_zombie(pid)}

    def _running(self) -> bool:
        return self.exited_at is None and self.child.poll() is None

    def _orphans(self) -> set[int]:
        if _childless():  # the agent is reaped and nothing was adopted: no scan
            self.adopted = set()
        else:
            self.adopted = _children(os.getpid()) - self.before - {self.child.pid}
        return self.adopted

    def end_tree(self) -> None:
        """Make sure no process of this run is left: TERM, grace, then KILL, then reap."""
        if self._ended:
            return
        if self._running() and self.kill_at is None:
            self._terminate(self.options.clock())
        tree = self._tree()
        if self.kill_at is not None:
            deadline = self.kill_at
        else:  # the agent ended by itself: anything still running was left behind
            self.leftovers = len(tree)
            _signal_all(tree, signal.SIGTERM)
            deadline = self.options.clock() + min(self.options.kill_grace, 2.0)
        while tree and self.options.clock() < deadline:
            self._reap_orphans()
            time.sleep(0.02)
            tree = self._tree()
        for _ in range(100):  # a tree that forks while it is being killed needs a few rounds
            if not tree:
                break
            _signal_all(tree, signal.SIGKILL)
            time.sleep(0.01)
            self._reap_orphans()
            tree = self._tree()
        self.child.wait()
        if tree:  # it outlasted every round: look again before reaping what did end
            self._orphans()
        self._reap_orphans()
        self._ended = True

    def _reap_orphans(self) -> None:
        """Collect the exit status of adopted orphans (zombies otherwise), from the last scan:
        none adopted, no scan."""
        for pid in self.adopted:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _signal_all(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _childless() -> bool:
    """True when this process has no child at all, running or a zombie: one ``waitid``
    that reaps nothing, where the /proc scan costs a hundred times more."""
    if not hasattr(os, "waitid"):  # not on every Unix: then always scan
        return False
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (zombies included), from /proc where it has them."""
    if not PROC_CHILDREN:
        return _children_psutil(pid)
    found: set[int] = set()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found  # the process is gone
    for tid in tids:
        with contextlib.suppress(OSError):
            found.update(
                int(p) for p in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
            )
    return found


def _children_psutil(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children()}
    except psutil.Error:
        return set()


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in _children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return found


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _widen_pipe(fd: int) -> None:
    """Bigger pipe buffers mean fewer reads and a faster relay of verbose agents."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)


@contextlib.contextmanager
def _open_stdin(path: Path | None) -> Iterator[int]:
    """The prompt file for agents that read it on stdin, else /dev/null (never a pipe)."""
    fd = os.open(path if path is not None else os.devnull, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)

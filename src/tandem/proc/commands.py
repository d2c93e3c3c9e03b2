"""Short commands whose output is read at the end (git, ``--version``).

``run`` waits for the command; ``run_bounded`` also ends it when it makes no progress
(a remote git command on a dead connection, SPEC §8.7); ``output`` hands a long output
over as it comes (``git log`` of a whole history).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 1 << 20
# How often a bounded command that went quiet is checked for having exited.
_EXIT_POLL = 0.2
_TERM_GRACE = 1.0  # a stalled command's group gets this long after SIGTERM
# /proc lists a task's children where the kernel has CONFIG_PROC_CHILDREN (else psutil)
PROC_CHILDREN = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


class ProcessError(Exception):
    """A command exited non-zero (or could not start); the message shows what it said."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        output = (stderr or stdout).decode(errors="replace").strip()
        super().__init__(f"`{' '.join(argv)}` exited with {returncode}: {output}")

    @property
    def output(self) -> str:
        """stderr and stdout as text, for matching known failure messages."""
        return (self.stderr + self.stdout).decode(errors="replace")


@dataclass(frozen=True)
class Completed:
    """A finished short command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """stdout decoded."""
        return self.stdout.decode(errors="replace")


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> Completed:
    """Run a short command to completion and capture its output."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise _not_started(argv, exc) from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(argv, -1, b"", f"timed out after {timeout}s".encode()) from exc
    result = Completed(tuple(argv), done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise ProcessError(argv, done.returncode, done.stdout, done.stderr)
    return result


def output(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], chunk: int = 1 << 16
) -> Generator[bytes, None, None]:
    """The command's stdout in pieces as it writes them, so the caller works while it runs.

    A command that fails raises ``ProcessError`` with its stderr after its last piece; a
    caller that stops reading early gets the command killed, never left behind.
    """
    with tempfile.TemporaryFile() as errors:
        child = _start(argv, cwd, env, stderr=errors.fileno())
        assert child.stdout is not None
        finished = False
        try:
            while piece := os.read(child.stdout.fileno(), chunk):
                yield piece
            finished = True
        finally:
            child.stdout.close()
            if not finished:
                child.kill()
            child.wait()
        if child.returncode != 0:
            errors.seek(0)
            raise ProcessError(argv, child.returncode, b"", errors.read())


class Stalled(ProcessError):
    """A bounded command made no progress for too long; its process group was ended."""

    def __init__(self, argv: Sequence[str], stdout: bytes, stderr: bytes, silent: float) -> None:
        self.silent = silent
        super().__init__(argv, -signal.SIGTERM, stdout, stderr)


def run_bounded(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    idle_timeout: float,
    check: bool = True,
) -> Completed:
    """Like ``run``, for a command that waits on the network: silence ends it.

    Any output on stdout or stderr counts as progress (git prints its progress meter on
    stderr with ``--progress``). After ``idle_timeout`` seconds without a byte, the whole
    process group is ended (``_end_group``), which takes git's ssh and remote helpers
    with it, and ``Stalled`` is raised. A dead connection never holds the caller for TCP's hours.
    """
    child = _start(argv, cwd, env, stderr=subprocess.PIPE)
    try:
        stdout, stderr, stalled = _collect(child, idle_timeout)
    finally:
        if child.poll() is None:  # stalled, or interrupted while reading
            _end_group(child)
        child.wait()
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    if stalled:
        raise Stalled(argv, stdout, stderr, idle_timeout)
    if check and child.returncode != 0:
        raise ProcessError(argv, child.returncode, stdout, stderr)
    return Completed(tuple(argv), child.returncode, stdout, stderr)


def _end_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's group, SIGKILL after a short grace.

    git removes its lock and temp files when it gets SIGTERM, so a stalled fetch or push
    that is ended leaves no ``.lock`` behind to block the next one; SIGKILL ends whatever
    did not listen (an ssh stuck in the kernel).
    """
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)


def _collect(child: subprocess.Popen[bytes], idle_timeout: float) -> tuple[bytes, bytes, bool]:
    """Read both pipes until they close; True as the third value if the child went silent.

    A child that exited while a descendant still holds a pipe (an ssh master that
    daemonized) is done as soon as the pipes are quiet: its own output was all read.
    """
    assert child.stdout is not None
    assert child.stderr is not None
    chunks = {child.stdout.fileno(): bytearray(), child.stderr.fileno(): bytearray()}
    out, err = chunks.values()
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        last = time.monotonic()
        while sel.get_map():
            left = last + idle_timeout - time.monotonic()
            ready = sel.select(min(_EXIT_POLL, max(0.0, left)))
            for key, _ in ready:
                data = os.read(key.fd, READ_SIZE)
                if data:
                    chunks[key.fd] += data
                    last = time.monotonic()
                else:
                    sel.unregister(key.fd)
            if not ready and child.poll() is not None:
                break
            if not ready and time.monotonic() - last >= idle_timeout:
                return bytes(out), bytes(err), True
    return bytes(out), bytes(err), False


def _start(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, stderr: int
) -> subprocess.Popen[bytes]:
    """A command read while it runs: no stdin, stdout piped, its own session; a program
    that cannot start is a ``ProcessError`` (``_not_started``)."""
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise _not_started(argv, exc) from exc


def _not_started(argv: Sequence[str], exc: OSError) -> ProcessError:
    """The shell's codes: 127 for a missing program, 126 for one that cannot run."""
    if isinstance(exc, FileNotFoundError):
        return ProcessError(argv, 127, b"", f"{argv[0]}: not found".encode())
    return ProcessError(argv, 126, b"", f"{argv[0]}: not executable".encode())


def which(name: str, env: Mapping[str, str]) -> str | None:
    """Look ``name`` up on the PATH of ``env`` (a path with a slash is taken as it is)."""
    import shutil

    if os.sep in name:
        return name if os.access(name, os.X_OK) and Path(name).is_file() else None
    return shutil.which(name, path=env.get("PATH", os.defpath))


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # a pid beyond any real one is not alive
        return False
    except PermissionError:
        return True
    except OSError as exc:  # pragma: no cover - other errnos mean it exists
        return exc.errno != errno.ESRCH
    return not is_zombie(pid)


def is_zombie(pid: int) -> bool:
    """True for a zombie or a pid that no longer exists."""
    if not PROC_CHILDREN:
        import psutil

        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state in (b"Z", b"X")

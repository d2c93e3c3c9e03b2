"""Agents as child processes: streaming, time limits, and no process left behind (SPEC §6.4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tandem import proc
from tandem.interrupts import Interrupt


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.data += chunk


def stream(argv: list[str], tmp_path: Path, **options: object) -> tuple[proc.Outcome, bytes, bytes]:
    out, err = Collect(), Collect()
    outcome = proc.stream(
        argv,
        cwd=tmp_path,
        env=dict(os.environ),
        stdin=None,
        on_stdout=out,
        on_stderr=err,
        options=proc.StreamOptions(**options),  # type: ignore[arg-type]
    )
    return outcome, bytes(out.data), bytes(err.data)


def alive(pid: int) -> bool:
    return proc.pid_alive(pid)


def test_output_of_both_streams_arrives_whole(tmp_path: Path) -> None:
    code = "import sys\nfor i in range(20000): print(i)\nsys.stderr.write('done\\n')\nsys.exit(3)"
    outcome, out, err = stream(py(code), tmp_path)
    assert outcome.ending is proc.Ending.EXITED
    assert outcome.returncode == 3
    assert out.decode().split() == [str(i) for i in range(20000)]
    assert err == b"done\n"


def test_stdin_is_devnull_not_an_open_pipe(tmp_path: Path) -> None:
    outcome, out, _ = stream(py("import sys; print(repr(sys.stdin.read()))"), tmp_path, timeout=10)
    assert out.strip() == b"''"
    assert outcome.duration < 5


def test_timeout_terminates_then_kills(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)"
    )
    started = time.monotonic()
    outcome, out, _ = stream(py(code), tmp_path, timeout=0.5, kill_grace=0.5)
    assert outcome.ending is proc.Ending.TIMED_OUT
    assert outcome.returncode == -signal.SIGKILL
    assert out == b"up\n"
    assert time.monotonic() - started < 5


def test_descendants_in_their_own_session_are_ended_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(60)"
    )
    outcome, _, _ = stream(py(code), tmp_path, timeout=1.0, kill_grace=0.5)
    assert outcome.ending is proc.Ending.TIMED_OUT
    grandchild = int(pid_file.read_text())
    assert not alive(grandchild)


def test_orphans_left_after_a_normal_exit_are_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid))\n"
    )
    outcome, _, _ = stream(py(code), tmp_path, kill_grace=1.0)
    assert outcome.ending is proc.Ending.EXITED
    assert outcome.returncode == 0
    assert outcome.leftovers == 1
    assert not alive(int(pid_file.read_text()))


def test_a_descendant_holding_the_pipe_does_not_block_the_end(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\n"
        "print('bye')"
    )
    started = time.monotonic()
    outcome, out, _ = stream(py(code), tmp_path, kill_grace=0.5)
    assert out == b"bye\n"
    assert outcome.returncode == 0
    assert time.monotonic() - started < 5


def test_interrupt_ends_the_tree_and_reports_it(tmp_path: Path) -> None:
    interrupt = Interrupt()
    timer = threading.Timer(0.5, interrupt.trigger)
    timer.start()
    try:
        outcome, _, _ = stream(
            py("import time; time.sleep(60)"), tmp_path, interrupt=interrupt, kill_grace=1.0
        )
    finally:
        timer.cancel()
        interrupt.close()
    assert outcome.ending is proc.Ending.INTERRUPTED
    assert outcome.duration < 5


def test_heartbeat_during_silence(tmp_path: Path) -> None:
    beats: list[tuple[float, float]] = []
    outcome, _, _ = stream(
        py("import time; time.sleep(1.2)"),
        tmp_path,
        heartbeat_secs=0.3,
        on_heartbeat=lambda elapsed, silent: beats.append((elapsed, silent)),
    )
    assert outcome.returncode == 0
    assert 2 <= len(beats) <= 5
    assert all(silent >= 0.3 for _, silent in beats)


def test_a_program_that_does_not_exist_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        stream([str(tmp_path / "nope")], tmp_path)


def test_run_reports_the_command_and_its_output_on_failure(tmp_path: Path) -> None:
    with pytest.raises(proc.ProcessError) as caught:
        proc.run(py("import sys; sys.stderr.write('bad thing'); sys.exit(4)"), cwd=tmp_path)
    assert caught.value.returncode == 4
    assert "exited with 4: bad thing" in str(caught.value)


def test_the_grace_period_after_an_interrupt_does_not_spin(tmp_path: Path) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    interrupt = Interrupt()
    timer = threading.Timer(0.5, interrupt.trigger)  # once the child ignores SIGTERM
    timer.start()
    started = time.process_time()
    try:
        outcome, _, _ = stream(py(code), tmp_path, interrupt=interrupt, kill_grace=1.5)
    finally:
        timer.cancel()
        interrupt.close()
    assert outcome.ending is proc.Ending.INTERRUPTED
    assert outcome.returncode == -signal.SIGKILL  # it sat out the whole grace period
    assert time.process_time() - started < 0.5  # and waiting it out cost no CPU


def test_a_child_that_closes_its_pipes_is_waited_for_and_beats(tmp_path: Path) -> None:
    beats: list[float] = []
    code = "import os, sys, time; os.close(1); os.close(2); time.sleep(1.5); sys.exit(7)"
    outcome, _, _ = stream(
        py(code),
        tmp_path,
        heartbeat_secs=0.4,
        on_heartbeat=lambda elapsed, silent: beats.append(silent),
    )
    assert (outcome.ending, outcome.returncode) == (proc.Ending.EXITED, 7)
    assert outcome.duration >= 1.5
    assert beats  # silent, but running: the heartbeat goes on


def test_the_callers_view_of_activity_drives_the_heartbeat(tmp_path: Path) -> None:
    beats: list[float] = []
    code = "import time\nfor _ in range(8):\n    print('retry', flush=True); time.sleep(0.15)"
    stream(
        py(code),
        tmp_path,
        heartbeat_secs=0.4,
        on_heartbeat=lambda elapsed, silent: beats.append(silent),
        activity=lambda: 0.0,  # the caller judges none of that output to be work
    )
    assert beats


_CHILDLESS_CHECK = """
import subprocess, sys, time
from tandem import proc
from tandem.proc.streaming import _childless

assert _childless()
child = subprocess.Popen([sys.executable, "-c", "pass"])
assert not _childless()  # running
while not proc.commands.is_zombie(child.pid):
    time.sleep(0.01)
assert not _childless()  # exited, not yet reaped
child.wait()
assert _childless()
"""


def test_the_no_children_check_sees_running_and_zombie_children() -> None:
    """The check that lets a turn skip its /proc scans: a zombie counts as a child.

    It runs in a fresh interpreter: a test worker may rightly have children of its own
    (servers that other tests' fixtures keep for a module)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILDLESS_CHECK],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_output_hands_over_pieces_and_raises_with_stderr_after_the_last(tmp_path: Path) -> None:
    script = "import sys; print('a' * 70000); print('why', file=sys.stderr); sys.exit(3)"
    pieces: list[bytes] = []
    running = proc.output([sys.executable, "-c", script], cwd=tmp_path, env=os.environ)
    with pytest.raises(proc.ProcessError) as failed:
        pieces.extend(running)
    assert len(pieces) > 1
    assert b"".join(pieces) == b"a" * 70000 + b"\n"
    assert (failed.value.returncode, failed.value.stderr) == (3, b"why\n")


def test_output_read_no_further_kills_the_command(tmp_path: Path) -> None:
    script = (
        "import os, sys\nprint(os.getpid(), flush=True)\nwhile True: sys.stdout.write('x' * 4096)"
    )
    pieces = proc.output([sys.executable, "-c", script], cwd=tmp_path, env=os.environ, chunk=64)
    pid = int(next(pieces).split()[0])
    pieces.close()
    assert not proc.pid_alive(pid)

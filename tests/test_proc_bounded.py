"""``proc.run_bounded``: silence ends a command and its whole process group."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tandem import proc


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def test_silence_kills_the_command_and_what_it_started(tmp_path: Path) -> None:
    pidfile = tmp_path / "helper.pid"
    code = (
        "import subprocess, sys, time\n"
        "helper = subprocess.Popen(['sleep', '60'])\n"  # like git's ssh: same group
        f"open({str(pidfile)!r}, 'w').write(str(helper.pid))\n"
        "print('connecting', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(proc.Stalled) as caught:
        proc.run_bounded(py(code), cwd=tmp_path, env={}, idle_timeout=1.0)
    assert 1.0 <= time.monotonic() - started < 10
    assert caught.value.silent == 1.0
    assert caught.value.stdout == b"connecting\n"
    deadline = time.monotonic() + 5
    while proc.pid_alive(int(pidfile.read_text())):
        assert time.monotonic() < deadline, "the helper outlived the stalled command"
        time.sleep(0.05)


def test_a_stalled_command_gets_sigterm_first_to_clean_up(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    code = (  # git removes its .lock files on SIGTERM, like this handler does its marker
        "import signal, sys, time\n"
        "def clean(*_):\n"
        f"    open({str(marker)!r}, 'w').write('x'); sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, clean)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(proc.Stalled):
        proc.run_bounded(py(code), cwd=tmp_path, env={}, idle_timeout=1.0)
    assert marker.read_text() == "x"


def test_a_command_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(proc.Stalled):
        proc.run_bounded(py(code), cwd=tmp_path, env={}, idle_timeout=1.0)
    assert time.monotonic() - started < 10


def test_steady_output_keeps_a_long_command_going(tmp_path: Path) -> None:
    code = (  # 2 s in all, never 1 s silent: like git's progress meter
        "import sys, time\n"
        "for i in range(8):\n"
        "    sys.stderr.write(f'{i}\\r'); sys.stderr.flush(); time.sleep(0.25)\n"
    )
    done = proc.run_bounded(py(code), cwd=tmp_path, env={}, idle_timeout=1.0)
    assert done.returncode == 0
    assert done.stderr == b"0\r1\r2\r3\r4\r5\r6\r7\r"


def test_a_descendant_holding_the_pipes_does_not_hold_the_caller(tmp_path: Path) -> None:
    # an ssh ControlPersist master: it daemonizes and keeps git's stderr open
    code = (
        "import os, subprocess\n"
        "subprocess.Popen(['sleep', '30'], start_new_session=True)\n"
        "print('done', flush=True)\n"
    )
    started = time.monotonic()
    done = proc.run_bounded(py(code), cwd=tmp_path, env={}, idle_timeout=20.0)
    assert time.monotonic() - started < 5
    assert done.stdout == b"done\n"


def test_a_failure_and_a_missing_program_are_process_errors(tmp_path: Path) -> None:
    with pytest.raises(proc.ProcessError) as caught:
        proc.run_bounded(py("import sys; sys.exit(3)"), cwd=tmp_path, env={}, idle_timeout=5)
    assert caught.value.returncode == 3
    assert not isinstance(caught.value, proc.Stalled)
    with pytest.raises(proc.ProcessError) as missing:
        proc.run_bounded(("no-such-program-x",), cwd=tmp_path, env={}, idle_timeout=5)
    assert missing.value.returncode == 127

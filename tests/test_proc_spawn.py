"""How an agent is started: it dies with a SIGKILLed tandem through the warden (SPEC §6.4),
and a program that cannot start is reported as a plain spawn reports it."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tandem import proc
from tandem.proc import spawn


def run_stream(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> proc.Outcome:
    return proc.stream(
        argv,
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        stdin=None,
        on_stdout=lambda _: None,
        on_stderr=lambda _: None,
        options=proc.StreamOptions(),
    )


# The parent stands in for tandem: it streams an agent (argv[2], given the pid file), then
# waits; the agent writes the pids it wants watched, one a line, and sleeps.
PARENT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from tandem import proc
    from tandem.proc import spawn
    pid_file, agent_code, grace = sys.argv[1], sys.argv[2], float(sys.argv[3])
    def beside(_):
        Path(pid_file + ".warden").write_text(str(spawn.WARDEN.pid))
    if len(sys.argv) > 4:  # the warden dies before the agent starts
        spawn.WARDEN.start()
        os.kill(spawn.WARDEN.pid, 9)
        while proc.pid_alive(spawn.WARDEN.pid):
            pass
        Path(pid_file + ".first").write_text(str(spawn.WARDEN.pid))
    proc.stream([sys.executable, "-c", agent_code, pid_file], cwd=Path.cwd(),
                env=dict(os.environ), stdin=None, on_stdout=beside, on_stderr=beside,
                options=proc.StreamOptions(kill_grace=grace))
    """
)
SLEEPER = (
    "import os, sys, time; print('up', flush=True); "
    "open(sys.argv[1], 'w').write(f'{os.getpid()}\\n'); time.sleep(60)"
)
WITH_A_CHILD = (
    "import os, subprocess, sys, time; print('up', flush=True); "
    "child = subprocess.Popen(['sleep', '60']); "
    "open(sys.argv[1], 'w').write(f'{os.getpid()}\\n{child.pid}\\n'); time.sleep(60)"
)
DEAF = (
    "import os, signal, sys, time; print('up', flush=True); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open(sys.argv[1], 'w').write(f'{os.getpid()}\\n'); time.sleep(60)"
)


def kill_parent_of(agent_code: str, tmp_path: Path, *extra: str, grace: float = 10) -> list[int]:
    """Start the parent, wait for its agent's pids, SIGKILL the parent; the pids."""
    pid_file = tmp_path / "agent.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(pid_file), agent_code, str(grace), *extra],
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), 20)
        pids = [int(line) for line in pid_file.read_text().split()]
        assert all(proc.pid_alive(pid) for pid in pids)
        wait_for((tmp_path / "agent.pid.warden").exists, 20)
    finally:
        parent.kill()
        parent.wait()
    return pids


def wait_for(condition: Callable[[], bool], secs: float) -> bool:
    deadline = time.monotonic() + secs
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_all_end(pids: list[int], why: str) -> None:
    if not wait_for(lambda: not any(proc.pid_alive(pid) for pid in pids), 5):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(why)


def test_the_agent_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    pids = kill_parent_of(SLEEPER, tmp_path)
    assert_all_end(pids, "the agent outlived its SIGKILLed parent")


def test_the_agents_process_group_dies_with_it(tmp_path: Path) -> None:
    pids = kill_parent_of(WITH_A_CHILD, tmp_path)
    assert len(pids) == 2
    assert_all_end(pids, "the agent's child in its group outlived the SIGKILLed parent")


def test_an_agent_that_ignores_sigterm_gets_sigkill_after_its_grace(tmp_path: Path) -> None:
    pids = kill_parent_of(DEAF, tmp_path, grace=0.5)
    assert_all_end(pids, "an agent that ignores SIGTERM outlived its SIGKILLed parent")


def test_a_warden_killed_on_its_own_is_started_again(tmp_path: Path) -> None:
    pids = kill_parent_of(SLEEPER, tmp_path, "kill the warden")
    first = int((tmp_path / "agent.pid.first").read_text())
    assert int((tmp_path / "agent.pid.warden").read_text()) != first
    assert_all_end(pids, "the agent outlived its SIGKILLed parent once its warden had died")


def test_an_agent_whose_turn_ended_is_forgotten(tmp_path: Path) -> None:
    """Its pid may belong to another process by the time tandem dies: left alone."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        script = (
            "import sys\n"
            "from tandem.proc import spawn\n"
            "spawn.WARDEN.start()\n"
            f"spawn.WARDEN.send('+ {other.pid} 1\\n')\n"
            f"spawn.release({other.pid})\n"
            "print(spawn.WARDEN.pid)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        warden = int(done.stdout)
        assert wait_for(lambda: not proc.pid_alive(warden), 5), "the warden did not exit"
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_warden_is_not_a_child_of_tandem() -> None:
    """So the one-syscall "no children" check between turns stays true: also for a warden
    started again once tandem is the subreaper that orphans would go to."""
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from tandem.proc import spawn\n"
        "spawn.become_subreaper()\n"
        "for warden in (spawn.WARDEN, spawn.Warden()):\n"
        "    warden.start()\n"
        "    stat = Path(f'/proc/{warden.pid}/stat').read_text()\n"
        "    print(warden.pid, stat.rsplit(')', 1)[1].split()[1], os.getpid())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        warden, parent, tandem = line.split()
        assert parent != tandem, f"the warden {warden} is a child of tandem"


@pytest.mark.parametrize(
    ("python", "message"),
    [("/bin/false", "warden process did not start"), ("/nonexistent/python", "No such file")],
)
def test_a_warden_that_cannot_start_is_an_os_error_and_leaks_nothing(
    monkeypatch: pytest.MonkeyPatch, python: str, message: str
) -> None:
    """The executor reports an OSError as "could not start <agent>: …"."""
    monkeypatch.setattr(sys, "executable", python)
    fds = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match=message):
        spawn.Warden().start()
    assert set(os.listdir("/proc/self/fd")) <= fds


def test_the_agent_is_the_started_process_and_its_status_is_kept(
    tmp_path: Path,
) -> None:
    """The wrapper execs the agent: the agent's pid is the child's, its exit code the child's."""
    pid_file = tmp_path / "pid"
    code = f"import os, sys; open({str(pid_file)!r}, 'w').write(str(os.getppid())); sys.exit(7)"
    outcome = run_stream([sys.executable, "-c", code], tmp_path)
    assert outcome.returncode == 7
    assert int(pid_file.read_text()) == os.getpid()  # its parent is us, not a wrapper


def test_a_missing_program_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_stream([str(tmp_path / "nope")], tmp_path)
    with pytest.raises(FileNotFoundError):
        run_stream(["tandem-no-such-agent"], tmp_path)


def test_a_program_that_is_not_executable_raises_permission_error(
    tmp_path: Path,
) -> None:
    script = tmp_path / "agent"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    with pytest.raises(PermissionError):
        run_stream([str(script)], tmp_path)


def test_the_program_is_looked_up_on_the_agents_path(tmp_path: Path) -> None:
    """The PATH that counts is the one given to the agent, as with a plain spawn; a
    relative name with a slash is taken from the work tree."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "ran"
    script = bin_dir / "my-agent"
    script.write_text(f'#!/bin/sh\necho "$0" > {marker}\nexit 3\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    assert run_stream(["my-agent"], tmp_path, env).returncode == 3
    assert marker.read_text().strip() == str(script)
    marker.unlink()
    assert run_stream(["bin/my-agent"], tmp_path).returncode == 3
    assert marker.exists()
    marker.unlink()
    relative = {**os.environ, "PATH": f"bin{os.pathsep}{os.environ.get('PATH', '')}"}
    assert run_stream(["my-agent"], tmp_path, relative).returncode == 3  # bin/ of the cwd
    assert marker.exists()

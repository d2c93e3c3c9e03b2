"""How an agent is started: it dies with a SIGKILLed tandem, by either mechanism (SPEC §6.4),
and a program that cannot start is reported the same way by both."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tandem import proc
from tandem.proc import spawn

MECHANISMS = ["setpriv", "preexec"]


@pytest.fixture(params=MECHANISMS)
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs once through ``setpriv --pdeathsig`` and once through the fallback."""
    name = str(request.param)
    if name == "setpriv" and spawn._setpriv() is None:
        pytest.skip("util-linux setpriv with --pdeathsig is not installed")
    if name == "preexec":
        monkeypatch.setattr(spawn, "_setpriv", lambda: None)
    return name


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


# The parent stands in for tandem: it streams an agent that writes its pid, then waits.
PARENT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from tandem import proc
    from tandem.proc import spawn
    if sys.argv[2] == "preexec":
        spawn._setpriv = lambda: None
    agent = [sys.executable, "-c",
             "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
             "time.sleep(60)", sys.argv[1]]
    proc.stream(agent, cwd=Path.cwd(), env=dict(os.environ), stdin=None,
                on_stdout=lambda _: None, on_stderr=lambda _: None,
                options=proc.StreamOptions())
    """
)


def test_the_agent_dies_with_a_sigkilled_parent(tmp_path: Path, mechanism: str) -> None:
    pid_file = tmp_path / "agent.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(pid_file), mechanism], cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.05)
        agent = int(pid_file.read_text())
        assert proc.pid_alive(agent)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while proc.pid_alive(agent):
        if time.monotonic() > deadline:
            os.kill(agent, signal.SIGKILL)
            pytest.fail(f"the agent outlived its SIGKILLed parent ({mechanism})")
        time.sleep(0.05)


def test_the_agent_is_the_started_process_and_its_status_is_kept(
    tmp_path: Path, mechanism: str
) -> None:
    """The wrapper execs the agent: the agent's pid is the child's, its exit code the child's."""
    pid_file = tmp_path / "pid"
    code = f"import os, sys; open({str(pid_file)!r}, 'w').write(str(os.getppid())); sys.exit(7)"
    outcome = run_stream([sys.executable, "-c", code], tmp_path)
    assert outcome.returncode == 7
    assert int(pid_file.read_text()) == os.getpid()  # its parent is us, not a wrapper


def test_a_missing_program_raises_file_not_found(tmp_path: Path, mechanism: str) -> None:
    with pytest.raises(FileNotFoundError):
        run_stream([str(tmp_path / "nope")], tmp_path)
    with pytest.raises(FileNotFoundError):
        run_stream(["tandem-no-such-agent"], tmp_path)


def test_a_program_that_is_not_executable_raises_permission_error(
    tmp_path: Path, mechanism: str
) -> None:
    script = tmp_path / "agent"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    with pytest.raises(PermissionError):
        run_stream([str(script)], tmp_path)


def test_the_program_is_looked_up_on_the_agents_path(tmp_path: Path, mechanism: str) -> None:
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

"""No two agents in one tree (SPEC §13.1 rule 2): what a killed tandem left running is ended.

Each test starts a real driver process that runs an agent through ``proc.stream`` with the
marks of a turn, as tandem does, then SIGKILLs the driver and checks what the next start
does.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tandem import leftovers, proc
from tandem.agents.dispatch import Dispatch
from tandem.agents.executor import AgentExecutor
from tandem.config import AgentConfig
from tandem.execution import TurnContext
from tandem.logs import Console, TurnLog
from tandem.redaction import Redactor

DRIVER = """
import os, sys
from pathlib import Path
from tandem import leftovers, proc
root, turn, agent = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
env = {**os.environ, **leftovers.turn_marks(root, turn)}
proc.stream([sys.executable, "-c", agent], cwd=root, env=env, stdin=None,
            on_stdout=lambda b: None, on_stderr=lambda b: None,
            options=proc.StreamOptions())
"""
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open("agent.pid", "w").write(str(os.getpid()))
time.sleep(120)
"""
DAEMONIZING = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("tool.pid", "w").write(str(os.getpid()))
        time.sleep(120)
    os._exit(0)
time.sleep(120)
"""


def crashed_turn(root: Path, turn: str, agent: str, pid_file: str) -> int:
    """Run ``agent`` as turn ``turn`` of ``root``, SIGKILL tandem; the pid in ``pid_file``."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(root), turn, textwrap.dedent(agent)]
    )
    deadline = time.monotonic() + 30
    while not (root / pid_file).exists() or not (root / pid_file).read_text():
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    pid = int((root / pid_file).read_text())
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(0.3)  # the agent got SIGTERM from its parent's death
    assert proc.pid_alive(pid), "the leftover must outlive tandem for this test"
    return pid


def test_an_agent_that_ignores_sigterm_is_killed_by_the_next_start(tmp_path: Path) -> None:
    pid = crashed_turn(tmp_path, "old-turn", STUBBORN, "agent.pid")
    said = leftovers.end_earlier_turns(tmp_path, "new-turn", grace=0.5)
    assert not proc.pid_alive(pid)
    assert said == [
        f"ended 1 process(es) of an earlier turn (old-turn) still running in this work tree: "
        f"pid {pid} (1 ignored SIGTERM and got SIGKILL)"
    ]


def test_a_tool_that_daemonized_is_ended_by_the_next_start(tmp_path: Path) -> None:
    pid = crashed_turn(tmp_path, "old-turn", DAEMONIZING, "tool.pid")
    found = leftovers.earlier_turns(tmp_path, "new-turn")
    assert pid in found["old-turn"]
    said = leftovers.end_earlier_turns(tmp_path, "new-turn", grace=2)
    assert not proc.pid_alive(pid)
    assert said[0].startswith("ended ")
    assert "(old-turn)" in said[0]


def test_processes_of_this_turn_and_of_other_trees_are_spared(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    pid = crashed_turn(other, "old-turn", STUBBORN, "agent.pid")
    try:
        assert leftovers.end_earlier_turns(tmp_path, "new-turn", grace=0.5) == []
        assert leftovers.end_earlier_turns(other, "old-turn", grace=0.5) == []
        assert proc.pid_alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


def test_the_executor_ends_them_before_its_agent_starts_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    pid = crashed_turn(root, "old-turn", STUBBORN, "agent.pid")
    script = tmp_path / "agent"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n")
    script.chmod(0o755)
    redactor = Redactor({})
    console = Console(redactor, out=io.BytesIO(), err=io.StringIO())
    agents = AgentExecutor(
        config=AgentConfig(
            default="worker", commands={"worker": (str(script),)}, kill_grace_secs=0.5
        ),
        dispatch=Dispatch(default="worker"),
        root=root,
        env=dict(os.environ),
        console=console,
        redactor=redactor,
    )
    prompt = tmp_path / "prompt.md"
    prompt.write_text("go\n")
    log = TurnLog(tmp_path / "turn.log", "turn.log", redactor)
    try:
        done = agents.execute(
            prompt, TurnContext("ralph", 2, "prompt.md", log, "worker", turn_id="t2")
        )
    finally:
        log.close()
    assert done.ok
    assert not proc.pid_alive(pid)
    assert isinstance(console.err, io.StringIO)
    warning = console.err.getvalue()
    assert "tandem: warning: ended 1 process(es) of an earlier turn (old-turn)" in warning
    assert (
        "ended 1 process(es) of an earlier turn (old-turn)" in (tmp_path / "turn.log").read_text()
    )

"""``tandem demo``: a fresh host repo and a real loop with the offline dry-run agent.

Everything is real (git commits, child processes, logs, state) except the agent's
intelligence: the bundled ``dry-run`` agent shows the prompt it got and makes a small
change. Nothing leaves the machine and nothing is spent.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from tandem import proc
from tandem.commands.init import init
from tandem.commands.run import RunOptions, run
from tandem.errors import TandemError

_CONFIG = """\
# The demo host's config: the offline dry-run agent, and the router with a review
# cadence of 2, so iteration 2 runs the reviewer prompt on galph's turn.
agent:
  default: dry-run
  heartbeat_secs: 60
router:
  enabled: true
  review_every_n: 2
"""

_README = """\
# Demo host

A tiny project for tandem's demo. galph (the supervisor) writes `input.md`; ralph (the
engineer) appends to `dry-run-work.md`. Both are played by tandem's offline dry-run agent.
"""


def demo(*, cwd: Path, path: str | None, iterations: int, quiet: bool) -> int:
    """Make the demo host, run ``iterations`` iterations in combined mode, show the result."""
    target = _target(cwd, path)
    _git(target, "init", "--quiet", "--initial-branch=main")
    _git(target, "config", "user.name", "tandem demo")
    _git(target, "config", "user.email", "demo@tandem.invalid")
    (target / "README.md").write_text(_README)
    (target / "orchestration.yaml").write_text(_CONFIG)
    print(f"tandem: demo host: {target}")
    init(cwd=target, agent="dry-run", hint=False)
    _git(target, "add", "--all")
    _git(target, "commit", "--quiet", "-m", "demo host: tandem init")
    code = run(cwd=target, options=RunOptions(iterations=iterations, quiet=quiet))
    history = _git(target, "log", "--oneline", "--max-count", str(2 * iterations + 1))
    me = _invocation()
    print("\ntandem: the demo's commits (newest first):")
    print(history.rstrip())
    print(
        f"\ntandem: state:   {target / 'sync' / 'state.json'}\n"
        f"tandem: logs:    {target / 'logs' / 'main'} (events.jsonl, galph/, ralph/)\n"
        f"tandem: try:     cd {target} && {me} status && {me} logs -n 2 && {me} route --explain"
    )
    _report(target)
    return code


def _report(target: Path) -> None:
    """The HTML report of the demo's turns; without the report extra, how to get it."""
    from tandem.commands.report import report

    try:
        report(cwd=target, output=None, since=None, config_path=None, overrides={})
    except TandemError as exc:
        print(f"tandem: report: not written: {exc}")


def _invocation() -> str:
    """How to run this tandem again: its name when PATH finds it, else its full path."""
    program = Path(sys.argv[0])
    if program.name != "tandem":
        return f"{sys.executable} -m tandem"
    found = shutil.which("tandem")
    if found and Path(found).resolve() == program.resolve():
        return "tandem"
    return str(program.absolute())


def _target(cwd: Path, path: str | None) -> Path:
    if path is None:
        return Path(tempfile.mkdtemp(prefix="tandem-demo-"))
    target = (cwd / path).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TandemError(f"{target} exists and is not an empty folder", "pick a new path")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    try:
        return proc.run(("git", *args), cwd=cwd, env=env).text
    except proc.ProcessError as exc:
        raise TandemError(f"the demo could not run git: {exc}", "check that git works") from exc

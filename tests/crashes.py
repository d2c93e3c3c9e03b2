"""Helpers for crash tests: a git that kills tandem at a chosen step, and the invariants
every crash must keep (SPEC §13, §13.1)."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from helpers import REPO_ROOT, TESTS, HostRepo, git


def crashing_env(
    tmp_path: Path, host: HostRepo, plan: dict[str, object]
) -> tuple[dict[str, str], Path]:
    """``host``'s environment with ``git_shim.py`` first on PATH, armed with ``plan``."""
    shim_dir = tmp_path / "shim"
    if not shim_dir.exists():
        shim_dir.mkdir()
        shim = shim_dir / "git"
        shim.write_text(f"#!{sys.executable}\n" + (TESTS / "git_shim.py").read_text())
        shim.chmod(0o755)
    crash_plan = tmp_path / "crash.json"
    crash_plan.write_text(json.dumps(plan))
    env = host.env(REAL_GIT=shutil.which("git") or "git", CRASH_PLAN=str(crash_plan))
    env["PATH"] = f"{shim_dir}:{env['PATH']}"
    return env, crash_plan


def killed_inside_state_write(host: HostRepo, needle: str, *args: str) -> int:
    """Run ``tandem ARGS``, SIGKILLed inside the atomic write of a state holding ``needle``
    (``killer/sitecustomize.py``); the exit code."""
    env = host.env(TANDEM_KILL_IN_WRITE=needle)
    env["PYTHONPATH"] = f"{TESTS / 'killer'}{os.pathsep}{REPO_ROOT / 'src'}"
    done = subprocess.run(
        [sys.executable, "-m", "tandem", *args],
        cwd=host.root,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def ok_stamps(subjects: list[str]) -> collections.Counter[tuple[int, str]]:
    """How often each (iteration the turn ran in, actor) was stamped ok."""
    found: collections.Counter[tuple[int, str]] = collections.Counter()
    for subject in subjects:
        if not subject.startswith("[SYNC i=") or " status=ok" not in subject:
            continue
        number = int(subject.split("i=", 1)[1].split("]", 1)[0])
        actor = subject.split("actor=", 1)[1].split(" ", 1)[0]
        found[(number - 1 if actor == "ralph" else number, actor)] += 1
    return found


def assert_stamped_once(subjects: list[str], iterations: int) -> None:
    """Every turn of the first ``iterations`` iterations stamped ok exactly once, and no
    turn at all stamped ok twice (a restart may run more iterations than that)."""
    stamps = ok_stamps(subjects)
    assert all(count == 1 for count in stamps.values()), subjects
    expected = {(i, actor) for i in range(1, iterations + 1) for actor in ("galph", "ralph")}
    assert expected <= set(stamps), subjects


def assert_reachable(root: Path, commits: set[str]) -> None:
    """No lost commit: each of ``commits`` (work the agents or tandem recorded) is in HEAD."""
    for sha in commits:
        argv = ["git", "merge-base", "--is-ancestor", sha, "HEAD"]
        done = subprocess.run(argv, cwd=root, check=False)
        assert done.returncode == 0, f"commit {sha} was lost"


def work_commits(root: Path) -> set[str]:
    """Commits in HEAD that hold work (everything but tandem's claim commits)."""
    out = git(root, "log", "--format=%H%x00%s", "HEAD")
    return {
        line.split("\0")[0]
        for line in out.splitlines()
        if line and not line.split("\0", 1)[1].endswith("status=running")
    }


def assert_no_agent_alive(host: HostRepo, grace: float = 5) -> None:
    """No agent process of an earlier (killed) run is still alive: no second agent."""
    deadline = time.monotonic() + grace
    for call in host.calls():
        while _alive(call["pid"]):
            assert time.monotonic() < deadline, f"agent {call['pid']} outlived its tandem"
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False

"""A ``git`` that crashes its caller at a chosen step of the protocol, then is real git.

Put first on PATH as ``git``. ``REAL_GIT`` is the real binary. When ``CRASH_PLAN`` names
a JSON file {"before": bool, "match": "status=running"} and this is a ``push`` whose HEAD
commit subject contains ``match``, the calling process (tandem) gets SIGKILL before the
push (or right after it succeeded) and the plan file is removed, so it fires once.
With "command": "commit" in the plan, the same happens to a ``commit`` whose message
contains ``match`` (before it: the state is written, its commit missing).
With "with_git": true, git dies with its caller, as a SIGKILL of the whole process tree
would leave it: a commit holding ``index.lock``, a push cut off mid-transfer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    real = os.environ["REAL_GIT"]
    args = sys.argv[1:]
    plan_path = Path(os.environ.get("CRASH_PLAN", "/nonexistent"))
    plan = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    if not plan or plan.get("command", "push") not in args:
        os.execv(real, [real, *args])  # noqa: S606 - becomes the real git, argv list
    if plan.get("command", "push") == "commit":
        subject = " ".join(args)
    else:
        subject = subprocess.run(
            [real, "log", "-1", "--format=%s"], capture_output=True, text=True, check=False
        ).stdout
    if plan["match"] not in subject:
        os.execv(real, [real, *args])  # noqa: S606 - becomes the real git, argv list
    plan_path.unlink()
    if plan.get("with_git"):
        return _die_with_caller(real, args)
    if plan["before"]:
        os.kill(os.getppid(), signal.SIGKILL)
        return 1
    code = subprocess.run([real, *args], check=False).returncode
    os.kill(os.getppid(), signal.SIGKILL)
    return code


def _die_with_caller(real: str, args: list[str]) -> int:
    """SIGKILL tandem and this git in the middle of the command."""
    if "commit" in args:
        git_dir = subprocess.run(
            [real, "rev-parse", "--absolute-git-dir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        Path(git_dir, "index.lock").touch()  # what a commit holds until it is done
    else:
        child = subprocess.Popen([real, *args])
        time.sleep(0.05)  # the transfer has begun
        child.kill()
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""A ``git`` that crashes its caller at a chosen step of the protocol, then is real git.

Put first on PATH as ``git``. ``REAL_GIT`` is the real binary. When ``CRASH_PLAN`` names
a JSON file {"before": bool, "match": "status=running"} and this is a ``push`` whose HEAD
commit subject contains ``match``, the calling process (tandem) gets SIGKILL before the
push (or right after it succeeded) and the plan file is removed, so it fires once.
With "command": "commit" in the plan, the same happens to a ``commit`` whose message
contains ``match`` (before it: the state is written, its commit missing).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
    if plan["before"]:
        os.kill(os.getppid(), signal.SIGKILL)
        return 1
    code = subprocess.run([real, *args], check=False).returncode
    os.kill(os.getppid(), signal.SIGKILL)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

"""A ``git`` that holds one branch push at a gate the test opens, then is real git.

Put first on PATH as ``git`` (``gated_env``); ``REAL_GIT`` is the real binary. When
``GATE_PLAN`` names a JSON file {"match": "status=running", "mode": ..., "dir": ...} and
this is a push of ``HEAD:refs/heads/…`` whose HEAD subject contains ``match``, the plan
file is removed (it fires once) and, by ``mode``:

- ``hold``: touch ``<dir>/at`` and wait for ``<dir>/go`` before the real push starts, so
  the test can cut the network exactly under it;
- ``lost``: do the real push, touch ``<dir>/at``, wait for ``<dir>/go``, then fall silent
  for good: the remote applied the push, its caller never hears the answer, as when a
  connection dies right after the server took the push.

With ``GATE_LOG`` set, every git command's arguments are appended to that file, one
JSON list a line (the gated push is followed by ``["<gate>"]``), so a test can count
what tandem ran.

While it waits it writes a byte of "progress" to stderr every 0.2 s, so the caller's
no-progress bound starts only when the wait is over.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def gated_env(env: dict[str, str], shim_dir: Path, plan: dict[str, str]) -> dict[str, str]:
    """``env`` with this gate first on PATH as ``git``, armed with ``plan``."""
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "git"
    shim.write_text(f"#!{sys.executable}\n" + HERE.read_text())
    shim.chmod(0o755)
    plan_path = shim_dir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    real = shutil.which("git", path=env.get("PATH")) or "git"
    return {
        **env,
        "REAL_GIT": real,
        "GATE_PLAN": str(plan_path),
        "PATH": f"{shim_dir}:{env['PATH']}",
    }


def _wait_for(path: Path) -> None:
    while not path.exists():
        sys.stderr.write("\r")
        sys.stderr.flush()
        time.sleep(0.2)


def _log(args: list[str]) -> None:
    if "GATE_LOG" in os.environ:
        with open(os.environ["GATE_LOG"], "a") as log:
            log.write(json.dumps(args) + "\n")


def main() -> int:
    real = os.environ["REAL_GIT"]
    args = sys.argv[1:]
    _log(args)
    plan_path = Path(os.environ.get("GATE_PLAN", "/nonexistent"))
    branch_push = "push" in args and any(a.startswith("HEAD:refs/heads/") for a in args)
    if not branch_push or not plan_path.exists():
        os.execv(real, [real, *args])  # noqa: S606 - becomes the real git, argv list
    plan = json.loads(plan_path.read_text())
    subject = subprocess.run(
        [real, "log", "-1", "--format=%s"], capture_output=True, text=True, check=False
    ).stdout
    if plan["match"] not in subject:
        os.execv(real, [real, *args])  # noqa: S606 - becomes the real git, argv list
    plan_path.unlink()
    _log(["<gate>"])
    gate = Path(plan["dir"])
    if plan["mode"] == "hold":
        (gate / "at").touch()
        _wait_for(gate / "go")
        os.execv(real, [real, *args])  # noqa: S606 - becomes the real git, argv list
    code = subprocess.run([real, *args], check=False).returncode
    (gate / "at").write_text(str(code))
    _wait_for(gate / "go")
    while True:  # the answer never comes: the caller's bound ends this
        time.sleep(60)


if __name__ == "__main__":
    raise SystemExit(main())

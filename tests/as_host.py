#!/usr/bin/env python3
"""Run a command as if on another machine: ``as_host.py NAME ARGV...``.

Meant to run inside a new UTS namespace (``unshare --uts``): it sets the namespace's
hostname to NAME and execs ARGV, so the command (tandem) sees its own host name, as a
process on a second machine would. ``machine(name, argv)`` builds the whole command.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve()


def machine(name: str, argv: list[str]) -> list[str]:
    """``argv`` run on the pretend machine ``name`` (root: a UTS namespace; else a user one)."""
    unshare = shutil.which("unshare") or "unshare"
    ns = ["--uts"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--uts"]
    return [unshare, *ns, sys.executable, str(HERE), name, *argv]


def main() -> int:
    name, argv = sys.argv[1], sys.argv[2:]
    socket.sethostname(name)
    os.execvp(argv[0], argv)  # noqa: S606 (argv, never a shell: that is the point)


if __name__ == "__main__":
    raise SystemExit(main())

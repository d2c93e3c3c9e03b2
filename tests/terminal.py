"""A real terminal for tests: a private tmux server, its screen read with ``capture-pane``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from helpers import REPO_ROOT

# Runs the program under test as its child, then records its exit code and whether the
# terminal's settings came back, and stays alive so the pane's modes can be read. Ctrl-C
# reaches both; the wrapper's handler lets it through to the child only (handlers, unlike
# an ignored signal, are not inherited).
_WRAPPER = """\
import json, signal, subprocess, sys, termios, time
signal.signal(signal.SIGINT, lambda *_: None)
before = termios.tcgetattr(0)
code = subprocess.call(sys.argv[2:])
after = termios.tcgetattr(0)
with open(sys.argv[1], "w") as handle:
    json.dump({"code": code, "termios_restored": before == after}, handle)
time.sleep(60)
"""


class Tmux:
    """One tmux server on its own socket, one 80x24 window running a wrapped program."""

    def __init__(self, folder: Path) -> None:
        assert shutil.which("tmux"), "tmux is needed: apt-get install tmux"
        self.socket = folder / "tmux.sock"
        self.result = folder / "wrapped.json"
        self.wrapper = folder / "wrapper.py"
        self.wrapper.write_text(_WRAPPER)

    def _tmux(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            env=None if env is None else dict(env),
            check=True,
        )
        return done.stdout

    def start(self, cwd: Path, argv: list[str], env: Mapping[str, str]) -> None:
        """Start ``argv`` (wrapped) in a new 80x24 window; the server gets ``env``."""
        run_env = {**env, "PYTHONPATH": str(REPO_ROOT / "src")}
        self._tmux(
            *("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "-s", "w"),
            *("-c", str(cwd), sys.executable, str(self.wrapper), str(self.result), *argv),
            env=run_env,
        )

    def screen(self) -> str:
        """What the window shows now."""
        return self._tmux("capture-pane", "-p", "-t", "w")

    def wait_for(self, check: Callable[[str], bool], timeout: float = 30) -> str:
        """The first screen that passes ``check``; fails with the last one seen."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            seen = self.screen()
            if check(seen):
                return seen
            time.sleep(0.2)
        raise AssertionError(f"screen never matched; last screen:\n{seen}")

    def keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names: ``q``, ``C-c``)."""
        self._tmux("send-keys", "-t", "w", *keys)

    def modes(self) -> dict[str, str]:
        """The pane's alternate-screen and cursor-visible flags."""
        out = self._tmux("list-panes", "-t", "w", "-F", "#{alternate_on} #{cursor_flag}")
        alternate, cursor = out.split()
        return {"alternate": alternate, "cursor": cursor}

    def program(self) -> psutil.Process:
        """The program under test (the wrapper's child)."""
        pane = int(self._tmux("list-panes", "-t", "w", "-F", "#{pane_pid}").strip())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = psutil.Process(pane).children()
            if children:
                return children[0]
            time.sleep(0.05)
        raise AssertionError("the program did not start")

    def exited(self, timeout: float = 10) -> dict[str, Any]:
        """What the wrapper recorded once the program ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.result.exists() and self.result.read_text():
                found: dict[str, Any] = json.loads(self.result.read_text())
                return found
            time.sleep(0.05)
        raise AssertionError(f"the program did not exit; screen:\n{self.screen()}")

    def close(self) -> None:
        """Stop this test's own tmux server (by its socket)."""
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], check=False)

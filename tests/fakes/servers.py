"""Test helpers: start the fake model server, and run a real agent CLI against it.

``start_model_server`` runs ``model_server.py`` as a child process; ``cli_env`` and
``codex_args`` give the isolated environment and flags that point a CLI at it
(AGENT-CLIS.md: retries off, no traffic anywhere else, state under ``tmp_path``).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("model_server.py")
CLI_BIN_DIR = REPO_ROOT / "tools" / "agent-clis" / "node_modules" / ".bin"
CLAUDE_BIN = CLI_BIN_DIR / "claude"
CODEX_BIN = CLI_BIN_DIR / "codex"
FAKE_ANTHROPIC_KEY = "sk-ant-fake-0000"
FAKE_OPENAI_KEY = "sk-fake-0000"
FAKE_GEMINI_KEY = "fake-gemini-key"
START_TIMEOUT_SECS = 10.0


class ServerStartError(Exception):
    """The fake server did not report that it was listening."""


@dataclass(frozen=True)
class FakeServer:
    """A running fake model server."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def requests(self) -> list[dict[str, Any]]:
        """Every request logged so far, in order."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def model_requests(self) -> list[dict[str, Any]]:
        """The logged POST requests (the model calls, without probes)."""
        return [request for request in self.requests() if request["method"] == "POST"]

    def stop(self) -> None:
        """Terminate the server by its pid and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_model_server(
    api: str, script: list[dict[str, Any]], tmp_path: Path, idle_exit: float = 120.0
) -> FakeServer:
    """Start ``model_server.py --api api`` on a free port and wait until it listens."""
    workdir = _fresh_dir(tmp_path / f"fake-{api}")
    script_file = workdir / "script.json"
    script_file.write_text(json.dumps(script), encoding="utf-8")
    log = workdir / "requests.jsonl"
    argv = [sys.executable, str(SERVER_SCRIPT), "--api", api, "--script", str(script_file)]
    argv += ["--log", str(log), "--port", "0", "--idle-exit", str(idle_exit)]
    argv += ["--parent-pid", str(os.getpid())]
    with (workdir / "stderr.txt").open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        url = _listening_url(process)
    except ServerStartError as error:
        FakeServer("", process, log).stop()
        raise ServerStartError(f"{error}; see {workdir / 'stderr.txt'}") from None
    return FakeServer(url, process, log)


def _fresh_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet; created."""
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    candidate.mkdir(parents=True)
    return candidate


def _listening_url(process: subprocess.Popen[str]) -> str:
    """The URL from the server's ``LISTENING`` line."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT_SECS):
            raise ServerStartError(f"no LISTENING line within {START_TIMEOUT_SECS} s")
    line = process.stdout.readline()
    if not line.startswith("LISTENING "):
        raise ServerStartError(f"fake server said {line!r} (exit {process.poll()})")
    return line.split(" ", 1)[1].strip()


def cli_env(api: str, server: FakeServer, tmp_path: Path) -> dict[str, str]:
    """An isolated environment in which the CLI for ``api`` talks only to ``server``.

    ``anthropic`` sets up claude, ``openai`` codex and opencode, ``gemini`` gemini. HOME,
    TMPDIR and the CLIs' state directories live under ``tmp_path``.
    """
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    for directory in (home, tmp):
        directory.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(tmp),
    }
    setups = {"anthropic": _claude_env, "openai": _openai_env, "gemini": _gemini_env}
    env.update(setups[api](server, home))
    return env


def _claude_env(server: FakeServer, home: Path) -> dict[str, str]:
    # Tests run as root, where claude only skips permissions inside a declared sandbox.
    return {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "IS_SANDBOX": "1",
    }


def _openai_env(server: FakeServer, home: Path) -> dict[str, str]:
    codex_home = home / "codex-home"
    codex_home.mkdir(exist_ok=True)
    xdg = {
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    return {
        "CODEX_HOME": str(codex_home),
        "FAKE_OPENAI_KEY": FAKE_OPENAI_KEY,
        "OPENCODE_CONFIG_CONTENT": json.dumps(_opencode_config(server)),
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        **{name: str(path) for name, path in xdg.items()},
    }


def _opencode_config(server: FakeServer) -> dict[str, Any]:
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "Fake",
        "options": {"baseURL": f"{server.url}/v1", "apiKey": FAKE_OPENAI_KEY},
        "models": {"fake-model": {"name": "Fake", "tool_call": True}},
    }
    return {
        "provider": {"fake": provider},
        "model": "fake/fake-model",
        "small_model": "fake/fake-model",
        "permission": {"bash": "allow", "edit": "allow"},
        "autoupdate": False,
        "share": "disabled",
    }


def _gemini_env(server: FakeServer, home: Path) -> dict[str, str]:
    # Without a selected auth type gemini exits 41 before asking anything.
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True, "maxAttempts": 1},
    }
    settings_file = home / ".gemini" / "settings.json"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    return {"GOOGLE_GEMINI_BASE_URL": server.url, "GEMINI_API_KEY": FAKE_GEMINI_KEY}


def codex_args(server: FakeServer) -> list[str]:
    """The codex flags that select the fake provider, retries off, no other traffic."""
    provider = (
        '{name="fake", '
        f'base_url="{server.url}/v1", '
        'wire_api="responses", env_key="FAKE_OPENAI_KEY", '
        "request_max_retries=0, stream_max_retries=0, stream_idle_timeout_ms=30000}"
    )
    return [
        "-c", "model=gpt-5.5",
        "-c", "model_provider=fake",
        "-c", f"model_providers.fake={provider}",
        "-c", "analytics.enabled=false",
        "--disable", "plugins",
        "--skip-git-repo-check",
        "--ephemeral",
    ]  # fmt: skip

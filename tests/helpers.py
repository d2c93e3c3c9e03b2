"""Test helpers: real git repositories, a fake agent on PATH, and running tandem."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.execution import ExecResult, FailureKind, Status, TurnContext

TESTS = Path(__file__).parent
REPO_ROOT = TESTS.parent
FAKE_AGENT = TESTS / "fake_agent.py"

SYNC = ("--sync-via-git", "--poll-interval", "0.3")
"""Role-mode flags for sync via git, polling often enough for tests."""

PROMPTS = {
    "supervisor.md": "# supervisor\nplan the next step\n",
    "main.md": "# main\nimplement the step\n",
    "reviewer.md": "# reviewer\nreview the work\n",
    "router.md": "# router\nanswer with one prompt name\n",
}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run real git and return its stdout."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def write(root: Path, files: Mapping[str, str]) -> None:
    """Create files (and folders) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class HostRepo:
    """A host repository (the one tandem runs in) for a test, the fake agent wired in."""

    root: Path
    bin: Path
    agent_log: Path
    plan_path: Path
    pids: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a tandem run in this host gets."""
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_AGENT_LOG"] = str(self.agent_log)
        env["FAKE_AGENT_PLAN"] = str(self.plan_path)
        env["FAKE_AGENT_PIDS"] = str(self.pids)
        env["PYTHONPATH"] = str(REPO_ROOT / "src")
        env.update(extra)
        return env

    def plan(self, plan: Mapping[str, Any]) -> None:
        """What the fake agent does, by actor/iteration/prompt (see fake_agent.py)."""
        self.plan_path.write_text(json.dumps(plan))

    def calls(self) -> list[dict[str, Any]]:
        """Every run of the fake agent so far."""
        if not self.agent_log.exists():
            return []
        return [json.loads(line) for line in self.agent_log.read_text().splitlines()]

    def turns(self) -> list[tuple[str, str]]:
        """(actor, prompt) of each non-router run."""
        return [(c["actor"], c["prompt"]) for c in self.calls() if c["purpose"] == "turn"]

    def state(self) -> dict[str, Any]:
        """sync/state.json as parsed JSON."""
        data: dict[str, Any] = json.loads((self.root / "sync" / "state.json").read_text())
        return data

    def put_state(self, state: str | Mapping[str, Any]) -> None:
        """Write sync/state.json as given (text as is, a mapping as JSON)."""
        path = self.root / "sync" / "state.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(state if isinstance(state, str) else json.dumps(state))

    def subjects(self) -> list[str]:
        """Commit subjects, oldest first."""
        return git(self.root, "log", "--reverse", "--format=%s").splitlines()

    def dirty(self) -> list[str]:
        """``git status --porcelain`` lines."""
        return git(self.root, "status", "--porcelain", "--untracked-files=all").splitlines()


def make_host(
    tmp_path: Path,
    config: str | None = None,
    *,
    name: str = "host",
    files: Mapping[str, str] | None = None,
    commit: bool = True,
    agent: str = "",
) -> HostRepo:
    """A git repo with prompts, a config using the fake agent, logs/ ignored, one commit.

    ``config`` is appended to the config file; ``agent`` lines go into its ``agent:``.
    """
    root = tmp_path / name
    root.mkdir()
    git(root, "init", "--quiet")
    base = "agent:\n  default: fake\n  commands:\n    fake: [fake-agent]\n" + agent
    write(root, {f"prompts/{k}": v for k, v in PROMPTS.items()})
    write(root, {"orchestration.yaml": base + (config or ""), ".gitignore": "logs/\n"})
    write(root, dict(files or {}))
    if commit:
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "host")
    return with_fake_agent(tmp_path, name, root)


def with_fake_agent(tmp_path: Path, name: str, root: Path) -> HostRepo:
    """A ``HostRepo`` for ``root`` with the fake agent in its own bin folder."""
    bin_dir = tmp_path / f"{name}-bin"
    bin_dir.mkdir()
    agent = bin_dir / "fake-agent"
    agent.write_text(f"#!{sys.executable}\n" + FAKE_AGENT.read_text())
    agent.chmod(0o755)
    return HostRepo(
        root,
        bin_dir,
        tmp_path / f"{name}-agent.jsonl",
        tmp_path / f"{name}-plan.json",
        tmp_path / f"{name}-pids",
    )


@dataclass(frozen=True)
class Run:
    """A finished ``python -m tandem`` run."""

    code: int
    out: str
    err: str


def tandem(cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> Run:
    """Run ``python -m tandem ARGS`` as a real child process."""
    run_env = dict(os.environ if env is None else env)
    run_env["PYTHONPATH"] = str(REPO_ROOT / "src")
    done = subprocess.run(
        [sys.executable, "-m", "tandem", *args],
        cwd=cwd,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (except .git internals that git rewrites on reads)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            found[str(path.relative_to(root))] = path.read_bytes()
    found[".git/HEAD-sha"] = git(root, "rev-parse", "HEAD", check=False).encode()
    return found


@dataclass
class StubCall:
    """One call of ``StubExecutor``."""

    actor: str
    iteration: int
    prompt: str
    purpose: str


class StubExecutor:
    """A ``PromptExecutor`` for in-process tests: records calls, writes a file per turn.

    galph writes ``input.md``, ralph appends to ``work.txt``; ``fail`` holds
    (actor, iteration) pairs that fail; ``router_answer`` is what the router prompt says.
    """

    def __init__(
        self,
        root: Path,
        *,
        router_answer: str | None = None,
        fail: set[tuple[str, int]] | None = None,
    ) -> None:
        self.root = root
        self.router_answer = router_answer
        self.fail = fail or set()
        self.calls: list[StubCall] = []

    def agent_for(self, actor: str, prompt: str) -> str:
        """Always the stub."""
        return "stub"

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        """Record the call and act it out."""
        self.calls.append(StubCall(turn.actor, turn.iteration, turn.prompt, turn.purpose))
        if turn.purpose == "router":
            return ExecResult("stub", Status.OK, 0, answer=self.router_answer)
        if (turn.actor, turn.iteration) in self.fail:
            return ExecResult("stub", Status.FAILED, 2, "exited with 2", FailureKind.AGENT)
        if turn.actor == "galph":
            (self.root / "input.md").write_text(f"do step {turn.iteration}\n")
        else:
            with (self.root / "work.txt").open("a") as handle:
                handle.write(f"step {turn.iteration}\n")
        return ExecResult("stub", Status.OK, 0)

    def turns(self) -> list[tuple[str, int, str]]:
        """(actor, iteration, prompt) of each turn run (router runs left out)."""
        return [(c.actor, c.iteration, c.prompt) for c in self.calls if c.purpose == "turn"]


def open_test_host(root: Path, **flags: Any) -> Any:
    """A ``tandem.host.Host`` for ``root`` whose console writes into memory."""
    import io

    from tandem.commands.common import load_config
    from tandem.host import open_host
    from tandem.logs import Console
    from tandem.redaction import Redactor

    config = load_config(root, None, flags.pop("overrides", {}))
    console = Console(Redactor(os.environ), out=io.BytesIO(), err=io.StringIO())
    return open_host(config, console=console, **flags)


@dataclass
class Pair:
    """A bare remote and clones of it, each a ``HostRepo`` with its own fake agent."""

    remote: Path
    clones: dict[str, HostRepo]


def make_pair(
    tmp_path: Path, config: str | None = None, names: tuple[str, ...] = ("galph", "ralph")
) -> Pair:
    """A bare ``remote.git`` holding a host repo, and one clone per name."""
    seed = make_host(tmp_path, config, name="seed")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(seed.root, "remote", "add", "origin", str(remote))
    git(seed.root, "push", "--quiet", "origin", "main")
    clones = {}
    for name in names:
        git(tmp_path, "clone", "--quiet", str(remote), name)
        clones[name] = with_fake_agent(tmp_path, name, tmp_path / name)
    return Pair(remote, clones)


def remote_subjects(remote: Path) -> list[str]:
    """Subjects of the remote's main branch, oldest first."""
    return git(remote, "log", "--reverse", "--format=%s", "main").splitlines()


def remote_file(remote: Path, path: str) -> str:
    """A file's content on the remote's main branch."""
    return git(remote, "show", f"main:{path}")


def start_tandem(
    cwd: Path, *args: str, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start ``python -m tandem ARGS`` in the background, output to ``log``."""
    run_env = dict(env)
    run_env["PYTHONPATH"] = str(REPO_ROOT / "src")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tandem", *args],
            cwd=cwd,
            env=run_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


ANY = "{…}"
"""In an expected error line, stands for text that differs per run (a temp path, a time)."""


def last_line(text: str) -> str:
    """The last non-empty line of a run's output (where tandem says why it stopped)."""
    return text.strip().splitlines()[-1]


def error_line(err: str) -> str:
    """The one line a refused run wrote to stderr; fails on more lines or a traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def matches(line: str, expected: str) -> bool:
    """``line`` is exactly ``expected``, where each ``ANY`` in it matches any text."""
    pattern = ".*".join(re.escape(part) for part in expected.split(ANY))
    return re.fullmatch(pattern, line) is not None


def assert_line(line: str, expected: str) -> None:
    """``line`` is exactly ``expected`` (``ANY`` as in ``matches``)."""
    assert matches(line, expected), f"{line!r}\n  is not\n{expected!r}"


def assert_one_line_error(err: str, message: str) -> None:
    """stderr is exactly the one line ``tandem: error: <message>`` (``ANY`` as above).

    Exact, so a changed message or a lost fix ("; what to do") fails the test.
    """
    assert_line(error_line(err), f"tandem: error: {message}")


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> float:
    """Poll ``check`` until it holds (failing with ``what`` after ``timeout``); the wait."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, what
        time.sleep(0.05)
    return time.monotonic() - began

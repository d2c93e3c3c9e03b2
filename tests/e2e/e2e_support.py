"""What the end-to-end tests share: a host wired to a real agent CLI and a fake model.

Each test gets a temp host repo whose ``orchestration.yaml`` selects the real ``claude``,
``codex``, ``gemini`` or ``opencode`` binary (``<NAME>_CMD``), a fake model server on 127.0.0.1
that follows a script, and an environment isolated under ``tmp_path`` (AGENT-CLIS.md).
Every process of a tandem run carries a unique ``E2E_RUN_MARK`` in its environment, so a
process that outlives the run is found in /proc afterwards.

The scenarios the CLIs go through are functions here; ``test_<cli>.py`` run them and add
what is particular to each CLI's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fakes.servers import CLAUDE_BIN, CLI_BIN_DIR, CODEX_BIN, FakeServer, cli_env, codex_args
from helpers import HostRepo, Run, git, make_host, start_tandem, tandem

Json = dict[str, Any]
Script = list[Json]
NODE_MODULES = CLAUDE_BIN.parents[1]  # tools/agent-clis/node_modules
INSTALL_HINT = "run `npm ci --prefix tools/agent-clis` to install the pinned agent CLIs"
# Not named like a secret: codex may hide *KEY*/*TOKEN*/*SECRET* variables from commands.
MARK_VARIABLE = "E2E_RUN_MARK"
ACTORS = ("galph", "ralph")
# What each actor's prompt says (helpers.PROMPTS): it tells the model requests apart.
PROMPT_TEXT = {"galph": "plan the next step", "ralph": "implement the step"}
# galph may only publish input.md (plans, prompts...); ralph publishes everything.
WRITE_WORK = (
    'if [ "$TANDEM_ACTOR" = galph ]; then echo "do step 1" > input.md; '
    "else mkdir -p src && echo 'print(\"hello\")' > src/hello.py; fi"
)
TURN_FILES = {"galph": {"input.md": "do step 1\n"}, "ralph": {"src/hello.py": 'print("hello")\n'}}
STALL_TIMEOUT_SECS = 3
# Long enough for a CLI to reach its tool call on a busy machine (about 1 s when idle).
TOOL_TIMEOUT_SECS = 4
KILL_GRACE_SECS = 2
SLOW = 60  # a stalled model's pause, and the limit for what must end much sooner


@dataclass(frozen=True)
class Cli:
    """One real agent CLI: where it is, which fake API it talks to, how tandem shows it."""

    name: str
    api: str
    binary: Path
    package: str
    tool_prefix: str  # how tandem renders a shell tool call on the console
    event_types: frozenset[str]  # raw events a successful run prints
    side_calls: int = 0  # model requests per run that offer no tools (titles, routing)
    # How long a whole tandem run may take; gemini and opencode need 3 to 15 s a run
    # (AGENT-CLIS.md), more when the machine is busy.
    run_timeout: float = SLOW

    def version(self) -> str:
        """The version pinned in its installed npm package."""
        manifest = NODE_MODULES / self.package / "package.json"
        version: str = json.loads(manifest.read_text(encoding="utf-8"))["version"]
        return version

    def require(self) -> None:
        """Fail (never skip) when the binary is not installed."""
        if not self.binary.exists():
            pytest.fail(f"{self.binary} is missing; {INSTALL_HINT}", pytrace=False)


CLAUDE = Cli(
    "claude",
    "anthropic",
    CLAUDE_BIN,
    "@anthropic-ai/claude-code",
    "→ Bash: ",
    frozenset({"system", "assistant", "user", "result"}),
)
CODEX = Cli(
    "codex",
    "openai",
    CODEX_BIN,
    "@openai/codex",
    "→ $ ",
    frozenset(
        {"thread.started", "turn.started", "item.started", "item.completed", "turn.completed"}
    ),
)
GEMINI = Cli(
    "gemini",
    "gemini",
    CLI_BIN_DIR / "gemini",
    "@google/gemini-cli",
    "→ run_shell_command: ",
    frozenset({"init", "message", "tool_use", "tool_result", "result"}),
    side_calls=1,  # its routing classifier
    run_timeout=3 * SLOW,
)
OPENCODE = Cli(
    "opencode",
    "openai",
    CLI_BIN_DIR / "opencode",
    "opencode-ai",
    "→ bash: ",
    frozenset({"step_start", "tool_use", "step_finish", "text"}),
    side_calls=1,  # the session title
    run_timeout=4 * SLOW,
)


@dataclass
class Setup:
    """A host repo, the fake server its agent talks to, and the environment of a run."""

    cli: Cli
    host: HostRepo
    server: FakeServer
    env: dict[str, str]
    mark: str

    @property
    def root(self) -> Path:
        """The host repo."""
        return self.host.root

    def tandem(self, *args: str) -> tuple[Run, float]:
        """Run ``python -m tandem ARGS`` in the host; the run and its wall time."""
        started = time.monotonic()
        run = tandem(self.root, *args, env=self.env, timeout=self.cli.run_timeout)
        return run, time.monotonic() - started

    def state(self) -> Json:
        """sync/state.json."""
        return self.host.state()

    def events(self, kind: str | None = None) -> list[Json]:
        """logs/main/events.jsonl, parsed; only events of ``kind`` if given."""
        path = self.root / "logs" / "main" / "events.jsonl"
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [event for event in events if kind is None or event["event"] == kind]

    def turn_end(self, actor: str) -> Json:
        """The one ``turn_end`` event of ``actor``."""
        ends = [event for event in self.events("turn_end") if event["actor"] == actor]
        assert len(ends) == 1, ends
        return ends[0]

    def turn_log(self, actor: str) -> Path:
        """The one turn log of ``actor``."""
        logs = sorted((self.root / "logs" / "main" / actor).glob("iter-*.log"))
        assert len(logs) == 1, logs
        return logs[0]

    def raw_events(self, actor: str) -> list[Json]:
        """The JSON events the agent printed, as kept in ``actor``'s turn log."""
        lines = self.turn_log(actor).read_text(encoding="utf-8").splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return [event for event in parsed if isinstance(event, dict)]

    def raw_event(self, actor: str, kind: str) -> Json:
        """The last raw event of type ``kind`` in ``actor``'s turn log."""
        found = [event for event in self.raw_events(actor) if event.get("type") == kind]
        assert found, f"no {kind} event in {self.turn_log(actor)}"
        return found[-1]

    def leftovers(self, token: str | None = None) -> list[str]:
        """Live processes started by this run, or whose argv holds ``token``."""
        return [f"{pid}: {cmdline}" for pid, cmdline in self._leftovers(token).items()]

    def _leftovers(self, token: str | None) -> dict[int, str]:
        return {
            pid: cmdline
            for pid, cmdline, environ in processes()
            if self.mark.encode() in environ or (token is not None and token in cmdline)
        }

    def kill_leftovers(self, token: str | None) -> None:
        """SIGKILL, by pid, whatever a failed test found left over."""
        for pid in self._leftovers(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Lab:
    """Starts what a test needs; at teardown, ``stop`` ends all of it by pid."""

    tmp_path: Path
    start_server: Callable[[str, Script], FakeServer]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    setups: list[Setup] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def setup(
        self,
        cli: Cli,
        script: Script,
        *,
        extra_env: dict[str, str] | None = None,
        extra_config: str = "",
        **agent: object,
    ) -> Setup:
        """A host whose agent is the real ``cli``, talking to a fake model that plays
        ``script``; ``agent`` sets ``agent.*`` keys (timeout_secs, kill_grace_secs...),
        ``extra_config`` is appended to ``orchestration.yaml``."""
        cli.require()
        server = self.start_server(cli.api, script)
        agent = {"timeout_secs": SLOW, "kill_grace_secs": KILL_GRACE_SECS, **agent}
        yaml = config(cli, server, agent) + extra_config
        host = make_host(self.tmp_path, files={"orchestration.yaml": yaml})
        mark = f"e2e-{uuid.uuid4().hex}"
        env = host.env()
        env.update(cli_env(cli.api, server, self.tmp_path))
        env[f"{cli.name.upper()}_CMD"] = str(cli.binary)
        env[MARK_VARIABLE] = mark
        if cli is OPENCODE:
            # opencode asks the npm registry for plugin metadata on each run; the fake
            # server answers 404 at once, so no request leaves the machine.
            env["NPM_CONFIG_REGISTRY"] = server.url
        env.update(extra_env or {})
        self.setups.append(Setup(cli, host, server, env, mark))
        return self.setups[-1]

    def token(self) -> str:
        """A string no other process on this machine has in its command line."""
        self.tokens.append(f"e2e-sleeper-{uuid.uuid4().hex}")
        return self.tokens[-1]

    def start(self, setup: Setup, *args: str) -> subprocess.Popen[bytes]:
        """Start ``python -m tandem ARGS`` in the background; output goes to ``output.log``."""
        child = start_tandem(setup.root, *args, env=setup.env, log=self.tmp_path / "output.log")
        self.children.append(child)
        return child

    def output(self) -> str:
        """What the background tandem printed (stdout and stderr)."""
        return (self.tmp_path / "output.log").read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Terminate every background tandem still running, then kill what a failing
        tandem left behind; all by pid."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        for setup in self.setups:
            for token in [*self.tokens, None]:
                setup.kill_leftovers(token)


def config(cli: Cli, server: FakeServer, agent: dict[str, object]) -> str:
    """``orchestration.yaml`` selecting ``cli``, with ``agent`` added under ``agent:``."""
    lines = ["agent:", f"  default: {cli.name}"]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in agent.items()]
    if cli is CODEX:
        # A JSON string is a YAML string: the provider table keeps its quotes and braces.
        flags = ", ".join(json.dumps(flag) for flag in codex_args(server))
        lines += ["  args:", f"    codex: [{flags}]"]
    return "\n".join(lines) + "\n"


def processes() -> Iterator[tuple[int, str, bytes]]:
    """(pid, argv joined by spaces, raw environ) of every live process but this one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile
        yield int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace"), environ


def sleeper(token: str, pidfile: Path) -> str:
    """A shell command that leaves its session, writes its pid and sleeps for 10 minutes.

    ``token`` is an argument of the python process, so it shows in its /proc cmdline.
    claude's Bash tool refuses ``sleep``, hence python. codex runs commands on a pty whose
    session the command already leads (``setsid`` would fail there); claude does not.
    """
    code = (
        "import os, time; os.getsid(0) == os.getpid() or os.setsid(); "
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    return f'python3 -c "{code}" {token}'


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


# -- scenarios both CLIs go through ---------------------------------------------------


def one_iteration(lab: Lab, cli: Cli) -> Setup:
    """``tandem run --iterations 1`` where each turn's agent edits the repo with a shell
    tool call; checks what tandem does with it the same way for every CLI."""
    setup = lab.setup(cli, [{"shell": WRITE_WORK}, {"text": "Done"}])
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    # Each turn's work is in its own turn commit, nothing else is, nothing is left over.
    for actor, files in TURN_FILES.items():
        commit = turn_commit(setup.root, actor)
        shown = git(setup.root, "show", "--name-only", "--format=", commit).split()
        assert set(shown) == {*files, "sync/state.json"}, (actor, shown)
        for path, content in files.items():
            assert git(setup.root, "show", f"{commit}:{path}") == content
    assert setup.host.dirty() == []
    state = setup.state()
    assert (state["iteration"], state["expected_actor"], state["status"]) == (
        2,
        "galph",
        "complete",
    )
    assert state["failure"] is None
    assert state["lease_owner"] is None
    # The console shows each tool call as one rendered line.
    assert run.out.count(f"{cli.tool_prefix}{WRITE_WORK}") == 2, run.out
    for actor in ACTORS:
        kinds = {event.get("type") for event in setup.raw_events(actor)}
        assert cli.event_types <= kinds, (actor, kinds)
        assert setup.turn_end(actor)["status"] == "ok"
    # Two model calls per turn: the tool call, then the final text (and the side calls).
    for actor, text in PROMPT_TEXT.items():
        asked = [r for r in agent_requests(setup.server) if text in json.dumps(r["body"])]
        assert len(asked) == 2, (actor, len(asked))
    assert len(agent_requests(setup.server)) == 4
    assert len(setup.server.model_requests()) == 4 + 2 * cli.side_calls
    # The start-up preflight asked the CLI for its version, before any turn started.
    agent = setup.events("agent")
    assert [event["name"] for event in agent] == [cli.name]
    assert cli.version() in agent[0]["version"]
    order = [event["event"] for event in setup.events()]
    assert order.index("agent") < order.index("turn_start")
    assert setup.leftovers() == []
    return setup


def agent_requests(server: FakeServer) -> list[Json]:
    """The model requests that offer tools: the agent's own steps, no side calls."""
    return [
        r for r in server.model_requests() if isinstance(r["body"], dict) and r["body"].get("tools")
    ]


def turn_commit(root: Path, actor: str) -> str:
    """The sha of ``actor``'s one turn commit (by its ``[SYNC ...]`` subject)."""
    lines = git(root, "log", "--format=%H %s").splitlines()
    found = [line.split()[0] for line in lines if f"] actor={actor} " in line]
    assert len(found) == 1, lines
    return found[0]


def galph_failed(setup: Setup, run: Run) -> str:
    """Check that galph's turn failed the way SPEC §7.4 says; the reason it gave."""
    assert run.code == 1, (run.out, run.err)
    assert "Traceback" not in run.out + run.err
    last = run.err.rstrip("\n").splitlines()[-1]
    prefix = (
        f"tandem: galph turn failed at iteration 1 (prompt supervisor.md, agent {setup.cli.name}): "
    )
    assert last.startswith(prefix), run.err
    reason, found, log = last[len(prefix) :].rpartition("; log: ")
    assert found, last
    assert log.startswith("logs/main/galph/iter-00001_"), last
    assert (setup.root / log).is_file()
    state = setup.state()
    assert (state["status"], state["expected_actor"], state["iteration"]) == ("failed", "galph", 1)
    assert state["failure"]["reason"] == reason
    assert (state["failure"]["actor"], state["failure"]["log"]) == ("galph", log)
    assert (state["lease_owner"], state["lease_expires_at"]) == (None, None)
    assert setup.turn_end("galph")["failure"] == reason
    fail_commit(setup, reason)
    return reason


def fail_commit(setup: Setup, reason: str) -> None:
    """HEAD is galph's fail stamp: the state file only, the reason in a trailer."""
    subject, *body = git(setup.root, "log", "-1", "--format=%s%n%b").splitlines()
    assert subject == "[SYNC i=1] actor=galph status=fail prompt=supervisor.md"
    assert f"Tandem-Failure: {reason}" in body
    assert git(setup.root, "show", "--name-only", "--format=", "HEAD").split() == [
        "sync/state.json"
    ]


def api_error(lab: Lab, cli: Cli) -> tuple[Setup, str]:
    """The model answers HTTP 500: galph's turn fails at once; its reason is returned."""
    setup = lab.setup(cli, [{"error": {"status": 500, "message": "boom"}}])
    run, seconds = setup.tandem("run", "--iterations", "1")
    reason = galph_failed(setup, run)
    assert len(agent_requests(setup.server)) == 1, "retries are off: one request"
    assert len(setup.server.model_requests()) == 1 + cli.side_calls
    assert seconds < cli.run_timeout / 3  # 20 s for claude and codex
    assert setup.leftovers() == []
    return setup, reason


def stalled_stream(lab: Lab, cli: Cli) -> None:
    """The model stalls mid-stream for a minute: tandem's wall clock ends the turn."""
    setup = lab.setup(cli, [{"text": "late", "stall": SLOW}], timeout_secs=STALL_TIMEOUT_SECS)
    run, seconds = setup.tandem("run", "--iterations", "1")
    reason = galph_failed(setup, run)
    assert "timed out after" in reason
    assert len(setup.server.model_requests()) == 1, "the agent never reached the model"
    assert STALL_TIMEOUT_SECS <= seconds < STALL_TIMEOUT_SECS + KILL_GRACE_SECS + 10, seconds
    assert setup.leftovers() == []


def stuck_tool(lab: Lab, cli: Cli) -> None:
    """The agent's shell tool runs a command in its own session that would sleep for ten
    minutes: at the timeout, tandem ends it along with the agent."""
    token, pidfile = lab.token(), lab.tmp_path / "sleeper.pid"
    setup = lab.setup(
        cli, [{"shell": sleeper(token, pidfile)}, {"text": "Done"}], timeout_secs=TOOL_TIMEOUT_SECS
    )
    run, seconds = setup.tandem("run", "--iterations", "1")
    assert pidfile.exists(), "the agent never started the tool command"
    reason = galph_failed(setup, run)
    assert "timed out after" in reason
    assert TOOL_TIMEOUT_SECS <= seconds < TOOL_TIMEOUT_SECS + KILL_GRACE_SECS + 10, seconds
    assert setup.leftovers(token) == []
    assert not pid_alive(int(pidfile.read_text()))


def interrupted(lab: Lab, cli: Cli) -> None:
    """Ctrl-C while the agent's tool command runs: exit 130, the turn is recorded as
    failed with reason "interrupted", the lease is released, and nothing is left."""
    token, pidfile = lab.token(), lab.tmp_path / "sleeper.pid"
    setup = lab.setup(cli, [{"shell": sleeper(token, pidfile)}, {"text": "Done"}])
    child = lab.start(setup, "run", "--iterations", "1")
    wait_for(lambda: pidfile.exists() and pidfile.read_text(), 30, "tool command running")
    sleeper_pid = int(pidfile.read_text())
    assert pid_alive(sleeper_pid)
    assert setup.state()["lease_owner"] is not None
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    code = child.wait(timeout=KILL_GRACE_SECS + 15)
    output = lab.output()
    assert code == 130, output
    assert time.monotonic() - sent < KILL_GRACE_SECS + 10
    assert "Traceback" not in output
    state = setup.state()
    assert (state["status"], state["expected_actor"]) == ("failed", "galph")
    assert state["failure"]["reason"] == "interrupted"
    assert (state["lease_owner"], state["lease_expires_at"]) == (None, None)
    fail_commit(setup, "interrupted")
    assert setup.leftovers(token) == []
    assert not pid_alive(sleeper_pid)


def secret_redacted(lab: Lab, cli: Cli) -> tuple[Setup, Run]:
    """A secret from the environment that the agent prints and the model repeats shows
    as ``***`` in the console, the turn logs and the events, and nowhere in clear."""
    secret = f"tok-{uuid.uuid4().hex}"
    script = [{"shell": "echo $MY_SERVICE_TOKEN"}, {"text": f"The token is {secret}."}]
    setup = lab.setup(cli, script, extra_env={"MY_SERVICE_TOKEN": secret})
    run, _ = setup.tandem("run", "--iterations", "1")
    assert run.code == 0, run.err
    # The agent really did print it: its tool output went back to the model.
    assert secret in setup.server.log.read_text(encoding="utf-8")
    assert secret not in run.out + run.err
    written = [path for path in (setup.root / "logs").rglob("*") if path.is_file()]
    assert setup.root / "logs" / "main" / "events.jsonl" in written
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    assert "The token is ***." in run.out
    for actor in ACTORS:
        assert setup.turn_end(actor)["result"]["text"] == "The token is ***."
    return setup, run


ROUTER_CONFIG = "router:\n  enabled: true\n  mode: router_only\n  prompt: router.md\n"
# What models write before a tool call; it must not become part of the router's answer.
PREAMBLE = "Let me look at the recent commits first."


def router_after_tool_call(lab: Lab, cli: Cli) -> Setup:
    """galph's router prompt makes a tool call (after a sentence), then answers
    ``reviewer.md``: the answer is the final assistant message, so galph runs the reviewer."""
    script = [{"shell": "git log --oneline -1", "say": PREAMBLE}, {"text": "reviewer.md"}]
    setup = lab.setup(cli, script, extra_config=ROUTER_CONFIG)
    run, _ = setup.tandem("run", "--mode", "role", "--role", "galph", "--iterations", "1")
    # The model really wrote the sentence, and the CLI passed it on before its tool call.
    router_log = sorted((setup.root / "logs" / "main" / "galph").glob("iter-*router*.log"))
    assert len(router_log) == 1, router_log
    assert PREAMBLE in router_log[0].read_text(encoding="utf-8")
    assert run.code == 0, run.err
    state = setup.state()
    assert (state["last_prompt"], state["last_prompt_actor"]) == ("reviewer.md", "galph")
    assert (state["iteration"], state["expected_actor"]) == (1, "ralph")
    subject = git(setup.root, "log", "-1", "--format=%s")
    assert subject.startswith("[SYNC i=1] actor=galph → next=ralph status=ok prompt=reviewer.md ")
    # Two runs, two model calls each: the router prompt's, then the reviewer's.
    assert len(agent_requests(setup.server)) == 4
    assert setup.leftovers() == []
    return setup

"""The production ``PromptExecutor``: dispatch a prompt to an agent CLI and run it.

Dispatch follows SPEC §6.2. Executables are found once, before anything is claimed or
committed (``preflight``): ``<NAME>_CMD``, then PATH. Output is streamed to the turn log
(raw, redacted) and the console (rendered for structured agents) as it arrives.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tandem import proc
from tandem.agents import BUILTINS
from tandem.agents.base import Agent, AgentResult, CommandAgent, Parser
from tandem.config import AgentConfig
from tandem.errors import AgentError, ConfigError
from tandem.interrupts import Interrupt
from tandem.logs import Console, Redactor, TurnLog, human_duration
from tandem.router import normalize
from tandem.runner import ExecResult, TurnContext
from tandem.state import ACTORS, Actor

_ANSWER_CAP = 64 * 1024  # a router answer is one line; more than this is not an answer
_LONG_LINE = 1 << 20
Chunk = bytes | memoryview
_VERSION_TIMEOUT = 30.0


@dataclass(frozen=True)
class Dispatch:
    """Which agent runs a prompt (SPEC §6.2), highest first: CLI prompt map, CLI role map,
    YAML ``agent.prompts``, YAML ``agent.roles``, then ``--agent``/``agent.default``."""

    default: str
    yaml_roles: Mapping[Actor, str] = field(default_factory=dict)
    yaml_prompts: Mapping[str, str] = field(default_factory=dict)
    cli_roles: Mapping[Actor, str] = field(default_factory=dict)
    cli_prompts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        agent: AgentConfig,
        cli_roles: Mapping[Actor, str] | None = None,
        cli_prompts: Mapping[str, str] | None = None,
    ) -> Dispatch:
        """From the config and the command line's maps (prompt keys get normalized)."""
        return cls(
            default=agent.default,
            yaml_roles=dict(agent.roles),
            yaml_prompts=_normalized(agent.prompts),
            cli_roles=dict(cli_roles or {}),
            cli_prompts=_normalized(cli_prompts or {}),
        )

    def agent_for(self, actor: Actor, prompt: str) -> str:
        """The agent name for ``prompt`` on ``actor``'s turn."""
        prompt = normalize(prompt)
        for table, key in (
            (self.cli_prompts, prompt),
            (self.cli_roles, actor),
            (self.yaml_prompts, prompt),
            (self.yaml_roles, actor),
        ):
            if key in table:
                return table[key]  # type: ignore[index]
        return self.default

    def reachable(self) -> list[str]:
        """Every agent some turn could be dispatched to, for the preflight check."""
        names = list(self.cli_prompts.values())
        for actor in ACTORS:
            if actor in self.cli_roles:
                names.append(self.cli_roles[actor])
            else:
                names += [*self.yaml_prompts.values(), self.yaml_roles.get(actor, self.default)]
        return list(dict.fromkeys(names))


def _normalized(table: Mapping[str, str]) -> dict[str, str]:
    return {normalize(prompt): agent for prompt, agent in table.items()}


@dataclass(frozen=True)
class Resolved:
    """An agent ready to start: its kind, executable and flags."""

    name: str
    agent: Agent
    executable: str
    permissions: tuple[str, ...]
    args: tuple[str, ...]


class AgentExecutor:
    """Runs prompts through agent CLIs as child processes."""

    def __init__(
        self,
        *,
        config: AgentConfig,
        dispatch: Dispatch,
        root: Path,
        env: Mapping[str, str],
        console: Console,
        redactor: Redactor,
        interrupt: Interrupt | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.config = config
        self.dispatch = dispatch
        self.root = root
        self.env = dict(env)
        self.console = console
        self.redactor = redactor
        self.interrupt = interrupt
        self.state_file = state_file
        self._resolved: dict[str, Resolved] = {}

    def agent_for(self, actor: Actor, prompt: str) -> str:
        """See ``Dispatch.agent_for``."""
        return self.dispatch.agent_for(actor, prompt)

    def preflight(self, versions: bool = True) -> list[tuple[str, str, str | None]]:
        """Resolve every reachable agent now; ``AgentError`` if one is missing or unusable.

        With ``versions``, structured agents answer ``--version``. Returns
        (name, executable, version) of each, for the event log.
        """
        found = []
        for name in self.dispatch.reachable():
            resolved = self.resolve(name)
            version = self._version(resolved) if versions and resolved.agent.structured else None
            found.append((name, resolved.executable, version))
        return found

    def resolve(self, name: str) -> Resolved:
        """Find ``name``'s executable: ``<NAME>_CMD``, then PATH (cached)."""
        if name in self._resolved:
            return self._resolved[name]
        agent = self._kind(name)
        permissions = self.config.permissions.get(name, agent.default_permissions)
        problem = agent.setup_problem(self.env, permissions)
        if problem:
            raise AgentError(f"agent '{name}' cannot run here: {problem}")
        resolved = Resolved(
            name, agent, self._executable(name, agent), permissions, self.config.args.get(name, ())
        )
        self._resolved[name] = resolved
        return resolved

    def _kind(self, name: str) -> Agent:
        if name in self.config.commands:
            return CommandAgent(name=name, command=self.config.commands[name])
        if name in BUILTINS:
            return BUILTINS[name]
        known = ", ".join([*BUILTINS, *self.config.commands])
        raise ConfigError(
            f"agent '{name}' is neither built in nor under agent.commands (known: {known})",
            f"add agent.commands.{name}: [program, args...] to orchestration.yaml",
        )

    def _executable(self, name: str, agent: Agent) -> str:
        if name == "dry-run" and name not in self.config.commands:
            return sys.executable
        variable = name.upper().replace("-", "_") + "_CMD"
        wanted = self.env.get(variable) or (
            agent.command[0] if isinstance(agent, CommandAgent) else name
        )
        if os.sep in wanted and not Path(wanted).is_absolute():
            wanted = str(self.root / wanted)
        found = proc.which(wanted, self.env)
        if found is None:
            source = f" ({variable}={wanted})" if self.env.get(variable) else ""
            raise AgentError(
                f"agent '{name}' not found on PATH{source}",
                f"install it or set agent.commands.{name}",
            )
        return found

    def _version(self, resolved: Resolved) -> str:
        try:
            done = proc.run(
                (resolved.executable, "--version"),
                cwd=self.root,
                env=self.env,
                timeout=_VERSION_TIMEOUT,
            )
        except proc.ProcessError as exc:
            raise AgentError(
                f"agent '{resolved.name}' ({resolved.executable}) did not answer --version: "
                f"{str(exc)[-200:]}",
                "check that it is installed correctly",
            ) from exc
        return done.text.strip().splitlines()[0] if done.text.strip() else "unknown"

    def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
        """Run ``prompt_path`` through the agent dispatched for it."""
        name = self.agent_for(turn.actor, turn.prompt)
        resolved = self.resolve(name)
        try:
            prompt_text = prompt_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            turn.log.line(f"tandem: cannot read {prompt_path}: {exc}")
            return ExecResult(name, False, reason=f"cannot read prompt {prompt_path}: {exc}")
        invocation = resolved.agent.invocation(
            resolved.executable,
            prompt_text=prompt_text,
            permissions=resolved.permissions,
            args=resolved.args,
        )
        shown = ["<prompt text>" if a == prompt_text else a for a in invocation.argv]
        turn.log.fields("agent", {"agent": name, "argv": shown, "cwd": self.root})
        sink = _Sink(turn.log, self.console, self.redactor, resolved.agent.parser(), turn.purpose)
        try:
            outcome = proc.stream(
                invocation.argv,
                cwd=self.root,
                env=self._env(turn),
                stdin=prompt_path if invocation.prompt_on_stdin else None,
                on_stdout=sink.stdout,
                on_stderr=sink.stderr,
                options=self._options(turn),
            )
        except OSError as exc:
            turn.log.line(f"could not start {invocation.argv[0]}: {exc}")
            return ExecResult(name, False, reason=f"could not start {invocation.argv[0]}: {exc}")
        finally:
            sink.close()
        return _judge(name, resolved.agent, outcome, sink)

    def _env(self, turn: TurnContext) -> dict[str, str]:
        env = dict(self.env)
        env.update(
            # The shell's PWD is where tandem was started; opencode takes it for the
            # project directory and would run its tools there instead of in the host.
            PWD=str(self.root),
            TANDEM_ACTOR=turn.actor,
            TANDEM_ITERATION=str(turn.iteration),
            TANDEM_PROMPT=turn.prompt,
            TANDEM_STATE_FILE=str(self.state_file or ""),
            TANDEM_LOG=str(turn.log.path),
            TANDEM_PURPOSE=turn.purpose,
        )
        return env

    def _options(self, turn: TurnContext) -> proc.StreamOptions:
        def beat(elapsed: float, silent: float) -> None:
            line = (
                f"still running: {turn.actor} {turn.prompt}, {human_duration(elapsed)}, "
                f"last output {human_duration(silent)} ago"
            )
            self.console.say(line)
            turn.log.line(f"tandem: {line}")

        return proc.StreamOptions(
            timeout=self.config.timeout_secs or None,
            kill_grace=self.config.kill_grace_secs,
            heartbeat_secs=self.config.heartbeat_secs,
            on_heartbeat=beat,
            interrupt=self.interrupt,
        )


class _LineJoiner:
    """Cuts a byte stream at line ends, so a secret is never split between two chunks.

    Whole lines pass on as views of the chunk they came in (no copy unless a secret has
    to be masked); only a line that spans chunks is joined.
    """

    def __init__(self, redactor: Redactor, emit: Callable[[Chunk], None]) -> None:
        self.redactor = redactor
        self.emit = emit
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Take a chunk; pass on every line it completes."""
        start = 0
        if self._partial:
            end_of_line = data.find(b"\n")
            if end_of_line < 0:
                self._partial += data
                if len(self._partial) >= _LONG_LINE:
                    self.flush()  # a line this long goes on in pieces
                return
            self._out(self._partial + data[: end_of_line + 1])
            self._partial = b""
            start = end_of_line + 1
        end = data.rfind(b"\n", start) + 1
        if end > start:
            self._out(data, start, end)
            start = end
        if start < len(data):
            self._partial = data[start:]

    def flush(self) -> None:
        """Pass on what is left (a last line without a newline)."""
        if self._partial:
            partial, self._partial = self._partial, b""
            self._out(partial)

    def _out(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        end = len(data) if end is None else end
        if self.redactor.found(data, start, end):
            self.emit(self.redactor.data(data[start:end]))
        else:
            self.emit(memoryview(data)[start:end])


class _Sink:
    """Takes output chunks: redact, then log, show, parse and keep the answer."""

    def __init__(
        self,
        log: TurnLog,
        console: Console,
        redactor: Redactor,
        parser: Parser | None,
        purpose: str,
    ) -> None:
        self.log = log
        self.console = console
        self.parser = parser
        self.capture = purpose == "router" and parser is None
        self.captured = bytearray()
        self.overflow = False
        self._out = _LineJoiner(redactor, self._lines)
        self._err = _LineJoiner(redactor, self._errors)

    def stdout(self, data: bytes) -> None:
        """A chunk of stdout."""
        self._out.feed(data)

    def stderr(self, data: bytes) -> None:
        """A chunk of stderr."""
        self._err.feed(data)

    def _lines(self, block: Chunk) -> None:
        self.log.output(block)
        if self.capture:
            self._keep(block)
        if self.parser is None:
            self.console.agent_output(block)
            return
        for raw in bytes(block).splitlines():
            line = raw.decode("utf-8", errors="replace")
            if self.console.verbose:
                self.console.agent_line(line)
            for shown in self.parser.feed(line):
                self.console.agent_line(shown)

    def _errors(self, block: Chunk) -> None:
        self.log.output(block)
        self.console.agent_error(block)

    def _keep(self, block: Chunk) -> None:
        room = _ANSWER_CAP - len(self.captured)
        self.captured += block[:room]
        self.overflow = self.overflow or len(block) > room

    def close(self) -> None:
        """Pass on last lines without a newline; flush the log."""
        self._out.flush()
        self._err.flush()
        self.log.flush()

    def answer(self, result: AgentResult | None) -> str | None:
        """The text a router prompt answered."""
        if self.parser is not None:
            return result.text if result else None
        text = self.captured.decode("utf-8", errors="replace")
        return text + "\n(output truncated)" if self.overflow else text


def _judge(name: str, agent: Agent, outcome: proc.Outcome, sink: _Sink) -> ExecResult:
    """Exit 0 and, for structured agents, a final result that is not an error (SPEC §6.3)."""
    result = sink.parser.result() if sink.parser is not None else None
    code = outcome.returncode
    answer = sink.answer(result)

    def failed(reason: str, interrupted: bool = False) -> ExecResult:
        sink.log.line(f"tandem: {reason}")
        return ExecResult(name, False, code, reason, interrupted, answer, result)

    if outcome.ending is proc.Ending.INTERRUPTED:
        return failed("interrupted", interrupted=True)
    if outcome.ending is proc.Ending.TIMED_OUT:
        return failed(f"timed out after {human_duration(outcome.duration)}")
    if code is not None and code < 0:
        return failed(f"killed by signal {-code}")
    error = result.error if result is not None and result.is_error else None
    if code != 0:
        return failed(f"exited with {code}" + (f": {error}" if error else ""))
    if error is not None or (result is not None and result.is_error):
        return failed(f"the agent reported an error: {error or 'unknown error'}")
    if agent.structured and result is None:
        return failed("the agent's output has no final result (was the stream cut off?)")
    if outcome.leftovers:
        sink.log.line(f"tandem: ended {outcome.leftovers} process(es) the agent left running")
    return ExecResult(name, True, code, None, False, answer, result)

"""The production ``PromptExecutor``: run a prompt through the agent the caller chose.

Executables are found once, before anything is claimed or committed (``preflight``):
``<NAME>_CMD``, then the agent's program on PATH. Output goes through the ``Relay`` to the
turn log (raw, redacted) and the console (rendered for structured agents) as it arrives.
Before an agent starts, processes an earlier turn of this tree left running are ended
(SPEC §13.1 rule 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from tandem import gitenv, leftovers, proc
from tandem.agents import BUILTINS
from tandem.agents.base import Agent, CommandAgent, Parser, one_line
from tandem.agents.dispatch import Dispatch
from tandem.agents.failures import checked_reset
from tandem.agents.relay import Relay
from tandem.config import AgentConfig
from tandem.errors import AgentError, ConfigError
from tandem.execution import AgentResult, ExecResult, FailureKind, Status, TurnContext
from tandem.interrupts import Interrupt
from tandem.logs import Console
from tandem.redaction import Redactor
from tandem.state import Actor
from tandem.times import human_duration, utcnow

_VERSION_TIMEOUT = 30.0


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
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.dispatch = dispatch
        self.root = root
        self.env = dict(env)
        self.console = console
        self.redactor = redactor
        self.interrupt = interrupt
        self.state_file = state_file
        self.clock = clock
        self._resolved: dict[str, Resolved] = {}
        # Earlier runs' processes are looked for once, before this run's first agent: later
        # turns of this run cannot leave any (their whole process tree ends with them).
        self._tree_cleared = False

    def agent_for(self, actor: Actor, prompt: str) -> str:
        """See ``Dispatch.agent_for``; the caller asks once per run (``TurnContext.agent``)."""
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
        variable = name.upper().replace("-", "_") + "_CMD"
        wanted = self.env.get(variable) or agent.program()
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
        """Run ``prompt_path`` through ``turn.agent``."""
        resolved = self.resolve(turn.agent)
        try:
            prompt_text = prompt_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = f"cannot read prompt {prompt_path}: {exc}"
            turn.log.line(f"tandem: {reason}")
            return ExecResult(turn.agent, Status.FAILED, failure=reason, kind=FailureKind.AGENT)
        invocation = resolved.agent.invocation(
            resolved.executable,
            prompt_text=prompt_text,
            permissions=resolved.permissions,
            args=resolved.args,
        )
        shown = ["<prompt text>" if a == prompt_text else a for a in invocation.argv]
        turn.log.fields("agent", {"agent": turn.agent, "argv": shown, "cwd": self.root})
        self._end_earlier_turns(turn)
        relay = Relay(turn.log, self.console, self.redactor, resolved.agent.parser(), turn.purpose)
        try:
            outcome = proc.stream(
                invocation.argv,
                cwd=self.root,
                env=self._env(turn),
                stdin=prompt_path if invocation.prompt_on_stdin else None,
                on_stdout=relay.stdout,
                on_stderr=relay.stderr,
                options=self._options(turn, relay),
            )
        except OSError as exc:
            reason = f"could not start {invocation.argv[0]}: {exc}"
            turn.log.line(reason)
            return ExecResult(turn.agent, Status.FAILED, failure=reason, kind=FailureKind.AGENT)
        finally:
            relay.close()
        return _judge(resolved, outcome, relay, self.clock())

    def _end_earlier_turns(self, turn: TurnContext) -> None:
        """No two agents in one tree: end what an earlier run's turn left running."""
        if self._tree_cleared:
            return
        self._tree_cleared = True
        for line in leftovers.end_earlier_turns(
            self.root, turn.turn_id, self.config.kill_grace_secs
        ):
            self.console.warn(line)
            turn.log.line(f"tandem: {line}")

    def _env(self, turn: TurnContext) -> dict[str, str]:
        env = dict(self._agent_env)
        env.update(
            TANDEM_ACTOR=turn.actor,
            TANDEM_ITERATION=str(turn.iteration),
            TANDEM_PROMPT=turn.prompt,
            TANDEM_STATE_FILE=str(self.state_file or ""),
            TANDEM_LOG=str(turn.log.path),
            TANDEM_PURPOSE=turn.purpose,
        )
        env.update(leftovers.turn_marks(self._resolved_root, turn.turn_id))
        return env

    @cached_property
    def _agent_env(self) -> dict[str, str]:
        """What every agent of this run inherits before its turn's own variables."""
        # A run started from a git hook inherits GIT_DIR and friends, which would point the
        # agent's own git at another repository or index: drop them (gitenv.agent_env).
        env = gitenv.agent_env(self.env)
        # The shell's PWD is where tandem was started; opencode takes it for the project
        # directory and would run its tools there instead of in the host.
        env["PWD"] = str(self.root)
        return env

    @cached_property
    def _resolved_root(self) -> Path:
        """The work tree with its symlinks resolved, as the turn marks carry it (once per
        run, like the run lock: the tree an agent works in does not move during a run)."""
        return self.root.resolve()

    def _options(self, turn: TurnContext, relay: Relay) -> proc.StreamOptions:
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
            activity=lambda: relay.last_activity,
        )


def _judge(resolved: Resolved, outcome: proc.Outcome, relay: Relay, now: datetime) -> ExecResult:
    """Exit 0 and, for structured agents, a final result that is not an error (SPEC §6.3);
    else why not, and of which kind (SPEC §14.1)."""
    parser = relay.parser
    result = parser.result() if parser is not None else None
    answer = relay.answer(result)
    failure = _failure(resolved.agent, outcome, result, relay, parser)
    if failure is None:
        if outcome.leftovers:
            relay.log.line(f"tandem: ended {outcome.leftovers} process(es) the agent left running")
        return ExecResult(
            resolved.name, Status.OK, outcome.returncode, answer=answer, result=result
        )
    reason, kind = failure
    relay.log.line(f"tandem: {reason}")
    limited = result is not None and kind is FailureKind.USAGE_LIMIT
    return ExecResult(
        resolved.name,
        Status.INTERRUPTED if kind is FailureKind.INTERRUPTED else Status.FAILED,
        outcome.returncode,
        reason,
        kind,
        reset_at=checked_reset(result.reset_at, now) if limited and result else None,
        retry_after=_checked_retry(result.retry_after if result else None),
        answer=answer,
        result=result,
    )


def _failure(
    agent: Agent,
    outcome: proc.Outcome,
    result: AgentResult | None,
    relay: Relay,
    parser: Parser | None,
) -> tuple[str, FailureKind] | None:
    """(reason, kind) of a run that did not succeed; None if it did."""
    if outcome.ending is proc.Ending.INTERRUPTED:
        return "interrupted", FailureKind.INTERRUPTED
    if outcome.ending is proc.Ending.TIMED_OUT:
        api_error = parser.last_api_error() if parser is not None else None
        last = f"; last API error: {one_line(api_error)}" if api_error else ""
        return f"timed out after {human_duration(outcome.duration)}{last}", FailureKind.TIMEOUT
    code = outcome.returncode
    error = result.error if result is not None and result.is_error else None
    stderr = relay.last_error_line
    if error is not None or (result is not None and result.is_error):
        kind = (result.kind if result else None) or FailureKind.AGENT
        said = error or "unknown error"
        if code == 0:
            return f"the agent reported an error: {said}", kind
        return f"{_exit(code)}: {said}", kind
    if code != 0:
        kind = (agent.classify(stderr) if stderr else None) or FailureKind.AGENT
        return _exit(code) + (f": {stderr}" if stderr else ""), kind
    if agent.structured and result is None:
        why = f"; last stderr line: {stderr}" if stderr else " (was the stream cut off?)"
        return f"the agent's output has no final result{why}", FailureKind.AGENT
    return None


def _exit(code: int | None) -> str:
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exited with {code}"


def _checked_retry(seconds: float | None) -> float | None:
    """A retry-after that makes sense: positive, at most a day (else it is not trusted)."""
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= 86400:
        return None
    return seconds

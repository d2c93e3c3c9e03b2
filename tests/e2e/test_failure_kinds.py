"""The agent executor running the real claude and codex against the fake model server:
what a usage limit, the agent's own retries and a failed start look like (SPEC §14)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from e2e.e2e_support import CLAUDE, CODEX, Cli, Lab
from fakes.record import CLAUDE_429, CLAUDE_OAUTH, CODEX_USAGE_LIMIT, HTTP_500
from fakes.servers import FakeServer, cli_env, codex_args
from tandem.agents.dispatch import Dispatch
from tandem.agents.executor import AgentExecutor
from tandem.config import AgentConfig
from tandem.execution import ExecResult, FailureKind, Status, TurnContext
from tandem.logs import Console, TurnLog
from tandem.redaction import Redactor


def execute(
    lab: Lab, cli: Cli, server: FakeServer, env: dict[str, str | None] | None = None
) -> tuple[ExecResult, str]:
    """One run of ``cli`` through the executor; its result and what the console showed."""
    cli.require()
    full: dict[str, str] = {**cli_env(cli.api, server, lab.tmp_path), "IS_SANDBOX": "1"}
    full[f"{cli.name.upper()}_CMD"] = str(cli.binary)
    for name, value in (env or {}).items():
        full.pop(name, None)
        if value is not None:
            full[name] = value
    args = {"codex": tuple(codex_args(server))} if cli is CODEX else {}
    root = lab.tmp_path / "work"
    root.mkdir(exist_ok=True)
    redactor = Redactor(full)
    out = io.BytesIO()
    agents = AgentExecutor(
        config=AgentConfig(default=cli.name, args=args, timeout_secs=120, kill_grace_secs=2),
        dispatch=Dispatch(default=cli.name),
        root=root,
        env=full,
        console=Console(redactor, out=out, err=io.StringIO()),
        redactor=redactor,
    )
    prompt = lab.tmp_path / "prompt.md"
    prompt.write_text("Create hello.txt containing hello, then say Done.\n")
    log = TurnLog(lab.tmp_path / "turn.log", "turn.log", redactor)
    try:
        done = agents.execute(prompt, TurnContext("galph", 1, "prompt.md", log, cli.name))
    finally:
        log.close()
    return done, out.getvalue().decode()


@pytest.mark.e2e
def test_claude_subscription_limit_is_a_usage_limit_with_its_reset(lab: Lab) -> None:
    server = lab.start_server(CLAUDE.api, CLAUDE_429)
    before = time.time()
    done, shown = execute(lab, CLAUDE, server, CLAUDE_OAUTH)
    assert (done.status, done.kind) == (Status.FAILED, FailureKind.USAGE_LIMIT)
    assert done.reset_at is not None
    assert before + 3000 < done.reset_at.timestamp() < time.time() + 3700
    assert "You've hit your" in (done.failure or "")
    assert "claude: usage limit reached (five_hour)" in shown


@pytest.mark.e2e
def test_claude_with_an_api_key_gets_a_rate_limit(lab: Lab) -> None:
    done, _ = execute(lab, CLAUDE, lab.start_server(CLAUDE.api, CLAUDE_429))
    assert (done.kind, done.reset_at) == (FailureKind.RATE_LIMIT, None)


@pytest.mark.e2e
def test_claudes_own_retries_are_one_line_each_and_the_failure_is_transient(lab: Lab) -> None:
    server = lab.start_server(CLAUDE.api, HTTP_500)
    done, shown = execute(lab, CLAUDE, server, {"CLAUDE_CODE_MAX_RETRIES": "1"})
    assert done.kind is FailureKind.TRANSIENT
    retries = [line for line in shown.splitlines() if line.startswith("claude: API retry")]
    assert len(retries) == 1
    assert retries[0].startswith("claude: API retry 1/1 in ")
    assert retries[0].endswith("s (HTTP 500)")


@pytest.mark.e2e
def test_codex_usage_limit_has_its_reset_time(lab: Lab) -> None:
    done, _ = execute(lab, CODEX, lab.start_server(CODEX.api, CODEX_USAGE_LIMIT))
    assert done.kind is FailureKind.USAGE_LIMIT
    assert done.reset_at is not None
    assert 0 < done.reset_at.timestamp() - time.time() <= 86400


@pytest.mark.e2e
def test_codex_failing_at_start_up_says_why(lab: Lab) -> None:
    server = lab.start_server(CODEX.api, HTTP_500)
    missing = str(Path(lab.tmp_path) / "no-such-codex-home")
    done, _ = execute(lab, CODEX, server, {"CODEX_HOME": missing})
    assert done.kind is FailureKind.AGENT
    assert done.failure is not None
    assert done.failure != "exited with 1"
    assert done.failure.startswith("exited with 1: Error finding codex home: CODEX_HOME points")

"""How each built-in agent is started, and what keeps claude from starting as root."""

from __future__ import annotations

import pytest

from tandem.agents import BUILTINS
from tandem.agents.claude import ClaudeAgent

PROMPT = "Fix the bug.\nThen say 'done' $HOME `x`"


def argv(
    name: str, permissions: tuple[str, ...] | None = None, args: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The argv of built-in ``name`` (default permissions unless given)."""
    agent = BUILTINS[name]
    chosen = agent.default_permissions if permissions is None else permissions
    invocation = agent.invocation(f"/opt/{name}", prompt_text=PROMPT, permissions=chosen, args=args)
    return invocation.argv


def test_claude_reads_the_prompt_from_stdin() -> None:
    invocation = BUILTINS["claude"].invocation(
        "/opt/claude", prompt_text=PROMPT, permissions=("--x",), args=("--model", "m")
    )
    assert invocation.prompt_on_stdin
    assert invocation.argv == (
        "/opt/claude", "-p", "--output-format", "stream-json", "--verbose", "--x", "--model", "m",
    )  # fmt: skip


def test_claude_default_permissions_skip_prompts() -> None:
    assert argv("claude")[-1] == "--dangerously-skip-permissions"


def test_claude_permissions_are_replaced_not_added() -> None:
    chosen = ("--permission-mode", "acceptEdits", "--allowedTools", "Bash Edit Write")
    assert argv("claude", chosen)[5:] == chosen


def test_codex_reads_stdin_through_a_trailing_dash() -> None:
    invocation = BUILTINS["codex"].invocation(
        "/opt/codex",
        prompt_text=PROMPT,
        permissions=("--sandbox", "workspace-write"),
        args=("-m", "o3"),
    )
    assert invocation.prompt_on_stdin
    assert invocation.argv == (
        "/opt/codex", "exec", "--json", "--sandbox", "workspace-write", "-m", "o3", "-",
    )  # fmt: skip
    assert "--dangerously-bypass-approvals-and-sandbox" in argv("codex")


def test_gemini_takes_the_prompt_as_one_argument_after_p() -> None:
    invocation = BUILTINS["gemini"].invocation(
        "/opt/gemini", prompt_text=PROMPT, permissions=("--yolo",), args=("-m", "pro")
    )
    assert not invocation.prompt_on_stdin
    assert invocation.argv == (
        "/opt/gemini", "--output-format", "stream-json", "--yolo", "-m", "pro", "-p", PROMPT,
    )  # fmt: skip
    assert argv("gemini")[3:5] == ("--yolo", "--skip-trust")


def test_opencode_takes_the_prompt_as_the_last_argument() -> None:
    invocation = BUILTINS["opencode"].invocation(
        "/opt/opencode", prompt_text=PROMPT, permissions=(), args=("-m", "fake/model")
    )
    assert not invocation.prompt_on_stdin
    assert invocation.argv == (
        "/opt/opencode",
        "run",
        "--format",
        "json",
        "-m",
        "fake/model",
        PROMPT,
    )


@pytest.mark.parametrize("name", ["claude", "codex", "gemini", "opencode"])
def test_structured_agents_get_a_fresh_parser_each_run(name: str) -> None:
    agent = BUILTINS[name]
    assert agent.structured
    first, second = agent.parser(), agent.parser()
    assert first is not None
    assert first is not second


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make claude's check see uid 0, whoever runs the tests."""
    monkeypatch.setattr("tandem.agents.claude.os.geteuid", lambda: 0)


@pytest.mark.usefixtures("as_root")
def test_claude_as_root_without_sandbox_is_refused_with_a_fix() -> None:
    problem = ClaudeAgent().setup_problem({}, ("--dangerously-skip-permissions",))
    assert problem is not None
    assert "IS_SANDBOX=1" in problem
    assert "acceptEdits" in problem


@pytest.mark.usefixtures("as_root")
def test_claude_as_root_bypass_mode_is_refused_too() -> None:
    permissions = ("--permission-mode", "bypassPermissions")
    assert ClaudeAgent().setup_problem({"IS_SANDBOX": "0"}, permissions) is not None


@pytest.mark.usefixtures("as_root")
def test_claude_as_root_in_a_declared_sandbox_is_fine() -> None:
    assert (
        ClaudeAgent().setup_problem({"IS_SANDBOX": "1"}, ("--dangerously-skip-permissions",))
        is None
    )


@pytest.mark.usefixtures("as_root")
def test_claude_as_root_with_accept_edits_is_fine() -> None:
    permissions = ("--permission-mode", "acceptEdits", "--allowedTools", "Bash")
    assert ClaudeAgent().setup_problem({}, permissions) is None


def test_claude_as_another_user_may_skip_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tandem.agents.claude.os.geteuid", lambda: 1000)
    assert ClaudeAgent().setup_problem({}, ("--dangerously-skip-permissions",)) is None


@pytest.mark.parametrize("name", ["codex", "gemini", "opencode"])
def test_other_agents_know_no_setup_problem(name: str) -> None:
    agent = BUILTINS[name]
    assert agent.setup_problem({}, agent.default_permissions) is None


@pytest.mark.usefixtures("as_root")
def test_claude_as_root_says_when_is_sandbox_has_a_value_claude_ignores() -> None:
    problem = ClaudeAgent().setup_problem(
        {"IS_SANDBOX": "yes"}, ("--dangerously-skip-permissions",)
    )
    assert problem is not None
    assert "(IS_SANDBOX is 'yes'; claude accepts only 1)" in problem

"""Which agent runs a prompt (SPEC §6.2), and which agents the preflight checks."""

from __future__ import annotations

from collections.abc import Mapping

from tandem.agents.dispatch import Dispatch
from tandem.config import AgentConfig
from tandem.state import Actor


def dispatch(
    roles: Mapping[Actor, str] | None = None, prompts: Mapping[str, str] | None = None
) -> Dispatch:
    yaml = AgentConfig(
        default="claude",
        roles={"galph": "codex"},
        prompts={"reviewer": "gemini"},  # keys are normalized like prompt names
    )
    return Dispatch.build(yaml, roles, prompts)


def test_precedence_from_cli_prompt_map_down_to_the_default() -> None:
    plain = dispatch()
    assert plain.agent_for("ralph", "main.md") == "claude"  # default
    assert plain.agent_for("galph", "supervisor.md") == "codex"  # YAML role
    assert plain.agent_for("galph", "reviewer.md") == "gemini"  # YAML prompt beats YAML role
    cli_role = dispatch(roles={"galph": "opencode"})
    assert cli_role.agent_for("galph", "reviewer.md") == "opencode"  # CLI role beats YAML prompt
    cli_prompt = dispatch(roles={"galph": "opencode"}, prompts={"reviewer.md": "mine"})
    assert cli_prompt.agent_for("galph", "reviewer") == "mine"  # CLI prompt beats all


def test_reachable_lists_only_agents_a_turn_could_use() -> None:
    assert dispatch().reachable() == ["gemini", "codex", "claude"]
    both_roles = dispatch(roles={"galph": "opencode", "ralph": "codex"})
    assert both_roles.reachable() == ["opencode", "codex"]  # YAML prompts and default unused

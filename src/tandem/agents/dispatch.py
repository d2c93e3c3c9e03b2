"""Which agent runs a prompt (SPEC §6.2): worked out once per run, by the caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tandem.config import AgentConfig
from tandem.router import normalize
from tandem.state import ACTORS, Actor


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

"""Agent CLIs, registered by name (SPEC §6.1)."""

from __future__ import annotations

from tandem.agents.base import Agent, CommandAgent, Invocation, Parser
from tandem.agents.claude import ClaudeAgent
from tandem.agents.codex import CodexAgent
from tandem.agents.dryrun import DryRunAgent
from tandem.agents.gemini import GeminiAgent
from tandem.agents.opencode import OpencodeAgent

BUILTINS: dict[str, Agent] = {
    agent.name: agent
    for agent in (ClaudeAgent(), CodexAgent(), GeminiAgent(), OpencodeAgent(), DryRunAgent())
}

__all__ = ["BUILTINS", "Agent", "CommandAgent", "Invocation", "Parser"]

"""``dry-run``: the bundled offline agent (the program itself is ``tandem.dryrun``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tandem.agents.base import AgentKind, Invocation


@dataclass(frozen=True)
class DryRunAgent(AgentKind):
    """The ``dry-run`` built-in: this module, run by the current Python."""

    name: str = "dry-run"

    def program(self) -> str:
        """The Python that runs tandem itself."""
        return sys.executable

    def invocation(
        self,
        executable: str,
        *,
        prompt_text: str,
        permissions: tuple[str, ...],
        args: tuple[str, ...],
    ) -> Invocation:
        """``<python> -m tandem.dryrun``, prompt on stdin."""
        return Invocation((executable, "-m", "tandem.dryrun", *args), True)

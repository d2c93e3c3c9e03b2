"""``dry-run``: the bundled offline agent (the program itself is ``tandem.dryrun``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tandem.agents.base import Invocation, Parser


@dataclass(frozen=True)
class DryRunAgent:
    """The ``dry-run`` built-in: this module, run by the current Python."""

    name: str = "dry-run"
    structured: bool = False
    default_permissions: tuple[str, ...] = ()

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

    def parser(self) -> Parser | None:
        """Plain text."""
        return None

    def setup_problem(self, env: Mapping[str, str], permissions: tuple[str, ...]) -> str | None:
        """Always runs."""
        return None

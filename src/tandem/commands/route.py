"""``tandem route``: the deterministic decision for the current state (SPEC §4.6)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tandem.checks import actor_name
from tandem.commands.common import quiet_host
from tandem.errors import UsageError
from tandem.router import RouterContext, decide


def route(
    *,
    cwd: Path,
    actor: str | None,
    explain: bool,
    as_json: bool,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Print the prompt the next turn would run, without running anything."""
    host = quiet_host(cwd, config_path, overrides, use_git=False)
    state = host.read_state()
    try:
        who = actor_name(actor) if actor else state.expected_actor
    except ValueError as exc:
        raise UsageError(str(exc), "use --actor galph or --actor ralph") from None
    ctx = RouterContext.from_config(host.config)
    decision = decide(who, state, ctx)
    note = None
    if ctx.uses_router_prompt(who):
        note = f"the router prompt {ctx.router_prompt} may change this on the turn ({ctx.mode})"
    steps = ctx.workflow
    where = {"workflow": steps.name, "step": steps.where(state), "next": steps.upcoming(state, 3)}
    if as_json:
        print(json.dumps({**decision.to_json(), "router_prompt_note": note, **where}, indent=2))
        return 0
    print(decision.prompt)
    if explain:
        print(f"{who}, iteration {decision.iteration}, {decision.source}: {decision.reason}")
        if note:
            print(note)
        print(where["step"])
        print("then: " + "; ".join(where["next"]))
    return 0

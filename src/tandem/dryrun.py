"""The ``dry-run`` agent: offline, free, for trying prompts, routing and config.

It runs as a real child process (``python -m tandem.dryrun``) like any agent: it prints
what it was given (actor, iteration, prompt, the prompt's first lines) and makes a small
visible change, so a loop with it shows every step tandem takes, with commits, but spends
nothing. galph writes ``input.md`` (instructions for ralph); ralph appends a line to
``dry-run-work.md``.

Environment knobs: ``TANDEM_DRY_RUN_ROUTE`` is its answer when it runs the router prompt
(unset: no answer); ``TANDEM_DRY_RUN_EXIT`` makes it exit with that code (to try failures).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

_SHOWN_LINES = 12


def main(env: Mapping[str, str] = os.environ) -> int:
    """Show the prompt, make the change, exit as asked."""
    if "--version" in sys.argv[1:]:
        print("tandem dry-run agent")
        return 0
    prompt = sys.stdin.read()
    actor = env.get("TANDEM_ACTOR", "?")
    iteration = env.get("TANDEM_ITERATION", "?")
    name = env.get("TANDEM_PROMPT", "?")
    lines = prompt.splitlines()
    if env.get("TANDEM_PURPOSE") == "router":
        print(env.get("TANDEM_DRY_RUN_ROUTE", ""))
        return _exit_code(env)
    print(f"dry-run agent: {actor}, iteration {iteration}, prompt {name} ({len(lines)} lines)")
    for line in lines[:_SHOWN_LINES]:
        print(f"  | {line}")
    if len(lines) > _SHOWN_LINES:
        print(f"  | ... {len(lines) - _SHOWN_LINES} more lines")
    changed = _change(actor, iteration, name)
    print(f"dry-run agent: wrote {changed}")
    return _exit_code(env)


def _change(actor: str, iteration: str, prompt: str) -> str:
    if actor == "galph":
        Path("input.md").write_text(
            f"# Instructions for iteration {iteration}\n\n"
            f"(dry run) galph ran {prompt}; ralph, please take the next step.\n"
        )
        return "input.md"
    with Path("dry-run-work.md").open("a") as handle:
        handle.write(f"- iteration {iteration}: {actor} ran {prompt} (dry run)\n")
    return "dry-run-work.md"


def _exit_code(env: Mapping[str, str]) -> int:
    wanted = env.get("TANDEM_DRY_RUN_EXIT", "0")
    if not wanted.isdigit():
        print(f"dry-run agent: TANDEM_DRY_RUN_EXIT must be a number, not {wanted!r}")
        return 2
    return int(wanted)


if __name__ == "__main__":
    raise SystemExit(main())

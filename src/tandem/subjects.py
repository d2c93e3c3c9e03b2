"""The subjects of tandem's commits (SPEC §7.3, §8.2): each formatter beside the parser.

Other machines and restarts read a turn's progress back from these subjects (a claim that
was pushed, a stamp made), so the grammar is written once, here, with its parser next to
the functions that write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tandem.state import Actor, State

_SUBJECT = re.compile(
    r"^\[SYNC i=(?P<iteration>\d+)\] actor=(?P<actor>galph|ralph)"
    r"(?: → next=(?:galph|ralph))? status=(?P<status>ok(?= |$)|fail(?= |$)|paused(?= |$)"
    r"|running$)"
)


@dataclass(frozen=True)
class Subject:
    """A turn commit's subject, parsed."""

    iteration: int
    actor: Actor
    status: str  # "running" (a claim), "ok", "fail" or "paused" (a stamp)


def turn_subject(actor: Actor, ok: bool, after: State, prompt: str | None) -> str:
    """The subject of a turn's stamp: ``[SYNC i=N] actor=A → next=B status=ok prompt=P``."""
    shown = f" prompt={prompt}" if prompt else ""
    if after.status == "paused" and after.pause is not None:
        return (
            f"[SYNC i={after.iteration}] actor={actor} status=paused{shown} kind={after.pause.kind}"
        )
    if not ok:
        return f"[SYNC i={after.iteration}] actor={actor} status=fail{shown}"
    sha = getattr(after, f"{actor}_commit")
    commit = f" {actor}_commit={sha}" if sha else ""
    return (
        f"[SYNC i={after.iteration}] actor={actor} → next={after.expected_actor} "
        f"status=ok{shown}{commit}"
    )


def claim_subject(running: State) -> str:
    """The subject of a sync claim commit (it holds only the state file)."""
    return f"[SYNC i={running.iteration}] actor={running.expected_actor} status=running"


def stop_subject(iteration: int, reason: str, *, requested: bool) -> str:
    """The subject of a stop request (``requested``) or of the commit that honours one."""
    return f"[SYNC i={iteration}] stop{' requested' if requested else ''}: {reason}"


def start_subject(iteration: int, step: str) -> str:
    """The subject of ``--start-prompt``/``--start-step``: ``[SYNC i=N] start at step 3 of
    4 (galph review.md)``."""
    return f"[SYNC i={iteration}] start at {step}"


INIT_SUBJECT = "[SYNC init] actor=galph status=idle"


def parse_subject(text: str) -> Subject | None:
    """The parts of a turn subject made by ``turn_subject``/``claim_subject``, else None."""
    found = _SUBJECT.match(text)
    if found is None:
        return None
    actor: Actor = "galph" if found["actor"] == "galph" else "ralph"
    return Subject(int(found["iteration"]), actor, found["status"])

"""A synthetic loop history with receipts, built in one ``git fast-import`` (fast at 10,000)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tandem.receipts import Receipt, Tokens, trailers

START = 1_790_000_000  # committer time of the first turn (Unix seconds)


def receipt(n: int) -> Receipt:
    """The receipt of turn ``n`` (0-based): galph then ralph, every 7th fails, every 13th
    pauses; claude reports cost, codex (ralph's every 3rd iteration) does not."""
    actor = "galph" if n % 2 == 0 else "ralph"
    iteration = n // 2 + 1
    agent = "codex" if actor == "ralph" and iteration % 3 == 0 else "claude"
    result = "fail:agent" if n % 7 == 6 else "pause:usage_limit" if n % 13 == 12 else "ok"
    return Receipt(
        actor=actor,
        iteration=iteration,
        result=result,
        prompt="supervisor.md" if actor == "galph" else "main.md",
        route="deterministic",
        agent=agent,
        agent_version="2.1.330" if agent == "claude" else "0.128.0",
        duration=30.0 + n % 11,
        cost_usd=None if agent == "codex" else 0.01 * (1 + n % 5),
        tokens=Tokens(1000 + n % 100, 200 + n % 50, 500),
        log=f"logs/main/{actor}/iter-{iteration:05d}_20260101T000000Z_x.log",
        reason="exited with 2" if result != "ok" else None,
    )


def _stream(turns: int, start: int) -> Iterator[bytes]:
    for n in range(turns):
        r = receipt(n)
        after = {"iteration": r.iteration + 1, "expected_actor": "galph", "status": "complete"}
        if r.actor == "galph":
            after = {"iteration": r.iteration, "expected_actor": "ralph", "status": "waiting-ralph"}
        after["last_update"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 45 * n))
        state = json.dumps(after) + "\n"
        subject = f"[SYNC i={r.iteration}] actor={r.actor} status={r.outcome}"
        message = (subject + "\n\n" + "\n".join(trailers(r)) + "\n").encode()
        stamp = start + 45 * n
        yield b"commit refs/heads/main\n"
        yield f"committer tandem <t@example.invalid> {stamp} +0000\n".encode()
        yield b"data %d\n%s\n" % (len(message), message)
        yield b"M 100644 inline sync/state.json\n"
        yield b"data %d\n%s\n" % (len(state), state.encode())


def build(root: Path, turns: int, start: int = START) -> None:
    """A new repo at ``root`` whose main branch holds ``turns`` turn commits with receipts."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], cwd=root, check=True)
    data = b"".join(_stream(turns, start))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=data, check=True)
    subprocess.run(["git", "checkout", "--quiet", "--force", "main"], cwd=root, check=True)

"""How quickly two machines hand the turn over through git, and what waiting costs.

A bare remote and two clones; ``tandem supervisor --sync-via-git`` and ``tandem loop
--sync-via-git`` run at the same time with an agent that exits at once and the DEFAULT
wait settings. From their event logs: the handoff latency (one side's finish push to the
other side's claim push), median and p95, and the run's time per iteration. Then the
CPU that a waiting actor uses while the other side's agent works for 20 s.

    python bench/sync_handoff.py [--iterations 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

CONFIG = "agent:\n  default: quick\n  commands:\n    quick: {agent}\n  heartbeat_secs: 0\n"
IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")


def git(cwd: Path, *args: str) -> None:
    """Run git quietly."""
    subprocess.run(
        ["git", *IDENTITY, *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def setup(tmp: Path, agent: list[str]) -> tuple[Path, Path]:
    """A bare remote with a host repo on main, and clones for galph and ralph."""
    seed = tmp / "seed"
    seed.mkdir(parents=True)
    (seed / "prompts").mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (seed / "prompts" / name).write_text(f"# {name}\n")
    (seed / "orchestration.yaml").write_text(CONFIG.format(agent=json.dumps(agent)))
    (seed / ".gitignore").write_text("logs/\n")
    git(seed, "init", "--quiet", "--initial-branch=main")
    git(seed, "add", "--all")
    git(seed, "commit", "--quiet", "-m", "host")
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", "remote.git")
    git(seed, "push", "--quiet", str(tmp / "remote.git"), "main")
    for name in ("galph", "ralph"):
        git(tmp, "clone", "--quiet", str(tmp / "remote.git"), name)
        git(tmp / name, "config", "user.name", name)
        git(tmp / name, "config", "user.email", f"{name}@localhost")
    return tmp / "galph", tmp / "ralph"


def start(root: Path, command: str, iterations: int) -> subprocess.Popen[bytes]:
    """``tandem <command> --sync-via-git`` with default wait settings."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tandem",
            command,
            "--sync-via-git",
            "--quiet",
            "--iterations",
            str(iterations),
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def events(root: Path) -> list[dict[str, Any]]:
    """The clone's event log."""
    path = root / "logs" / "main" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def moment(event: dict[str, Any]) -> float:
    """An event's time in seconds."""
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


def handoffs(galph: Path, ralph: Path) -> list[float]:
    """Seconds from each turn's published stamp to the other side's published claim."""
    merged = sorted(
        [
            (moment(e), name, e)
            for name, root in (("galph", galph), ("ralph", ralph))
            for e in events(root)
            if e["event"] in ("push", "claim")
        ],
        key=lambda item: item[0],
    )
    latencies = []
    pending: tuple[float, str] | None = None
    for at, name, event in merged:
        if event["event"] == "push" and event.get("what") == "the turn":
            pending = (at, name)
        elif event["event"] == "claim" and pending and pending[1] != name:
            latencies.append(at - pending[0])
            pending = None
    return latencies


def wait_cpu(tmp: Path, seconds: float) -> float:
    """Percent of one core that ralph uses while waiting out galph's ``seconds`` turn."""
    galph, ralph = setup(tmp, ["python3", "-c", f"import time; time.sleep({seconds})"])
    g = start(galph, "supervisor", 1)
    time.sleep(1.0)  # galph has claimed its turn by now
    r = start(ralph, "loop", 1)
    watched = psutil.Process(r.pid)
    time.sleep(1.0)  # ralph's start-up is not waiting
    before = watched.cpu_times()
    started = time.monotonic()
    while g.poll() is None:
        time.sleep(0.2)
        after = watched.cpu_times()
        span = time.monotonic() - started
    used = sum(after) - sum(before)  # user, system, and of the git commands it ran
    for proc in (g, r):
        proc.wait(timeout=60)
    return 100 * used / span


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tandem-handoff-") as tmp:
        galph, ralph = setup(Path(tmp) / "run", ["true"])
        started = time.monotonic()
        procs = [start(galph, "supervisor", args.iterations), start(ralph, "loop", args.iterations)]
        for proc in procs:
            if proc.wait(timeout=600) != 0:
                assert proc.stderr is not None
                raise SystemExit(proc.stderr.read().decode())
        elapsed = time.monotonic() - started
        latencies = sorted(handoffs(galph, ralph))
        cpu = wait_cpu(Path(tmp) / "wait", 20.0)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(f"iterations:                {args.iterations} (default wait settings)")
    print(f"handoffs measured:         {len(latencies)}")
    print(f"handoff latency median:    {statistics.median(latencies):6.3f} s   (target <= 0.5 s)")
    print(f"handoff latency p95:       {p95:6.3f} s   (target <= 1.5 s)")
    print(f"whole run per iteration:   {elapsed / args.iterations:6.3f} s")
    print(f"waiting actor CPU:         {cpu:6.2f} % of one core   (target < 2 %)")


if __name__ == "__main__":
    main()

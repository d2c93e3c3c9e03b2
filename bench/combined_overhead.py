"""Combined mode's cost per iteration, next to the bare git commands an iteration needs.

An iteration is two turns (galph, ralph), each with an agent that exits at once. Two
baselines are measured in the same run, interleaved with tandem's rounds, on an identical
repo: A, two ``git commit`` calls of the state file; B, the same plus the ``git status``
that each turn needs to see what the agent changed. Also times ``tandem --help``, and
prints the CPU both sides spend (their own process, and the processes they start): on a
machine whose disk latency varies, that figure moves less than the wall-clock ratio.

    python bench/combined_overhead.py [--iterations 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tandem.commands.run import RunOptions, run

CONFIG = "agent:\n  default: instant\n  commands:\n    instant: ['true']\n  heartbeat_secs: 0\n"


def make_repo(root: Path) -> None:
    """A host repo with prompts, the instant agent, a state file, and one commit."""
    root.mkdir()
    (root / "prompts").mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (root / "prompts" / name).write_text(f"# {name}\n")
    (root / "orchestration.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text("logs/\n")
    (root / "sync").mkdir()
    (root / "sync" / "state.json").write_text(
        '{"iteration": 1, "expected_actor": "galph", "status": "idle"}\n'
    )
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(
        root,
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
        "commit",
        "--quiet",
        "-m",
        "host",
    )


def git(root: Path, *args: str) -> None:
    """Run git quietly."""
    subprocess.run(["git", *args], cwd=root, check=True, stdout=subprocess.DEVNULL)


@dataclass
class Cpu:
    """CPU seconds per iteration: this process's own, and its children's (git, agents)."""

    own: list[float] = field(default_factory=list)
    children: list[float] = field(default_factory=list)

    @contextlib.contextmanager
    def counting(self, iterations: int) -> Iterator[None]:
        before = os.times()
        yield
        after = os.times()
        self.own.append((after.user + after.system - before.user - before.system) / iterations)
        spent = after.children_user + after.children_system
        self.children.append((spent - before.children_user - before.children_system) / iterations)


def tandem_per_iteration(root: Path, iterations: int) -> float:
    """Seconds per iteration of ``tandem run`` (in this process, console to /dev/null)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(devnull, 1)
    try:
        started = time.perf_counter()
        code = run(cwd=root, options=RunOptions(iterations=iterations, quiet=True))
        elapsed = time.perf_counter() - started
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
    if code != 0:
        raise SystemExit(f"tandem run exited with {code}")
    return elapsed / iterations


def baseline_per_iteration(root: Path, iterations: int, *, status: bool = False) -> float:
    """Seconds per iteration of the bare minimum: write the state, commit it, twice.

    With ``status``, each turn also asks ``git status`` what changed, as any tool must
    before it can commit an agent's work.
    """
    state = root / "sync" / "state.json"
    started = time.perf_counter()
    for i in range(iterations):
        for actor in ("galph", "ralph"):
            state.write_text(f'{{"iteration": {i}, "actor": "{actor}"}}\n')
            if status:
                git(root, "status", "--porcelain", "-z", "--untracked-files=all")
            git(root, "commit", "--quiet", "-m", f"{actor} {i}", "--", "sync/state.json")
    return (time.perf_counter() - started) / iterations


def help_time(runs: int) -> float:
    """Median seconds of ``python -m tandem --help``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tandem", "--help"], check=True, stdout=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def python_startup(runs: int) -> float:
    """Median seconds of a bare ``python -c pass`` (the floor under --help)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=50, help="per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ours, commits, with_status = [], [], []
    our_cpu, base_cpu = Cpu(), Cpu()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        base_repo, tandem_repo = Path(tmp) / "baseline", Path(tmp) / "tandem"
        make_repo(base_repo)
        make_repo(tandem_repo)
        baseline_per_iteration(base_repo, 10)  # warm the page cache
        for _ in range(args.rounds):  # interleaved, so all three see the same machine
            commits.append(baseline_per_iteration(base_repo, args.iterations))
            with base_cpu.counting(args.iterations):
                with_status.append(baseline_per_iteration(base_repo, args.iterations, status=True))
            with our_cpu.counting(args.iterations):
                ours.append(tandem_per_iteration(tandem_repo, args.iterations))
    mine = statistics.median(ours)
    base, base_status = statistics.median(commits), statistics.median(with_status)
    startup = help_time(15)
    floor = python_startup(15)
    print(f"iterations:                        {args.rounds} rounds x {args.iterations} (medians)")
    print(f"tandem combined, per iteration:    {mine * 1000:7.1f} ms (two turns, two commits)")
    print(
        f"baseline A, 2 x git commit:        {base * 1000:7.1f} ms  -> tandem is {mine / base:.2f}x"
    )
    print(
        f"baseline B, 2 x (status + commit): {base_status * 1000:7.1f} ms  -> tandem is "
        f"{mine / base_status:.2f}x"
    )
    print("target:                            <= 1.5x baseline B (issue 8)")
    median = statistics.median
    print(
        f"CPU per iteration, tandem:          {median(our_cpu.own) * 1000:7.1f} ms own "
        f"+ {median(our_cpu.children) * 1000:.1f} ms git and agent processes"
    )
    print(
        f"CPU per iteration, baseline B:      {median(base_cpu.own) * 1000:7.1f} ms own "
        f"+ {median(base_cpu.children) * 1000:.1f} ms git processes"
    )
    print(
        f"tandem --help:                     {startup * 1000:7.1f} ms (python -c pass: "
        f"{floor * 1000:.1f} ms; target < 150 ms)"
    )


if __name__ == "__main__":
    main()

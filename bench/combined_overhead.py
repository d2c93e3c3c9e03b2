"""Combined mode's cost per iteration, next to the bare git commands an iteration needs.

An iteration is two turns (galph, ralph), each with an agent that exits at once. The
baseline, measured in the same run on an identical repo, is the minimum any tool needs:
two ``git commit`` calls of the state file. Also times ``tandem --help`` (startup).

    python bench/combined_overhead.py [--iterations 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tandem.commands.run import RunOptions, run

CONFIG = "agent:\n  default: instant\n  commands:\n    instant: ['true']\n  heartbeat_secs: 0\n"


def make_repo(root: Path) -> None:
    """A host repo with prompts, the instant agent, and one commit."""
    root.mkdir()
    (root / "prompts").mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (root / "prompts" / name).write_text(f"# {name}\n")
    (root / "orchestration.yaml").write_text(CONFIG)
    (root / ".gitignore").write_text("logs/\n")
    (root / "sync").mkdir()
    (root / "sync" / "state.json").write_text("{}\n")
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


def tandem_per_iteration(root: Path, iterations: int) -> float:
    """Seconds per iteration of ``tandem run`` (in this process, console to /dev/null)."""
    (root / "sync" / "state.json").unlink()
    git(root, "commit", "--quiet", "-am", "fresh state")
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


def baseline_per_iteration(root: Path, iterations: int) -> float:
    """Seconds per iteration of the bare minimum: write the state, commit it, twice."""
    state = root / "sync" / "state.json"
    started = time.perf_counter()
    for i in range(iterations):
        for actor in ("galph", "ralph"):
            state.write_text(f'{{"iteration": {i}, "actor": "{actor}"}}\n')
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
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        base_repo, tandem_repo = Path(tmp) / "baseline", Path(tmp) / "tandem"
        make_repo(base_repo)
        make_repo(tandem_repo)
        baseline_per_iteration(base_repo, 10)  # warm the page cache
        baseline = baseline_per_iteration(base_repo, args.iterations)
        ours = tandem_per_iteration(tandem_repo, args.iterations)
    startup = help_time(15)
    floor = python_startup(15)
    print(f"iterations:                    {args.iterations}")
    print(f"tandem combined, per iteration: {ours * 1000:7.1f} ms (two turns, two commits)")
    print(f"baseline (2 git commits):       {baseline * 1000:7.1f} ms")
    print(f"ratio tandem / baseline:        {ours / baseline:7.2f}x   (target <= 2.0x, < 40 ms)")
    print(
        f"tandem --help:                  {startup * 1000:7.1f} ms (python -c pass: "
        f"{floor * 1000:.1f} ms; target < 150 ms)"
    )


if __name__ == "__main__":
    main()

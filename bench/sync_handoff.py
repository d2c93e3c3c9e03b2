"""How quickly two machines hand the turn over through git, and what waiting costs.

A bare remote and two clones; ``tandem supervisor --sync-via-git`` and ``tandem loop
--sync-via-git`` run at the same time with an agent that exits at once and the DEFAULT
wait settings. From their event logs: the handoff latency (one side's finish push to the
other side's claim push), median and p95, and the run's time per iteration. Then the
CPU that a waiting actor uses while the other side's agent works for 20 s.

With ``--faults``, the same clones reach the remote through a ``git daemon`` behind the
test rig's TCP proxy (``tests/netrig.py``), and it measures instead: the handoff median
and p95 with 100 ms added each way; the time from healing a cut to the waiting side's
claim (target < 2 x poll interval); and the time from killing the owner's machine to the
other side's ``tandem status`` showing it silent (target <= renewal interval + one poll).

    python bench/sync_handoff.py [--iterations 20] [--faults]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from netrig import GitDaemon, Proxy, network_env

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


def setup(tmp: Path, agent: list[str], extra: str = "") -> tuple[Path, Path]:
    """A bare remote with a host repo on main, and clones for galph and ralph
    (``extra`` is appended to the config)."""
    seed = tmp / "seed"
    seed.mkdir(parents=True)
    (seed / "prompts").mkdir()
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (seed / "prompts" / name).write_text(f"# {name}\n")
    (seed / "orchestration.yaml").write_text(CONFIG.format(agent=json.dumps(agent)) + extra)
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


def start(
    root: Path, command: str, iterations: int, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``tandem <command> --sync-via-git`` with default wait settings (and ``flags``)."""
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
            *flags,
        ],
        cwd=root,
        env=env,
        start_new_session=True,
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


def finish(procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait for each run; a failed one ends the benchmark with its output."""
    for proc in procs:
        if proc.wait(timeout=600) != 0:
            assert proc.stderr is not None
            raise SystemExit(proc.stderr.read().decode())


def served(tmp: Path, clones: list[Path]) -> tuple[GitDaemon, Proxy]:
    """Serve ``remote.git`` through a proxy and point ``clones`` at the proxy."""
    daemon = GitDaemon(tmp).__enter__()
    proxy = Proxy(daemon.port).__enter__()
    for clone in clones:
        git(clone, "remote", "set-url", "origin", proxy.url(daemon.url("remote.git")))
    return daemon, proxy


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def delayed_handoffs(tmp: Path, iterations: int) -> list[float]:
    """Handoffs with 100 ms added each way between both clones and the remote."""
    galph, ralph = setup(tmp, ["true"])
    daemon, proxy = served(tmp, [galph, ralph])
    proxy.delay(100)
    env = network_env(dict(os.environ))
    try:
        finish(
            [start(r, c, iterations, env=env) for r, c in ((galph, "supervisor"), (ralph, "loop"))]
        )
    finally:
        proxy.stop()
        daemon.stop()
    return handoffs(galph, ralph)


FAULTS = (
    "sync:\n  poll_interval: 2\n  lease_secs: 6\n  lease_renew_secs: 2\n  git_timeout_secs: 2\n"
)


def healed_cut(tmp: Path) -> float:
    """Seconds from healing ralph's cut to ralph's claim of the turn galph passed meanwhile."""
    galph, ralph = setup(tmp, ["true"], FAULTS)
    daemon, proxy = served(tmp, [ralph])
    env = network_env(dict(os.environ))
    try:
        waiting = start(ralph, "loop", 1, env=env)
        time.sleep(2.0)  # ralph waits for galph's turn
        proxy.blackhole()
        finish([start(galph, "supervisor", 1)])  # over the file remote: ralph cannot see it
        time.sleep(3.0)
        healed = time.time()
        proxy.heal()
        finish([waiting])
    finally:
        proxy.stop()
        daemon.stop()
    claim = next(e for e in events(ralph) if e["event"] == "claim")
    return moment(claim) - healed


def death_to_silent(tmp: Path) -> float:
    """Seconds from SIGKILL of the owner's tree to the other side's status showing it silent."""
    galph, ralph = setup(tmp, ["python3", "-c", "import time; time.sleep(120)"], FAULTS)
    finish([start(galph, "supervisor", 1)])
    owner = start(ralph, "loop", 1)
    time.sleep(5.0)  # claimed, agent running, renewals under way
    os.killpg(owner.pid, signal.SIGKILL)  # the agent dies with it (parent-death signal)
    owner.wait()
    died = time.monotonic()
    while True:
        shown = subprocess.run(
            [sys.executable, "-m", "tandem", "status"],
            cwd=galph,
            capture_output=True,
            text=True,
            check=False,
        )
        if "owner silent for" in shown.stdout:
            return time.monotonic() - died
        if time.monotonic() - died > 60:
            raise SystemExit("the dead owner never showed as silent:\n" + shown.stdout)
        time.sleep(0.2)


def faults(tmp: Path, iterations: int) -> None:
    """The ``--faults`` figures."""
    latencies = delayed_handoffs(tmp / "delay", iterations)
    healed = healed_cut(tmp / "cut")
    silent = death_to_silent(tmp / "death")
    print(f"iterations:                 {iterations} (100 ms added each way by the proxy)")
    print(f"handoff latency median:     {statistics.median(latencies):6.3f} s")
    print(f"handoff latency p95:        {p95(latencies):6.3f} s")
    print(f"healed cut -> claim:        {healed:6.3f} s   (target < 4 s: 2 x poll interval 2 s)")
    print(f"death -> shown silent:      {silent:6.3f} s   (target <= 4 s: renewal 2 s + poll 2 s)")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--faults", action="store_true", help="through the proxy, with faults")
    args = parser.parse_args()
    if args.faults:
        with tempfile.TemporaryDirectory(prefix="tandem-faults-") as tmp:
            faults(Path(tmp), args.iterations)
        return
    with tempfile.TemporaryDirectory(prefix="tandem-handoff-") as tmp:
        galph, ralph = setup(Path(tmp) / "run", ["true"])
        started = time.monotonic()
        finish([start(galph, "supervisor", args.iterations), start(ralph, "loop", args.iterations)])
        elapsed = time.monotonic() - started
        latencies = sorted(handoffs(galph, ralph))
        cpu = wait_cpu(Path(tmp) / "wait", 20.0)
    print(f"iterations:                {args.iterations} (default wait settings)")
    print(f"handoffs measured:         {len(latencies)}")
    print(f"handoff latency median:    {statistics.median(latencies):6.3f} s   (target <= 0.5 s)")
    print(f"handoff latency p95:       {p95(latencies):6.3f} s   (target <= 1.5 s)")
    print(f"whole run per iteration:   {elapsed / args.iterations:6.3f} s")
    print(f"waiting actor CPU:         {cpu:6.2f} % of one core   (target < 2 %)")


if __name__ == "__main__":
    main()

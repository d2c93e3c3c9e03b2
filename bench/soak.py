"""A compressed unattended night: faults at random, a supervisor loop, and what it cost.

Both modes run for ``--minutes`` each: combined (one process) and sync via git (two clones
of a bare remote, one process per actor). The agent is ``claude`` as tandem sees it: a
small program (``FAKE_CLAUDE`` below) that speaks claude's stream-json and takes about a
second per turn. At random it reports a subscription limit that resets in 2-4 s, a 429
(tandem backs off 60 s: these are rare), or an HTTP 500 (``agent.retries: 2``: the turn
reruns after 30 s). Every ~``--kill-every`` seconds one actor's tandem is SIGKILLed; a
supervisor loop restarts any tandem that ended, one second later, as systemd's
``Restart=always`` would. In sync mode the remote is served by ``git daemon`` behind the
fault proxy of the network tests (tests/netrig.py), and every ~``--cut-every`` seconds
the network is cut for 3 to 10 s: a blackhole (a pulled cable: connections hang until
``sync.git_timeout_secs``, 5 s here) or resets (every connection refused with RST).

Printed per mode: turns completed against the ideal for the same wall time (limit and
retry windows excluded), interventions needed (a tandem that stopped by itself with an
error: a human would have had to look; target 0), turns stamped ok twice (0), work lost
(a line an agent wrote that is in neither the final history nor the work tree; 0), and
the longest time nothing happened on any side outside those windows (network cuts count
as such windows too: nothing can reach the remote then; the recovery after a cut does not).

    python bench/soak.py [--minutes 2] [--kill-every 40] [--cut-every 45] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from netrig import Proxy, network_env, served  # noqa: E402  (the network tests' fault rig)

IDENTITY = ("-c", "user.name=soak", "-c", "user.email=soak@localhost")
CONFIG = (
    "agent:\n  default: claude\n  retries: 2\n  heartbeat_secs: 0\n  kill_grace_secs: 1\n"
    "sync:\n  poll_interval: 0.5\n  lease_secs: 60\n  git_timeout_secs: 5\n"
)
FAKE_CLAUDE = r"""
import json, os, random, sys, time
if "--version" in sys.argv:
    print("2.0.0 (Claude Code)"); sys.exit(0)
sys.stdin.read()
actor, iteration = os.environ["TANDEM_ACTOR"], os.environ["TANDEM_ITERATION"]
token = f"{actor} i{iteration} {os.getpid()} {time.time():.3f}"
with open(os.environ["SOAK_TOKENS"], "a") as log:
    log.write(token + "\n")
with open("input.md" if actor == "galph" else "work.txt", "a") as work:
    work.write(token + "\n")
time.sleep(random.uniform(0.8, 1.2))
roll = random.random()
def out(event): print(json.dumps(event), flush=True)
usage = {"input_tokens": 1000, "output_tokens": 100}
if roll < 0.06:
    reset = int(time.time() + random.uniform(2, 4))
    out({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected",
         "resetsAt": reset, "rateLimitType": "five_hour"}})
    out({"type": "result", "is_error": True, "result": "You've hit your limit"})
    sys.exit(1)
if roll < 0.07:
    out({"type": "result", "is_error": True, "result": "API Error: 429", "api_error_status": 429})
    sys.exit(1)
if roll < 0.09:
    out({"type": "result", "is_error": True, "result": "API Error: 500", "api_error_status": 500})
    sys.exit(1)
out({"type": "result", "is_error": False, "result": "Done", "total_cost_usd": 0.01,
     "usage": usage, "num_turns": 1})
"""


def git(cwd: Path, *args: str) -> str:
    """Run git; its stdout."""
    done = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True)
    return done.stdout.decode()


def make_repo(where: Path) -> None:
    """A host repo with the three prompts and the soak config, one commit on main."""
    (where / "prompts").mkdir(parents=True)
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (where / "prompts" / name).write_text(f"# {name}\n")
    (where / "orchestration.yaml").write_text(CONFIG)
    (where / ".gitignore").write_text("logs/\n")
    git(where, "init", "--quiet", "--initial-branch=main")
    for key, value in (("user.name", "soak"), ("user.email", "soak@localhost")):
        git(where, "config", key, value)
    git(where, "add", "--all")
    git(where, "commit", "--quiet", "-m", "host")


class Supervisor:
    """Keeps one tandem command running until ``stop``; counts how each run ended."""

    def __init__(self, cwd: Path, args: list[str], env: dict[str, str], log: Path) -> None:
        self.cwd, self.args, self.env, self.log = cwd, args, env, log
        self.child: subprocess.Popen[bytes] | None = None
        self.killed = 0
        self.errors: list[int] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._keep, daemon=True)

    def _keep(self) -> None:
        while not self.stopping:
            with self.log.open("ab") as out:
                self.child = subprocess.Popen(
                    [sys.executable, "-m", "tandem", *self.args],
                    cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
                code = self.child.wait()
            if code == -signal.SIGKILL:
                self.killed += 1
            elif not self.stopping and code not in (0,):
                self.errors.append(code)
            time.sleep(1.0)  # RestartSec=1

    def kill(self) -> None:
        """SIGKILL the running tandem (the loop restarts it)."""
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGKILL)

    def stop(self) -> None:
        """End the loop: SIGTERM the running tandem, no restart."""
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        self.thread.join(timeout=60)


Faults = tuple[float, float, random.Random]  # kill every, cut every (seconds), chance


def soak(mode: str, minutes: float, faults: Faults) -> dict[str, Any]:
    """Run one mode for ``minutes`` with faults and kills; its figures."""
    tmp = Path(tempfile.mkdtemp(prefix=f"soak-{mode}-"))
    agent = tmp / "claude"
    agent.write_text(f"#!{sys.executable}\n{FAKE_CLAUDE}")
    agent.chmod(0o755)
    env = {**os.environ, "CLAUDE_CMD": str(agent), "SOAK_TOKENS": str(tmp / "tokens")}
    env["IS_SANDBOX"] = "1"  # the fake claude runs as whoever runs the bench
    env["PYTHONPATH"] = str(ROOT / "src")
    many = ["--iterations", "1000000"]
    if mode == "combined":
        make_repo(tmp / "host")
        roots = {"both": tmp / "host"}
        sups = [Supervisor(roots["both"], ["run", *many], env, tmp / "both.out")]
        return measure(tmp, roots, sups, drive(sups, minutes, faults, None))
    make_repo(tmp / "seed")
    git(tmp, "init", "--quiet", "--bare", "--initial-branch=main", "remote.git")
    git(tmp / "seed", "push", "--quiet", str(tmp / "remote.git"), "main")
    roots = {}
    for actor in ("galph", "ralph"):
        git(tmp, "clone", "--quiet", str(tmp / "remote.git"), actor)
        for key, value in (("user.name", actor), ("user.email", f"{actor}@localhost")):
            git(tmp / actor, "config", key, value)
        roots[actor] = tmp / actor
    sync = ["--sync-via-git", *many]
    env = network_env(env)
    sups = [
        Supervisor(roots["galph"], ["supervisor", *sync], env, tmp / "galph.out"),
        Supervisor(roots["ralph"], ["loop", *sync], env, tmp / "ralph.out"),
    ]
    with served(tmp / "remote.git", roots.values()) as net:
        run = drive(sups, minutes, faults, net.proxy)
    return measure(tmp, roots, sups, run)


@dataclass
class Run:
    """When one mode ran (Unix seconds), and the network cuts made during it."""

    began: float
    ended: float
    cuts: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, how


def drive(sups: list[Supervisor], minutes: float, faults: Faults, proxy: Proxy | None) -> Run:
    """Start the supervisors; kill one now and then, cut the network now and then."""
    kill_every, cut_every, rng = faults
    began = time.monotonic()
    run = Run(time.time(), 0.0)
    for sup in sups:
        sup.thread.start()
    deadline = began + minutes * 60
    next_kill = began + rng.expovariate(1 / kill_every)
    next_cut = began + rng.expovariate(1 / cut_every)
    healed_at: float | None = None
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = time.monotonic()
        if now >= next_kill:
            rng.choice(sups).kill()
            next_kill = now + rng.expovariate(1 / kill_every)
        if proxy is not None and healed_at is not None and now >= healed_at:
            proxy.heal()
            run.cuts[-1] = (run.cuts[-1][0], time.time(), run.cuts[-1][2])
            healed_at, next_cut = None, now + rng.expovariate(1 / cut_every)
        elif proxy is not None and healed_at is None and now >= next_cut:
            how = rng.choice(("blackhole", "reset"))
            proxy.blackhole() if how == "blackhole" else proxy.reset()
            run.cuts.append((time.time(), time.time(), how))
            healed_at = now + rng.uniform(3, 10)
    if proxy is not None and healed_at is not None:
        proxy.heal()
        run.cuts[-1] = (run.cuts[-1][0], time.time(), run.cuts[-1][2])
    for sup in sups:  # all first: a peer that sees the other's interrupted turn is no fault
        sup.stopping = True
    for sup in sups:
        sup.stop()
    run.ended = time.time()
    return run


def measure(tmp: Path, roots: dict[str, Path], sups: list[Supervisor], run: Run) -> dict[str, Any]:
    """The figures of one mode's run, from its event logs, history and work trees."""
    wall = run.ended - run.began
    events = []
    for root in roots.values():
        path = root / "logs" / "main" / "events.jsonl"
        events += [json.loads(line) for line in path.read_text().splitlines()]
    events.sort(key=lambda e: e["ts"])
    at = [datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp() for e in events]
    cuts = [(start, end) for start, end, _ in run.cuts]
    windows = _windows(events, at, (run.began, run.ended), cuts)
    waited = sum(end - start for start, end in windows)
    ends = [e for e in events if e["event"] == "turn_end"]
    ok = [e for e in ends if e["status"] == "ok"]
    agent_secs = [e["duration_secs"] for e in ok]
    per_turn = sorted(agent_secs)[len(agent_secs) // 2] if agent_secs else 1.0
    usable = wall - waited
    ideal = usable / per_turn
    history = git(
        tmp / ("remote.git" if "galph" in roots else "host"), "log", "--format=%s", "main"
    )
    stamps = [s for s in history.splitlines() if "status=ok" in s]
    twice = len(stamps) - len(set(stamps))
    tokens = (tmp / "tokens").read_text().splitlines() if (tmp / "tokens").exists() else []
    kept = _kept(tmp, roots)
    lost = [t for t in tokens if t not in kept]
    quiet = [b - a for a, b in itertools.pairwise(at) if not _inside(a, b, windows)]
    return {
        "wall_secs": round(wall, 1),
        "limit_retry_and_cut_windows_secs": round(waited, 1),
        "network_cuts": len(run.cuts),
        "network_cut_secs": round(sum(end - start for start, end in cuts), 1),
        "remote_outages_seen": sum(e["event"] == "remote_down" for e in events),
        "turns_ok": len(ok),
        "ideal_turns": round(ideal, 1),
        "utilization": round(len(ok) / ideal, 3) if ideal else None,
        "pauses": sum(e["event"] == "pause" for e in events),
        "retries": sum(e["event"] == "retry" for e in events),
        "sigkills": sum(s.killed for s in sups),
        "interventions_needed": sum(len(s.errors) for s in sups),
        "turns_stamped_twice": twice,
        "work_lost": len(lost),
        "longest_stuck_secs": round(max(quiet, default=0.0), 1),
        "folder": str(tmp),
    }


def _windows(
    events: list[dict[str, Any]],
    at: list[float],
    run: tuple[float, float],
    cuts: list[tuple[float, float]],
) -> list[tuple[float, float]]:
    """Designed waits (each pause until its end, each retry's delay) and network cuts,
    within the run and merged where they overlap."""
    found: list[tuple[float, float]] = []
    for event, when in zip(events, at, strict=False):
        if event["event"] == "pause":
            until = datetime.fromisoformat(event["until"].replace("Z", "+00:00")).timestamp()
            found.append((when, until))
        if event["event"] == "retry":
            found.append((when, when + float(event["delay_secs"])))
    # a wait ends early when a turn starts (a SIGKILLed run's restart retries at once)
    starts = [
        when for event, when in zip(events, at, strict=True) if event["event"] == "turn_start"
    ]
    found = [(a, min([b, *(t for t in starts if t > a)])) for a, b in found] + cuts
    merged: list[tuple[float, float]] = []
    for start, end in sorted((max(a, run[0]), min(b, run[1])) for a, b in found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def _inside(a: float, b: float, windows: list[tuple[float, float]]) -> bool:
    return any(start - 1 <= a and b <= end + 2 for start, end in windows)


def _kept(tmp: Path, roots: dict[str, Path]) -> str:
    """Every line in the final history (remote or host) and in the work trees."""
    where = tmp / "remote.git" if "galph" in roots else roots["both"]
    text = ""
    for name in ("input.md", "work.txt"):
        with contextlib.suppress(subprocess.CalledProcessError):
            text += git(where, "show", f"main:{name}")
        for root in roots.values():
            if (root / name).exists():
                text += (root / name).read_text()
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--kill-every", type=float, default=40.0)
    parser.add_argument("--cut-every", type=float, default=45.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 (fault timing, not secrets)
    for mode in ("combined", "sync"):
        figures = soak(mode, args.minutes, (args.kill_every, args.cut_every, rng))
        print(f"{mode}: " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

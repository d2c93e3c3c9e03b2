"""How fast tandem relays a verbose agent's output, and how much memory it takes.

An agent (``cat`` of a prepared file: nothing writes faster) prints 200 MB of numbered
lines to stdout. tandem runs it for one turn, relaying
to the console (redirected to /dev/null) and to the turn log; a secret is set in the
environment so redaction runs on every byte. The baseline, measured in the same run, is
the same agent piped into ``cat`` writing a file. Prints both throughputs, their ratio,
tandem's peak RSS, and checks that the turn log holds every line, in order.

    python bench/output_relay.py [--megabytes 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINE_BYTES = 100


def make_output(path: Path, megabytes: int) -> int:
    """Write ``megabytes`` MB of numbered 100-byte lines to ``path``; the line count."""
    total = megabytes * 1024 * 1024 // LINE_BYTES
    pad = b"x" * 86
    with path.open("wb") as out:
        for start in range(0, total, 10000):
            stop = min(start + 10000, total)
            out.write(b"".join(b"%010d %s ok\n" % (i, pad) for i in range(start, stop)))
    return total


def baseline(agent: list[str], out: Path) -> float:
    """Seconds for ``agent | cat > out``."""
    started = time.perf_counter()
    with out.open("wb") as sink:
        producer = subprocess.Popen(agent, stdout=subprocess.PIPE)
        cat = subprocess.Popen(["cat"], stdin=producer.stdout, stdout=sink)
        assert producer.stdout is not None
        producer.stdout.close()
        cat.wait()
        producer.wait()
    return time.perf_counter() - started


def make_host(root: Path, agent: list[str]) -> None:
    """A host repo whose agent is the producer."""
    (root / "prompts").mkdir(parents=True)
    for name in ("supervisor.md", "main.md", "reviewer.md"):
        (root / "prompts" / name).write_text(f"# {name}\n")
    (root / "orchestration.yaml").write_text(
        "agent:\n"
        "  default: producer\n"
        f"  commands:\n    producer: {json.dumps(agent)}\n"
        "  heartbeat_secs: 0\n"
    )
    (root / ".gitignore").write_text("logs/\n")
    for args in (
        ["init", "--quiet", "--initial-branch=main"],
        ["add", "--all"],
        [
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "--quiet",
            "-m",
            "host",
        ],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)


def run_tandem(root: Path) -> tuple[float, float, int]:
    """One galph turn through ``tandem``: the agent's run (from the turn_end event), the
    whole command, both in seconds, and tandem's peak RSS in kB."""
    env = {**os.environ, "BENCH_SERVICE_API_KEY": "bench-secret-value-123"}
    started = time.perf_counter()
    with open(os.devnull, "wb") as console:
        child = subprocess.Popen(
            [sys.executable, "-m", "tandem", "supervisor", "--iterations", "1"],
            cwd=root,
            env=env,
            stdout=console,
            stderr=subprocess.PIPE,
        )
        peak = 0
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            peak = max(peak, _hwm(status))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    assert child.stderr is not None
    errors = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"tandem failed: {errors}")
    events = (root / "logs" / "main" / "events.jsonl").read_text().splitlines()
    turn = [json.loads(line) for line in events if '"turn_end"' in line][-1]
    return float(turn["duration_secs"]), elapsed, peak


def _hwm(status: Path) -> int:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def logged_output(root: Path, size: int) -> bytes:
    """The agent's bytes as the turn log holds them, checked to end where the footer starts."""
    data = (root / "logs" / "main" / "galph" / "latest.log").read_bytes()
    first = data.index(b"0000000000 ")
    if not data[first + size :].startswith(b"===== tandem end of turn"):
        return b""  # more or less than the agent wrote
    return data[first : first + size]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tandem-relay-") as tmp:
        output = Path(tmp) / "output.txt"
        lines = make_output(output, args.megabytes)
        digest = hashlib.sha256(output.read_bytes()).hexdigest()
        size = output.stat().st_size
        agent = ["cat", str(output)]  # the agent: as fast a writer as there is
        root = Path(tmp) / "host"
        make_host(root, agent)
        cats, relays, wholes, peaks, intact = [], [], [], [], True
        for _ in range(args.rounds):  # interleaved, so both see the same machine
            cats.append(baseline(agent, Path(tmp) / "cat.out"))
            relay, whole, peak = run_tandem(root)
            relays.append(relay)
            wholes.append(whole)
            peaks.append(peak)
            logged = logged_output(root, size)
            intact = intact and hashlib.sha256(logged).hexdigest() == digest
            intact = intact and logged.count(b"\n") == lines
    mb = size / 1024 / 1024
    cat_rate, relay_rate = mb / statistics.median(cats), mb / statistics.median(relays)
    print(f"output:                 {mb:.0f} MB in {lines:,} lines, {args.rounds} rounds (medians)")
    print(f"baseline (| cat > f):   {cat_rate:8.1f} MB/s")
    print(f"tandem relay:           {relay_rate:8.1f} MB/s  (the agent's run: console + turn log)")
    print(
        f"tandem whole command:   {mb / statistics.median(wholes):8.1f} MB/s  "
        "(start-up, turn commit and exit included)"
    )
    print(f"ratio relay/baseline:   {relay_rate / cat_rate:8.2f}   (target >= 0.50)")
    print(f"tandem peak RSS:        {max(peaks) / 1024:8.1f} MB   (target < 60 MB)")
    print(f"turn logs intact:       {'yes, every line in order' if intact else 'NO: bytes lost'}")
    if not intact:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""How status, report and watch scale: a synthetic history of 10,000 turns with receipts.

Builds the history with one ``git fast-import``, then times ``tandem status`` (the first
call counts every receipt, later ones only the new; the median of five, the cache removed
before each first call), ``tandem report``, one ``watch`` refresh (in process, rendered to
an 80x24 screen), the report's size, and its render time in headless Chromium with the
network refused. The page has no script of its own, so the bench measures a copy with one
added: at the ``load`` event it forces layout and records ``performance.now()`` (the time
since navigation began). Prints each figure beside its target.

    .venv/bin/python bench/report_scale.py [--turns 10000]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

import synthetic_history  # noqa: E402  (from tests/: bench and tests build the same history)


def _timed(action: Callable[[], object], rounds: int = 1) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _cpu(action: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU of the child processes) of one run of ``action``, in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _timed(action)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _tandem(root: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    subprocess.run(
        [sys.executable, "-m", "tandem", *args], cwd=root, env=env, check=True, capture_output=True
    )


def _watch_refresh(root: Path) -> tuple[float, float]:
    """(the first refresh, the median steady one) of an 80x24 watch, in seconds."""
    from rich.console import Console

    from tandem.commands.common import quiet_host
    from tandem.commands.watch import make_watcher
    from tandem.view import frame

    watcher = make_watcher(quiet_host(root, None, {}), remote=False)
    screen = Console(file=io.StringIO(), width=80, height=24, force_terminal=True)

    def refresh() -> None:
        screen.print(frame(watcher.snapshot(), 80, 24))

    return _timed(refresh), _timed(refresh, 20)


def _both(timing: tuple[float, float]) -> str:
    return f"{timing[0]:.2f} s ({timing[1]:.2f} s CPU)"


_PROBE = """<script>
window.addEventListener("load", function () {
  document.body.getBoundingClientRect();  /* style and layout of the whole page, now */
  document.body.setAttribute("data-rendered-ms", String(Math.round(performance.now())));
});
</script>"""


def _probed(page: Path) -> Path:
    """A copy of ``page`` that records when it was parsed, loaded and laid out."""
    copy = page.with_name(f"probed-{page.name}")
    copy.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    return copy


def _render_ms(page: Path, profile: Path) -> int:
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=60000",
            "--window-size=1280,2000",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found = re.search(r'data-rendered-ms="(\d+)"', done.stdout)
    if not found:
        raise SystemExit("the page never finished loading")
    return int(found[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    args = parser.parse_args()
    # as an installed tandem runs: compiled (pip compiles; PYTHONDONTWRITEBYTECODE may be set)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "src")], check=True)
    with tempfile.TemporaryDirectory(prefix="tandem-report-scale-") as tmp:
        root, empty = Path(tmp) / "host", Path(tmp) / "empty"
        built = _timed(lambda: synthetic_history.build(root, args.turns))
        subprocess.run(["git", "init", "--quiet", str(empty)], check=True)
        cache = root / "logs" / "main" / "receipts-cache.json"
        colds = []
        for _ in range(5):
            cache.unlink(missing_ok=True)
            colds.append(_cpu(lambda: _tandem(root, "status", "--no-fetch")))
        cold = sorted(colds)[2]
        warm = _cpu(lambda: _tandem(root, "status", "--no-fetch"))
        page, blank = Path(tmp) / "report.html", Path(tmp) / "empty.html"
        report = _cpu(lambda: _tandem(root, "report", "-o", str(page)))
        _tandem(empty, "report", "-o", str(blank))
        first, steady = _watch_refresh(root)
        renders: dict[Path, list[int]] = {_probed(page): [], _probed(blank): []}
        for _ in range(3):  # interleaved, so both see the same load
            for which, found in renders.items():
                found.append(_render_ms(which, Path(tmp) / "chromium"))
        render, baseline = (statistics.median(found) / 1000 for found in renders.values())
        size = page.stat().st_size
    rows = [
        ("history built (fast-import)", f"{built:.2f} s", ""),
        ("tandem status, first (counts all)", _both(cold), "< 0.5 s"),
        ("tandem status, later (cached)", _both(warm), "< 0.5 s"),
        ("tandem report", _both(report), "< 5 s"),
        ("watch refresh, first", f"{first * 1000:.0f} ms", "< 100 ms"),
        ("watch refresh, steady", f"{steady * 1000:.1f} ms", "< 100 ms"),
        ("report size", f"{size / 1e6:.1f} MB", ""),
        ("report render in Chromium", f"{render:.2f} s", "< 2 s"),
        ("  the same page with no turns", f"{baseline:.2f} s", "(the floor)"),
    ]
    load = os.getloadavg()[0]  # other work on the machine slows every figure
    print(f"{args.turns:,} turns with receipts; {os.cpu_count()} cores, load average {load:.1f}")
    for name, value, target in rows:
        shown = f"target {target}" if target.startswith("<") else target
        print(f"  {name:36} {value:>22}  {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

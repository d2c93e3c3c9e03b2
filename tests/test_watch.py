"""``tandem watch`` (SPEC §17) in a real terminal (tmux) beside real loops, and without one."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from helpers import REPO_ROOT, HostRepo, git, make_host, make_pair, start_tandem, tandem
from sync_history import SYNC
from terminal import Tmux

WATCH = ["-m", "tandem", "watch"]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    terminal = Tmux(tmp_path)
    yield terminal
    terminal.close()


def _loop(host: HostRepo, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    return start_tandem(host.root, "run", *args, env=host.env(), log=tmp_path / "loop.log")


def _elapsed(screen: str) -> float:
    found = re.search(r"with fake, (\d+(?:\.\d)?)s", screen)
    assert found, screen
    return float(found[1])


def test_beside_a_slow_turn_it_shows_the_turn_its_output_and_quits_on_q(
    tmp_path: Path, tmux: Tmux
) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"stdout": "reading the plan\nwriting input.md\n", "sleep": 20}})
    loop = _loop(host, tmp_path)
    try:
        tmux.start(host.root, [sys.executable, *WATCH], host.env())
        first = tmux.wait_for(lambda s: "running: galph supervisor.md with fake, " in s)
        assert "iteration 1 · run 1 of 1 · galph's turn" in first
        assert re.search(r"lease \S+:\d+ · taken \S+ ago · expires in", first)
        tmux.wait_for(lambda s: "writing input.md" in s)
        program = tmux.program()
        cpu = sum(program.cpu_times()[:2])
        time.sleep(6)
        cpu = sum(program.cpu_times()[:2]) - cpu
        later = tmux.screen()
        assert _elapsed(later) >= _elapsed(first) + 5
        assert cpu < 0.18, f"{cpu:.3f} s of CPU in 6 s"  # under 3 % of a core (measured 0.6 %)
        assert all(len(line) <= 80 for line in later.splitlines())
        assert tmux.modes() == {"alternate": "1", "cursor": "0"}
        tmux.keys("q")
        assert tmux.exited() == {"code": 0, "termios_restored": True}
        assert tmux.modes() == {"alternate": "0", "cursor": "1"}
    finally:
        loop.kill()
        loop.wait()


def test_a_paused_state_counts_down_and_ctrl_c_quits_with_0(tmp_path: Path, tmux: Tmux) -> None:
    host = make_host(tmp_path)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    state = {
        "iteration": 4,
        "expected_actor": "galph",
        "status": "paused",
        "last_update": "2026-01-01T00:00:00Z",
        "pause": {
            "actor": "galph",
            "iteration": 4,
            "prompt": "supervisor.md",
            "kind": "usage_limit",
            "reason": "claude usage limit (five_hour)",
            "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spent": {"cost_usd": 1.5, "tokens": 12345, "turns": 7},
    }
    path = host.root / "sync" / "state.json"
    path.parent.mkdir()
    path.write_text(json.dumps(state))
    before = path.read_bytes()
    tmux.start(host.root, [sys.executable, *WATCH], host.env())
    pattern = rf"paused: galph usage_limit until {until:%H:%M}Z \(in (\d+)m(\d+)s\)"
    first = tmux.wait_for(lambda s: re.search(pattern, s) is not None)
    assert "claude usage limit (five_hour)" in first
    assert "spent $1.50 · 12,345 tokens · 7 turns" in first
    time.sleep(2.2)
    later = tmux.screen()

    def left(screen: str) -> int:
        found = re.search(pattern, screen)
        assert found, screen
        return int(found[1]) * 60 + int(found[2])

    assert left(later) < left(first)
    tmux.keys("C-c")
    assert tmux.exited() == {"code": 0, "termios_restored": True}
    assert path.read_bytes() == before  # read-only


def test_after_a_failure_it_shows_the_reason_and_the_last_turns(tmp_path: Path, tmux: Tmux) -> None:
    host = make_host(tmp_path)
    host.plan({"ralph": {"stderr": "boom\n", "exit": 3}})
    assert tandem(host.root, "run", env=host.env()).code == 1
    tmux.start(host.root, [sys.executable, *WATCH], host.env())
    screen = tmux.wait_for(lambda s: "failed: ralph" in s)
    assert "failed: ralph at iteration 1 (main.md)\n  exited with 3" in screen
    turns = screen[screen.index("last turns") :]
    assert re.search(r"i1 ralph main\.md\s+fake\s+\S+ fail:agent", turns)
    assert re.search(r"i1 galph supervisor\.md\s+fake\s+\S+ ok", turns)
    tmux.keys("q")
    assert tmux.exited()["code"] == 0


def test_after_a_dry_run_loop_it_shows_the_stop_and_the_receipts(
    tmp_path: Path, tmux: Tmux
) -> None:
    host = make_host(tmp_path)
    assert tandem(host.root, "run", "--agent", "dry-run", "--iterations", "2").code == 0
    tmux.start(host.root, [sys.executable, *WATCH], host.env())
    screen = tmux.wait_for(lambda s: "stopped: all iterations done" in s)
    assert "iteration 3 · run 2 of 2 · galph's turn" in screen
    assert re.search(r"i2 ralph main\.md\s+dry-run\s+\S+ ok", screen)
    tmux.keys("q")
    assert tmux.exited()["code"] == 0


@contextlib.contextmanager
def _plain_watch(cwd: Path, *args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``tandem watch`` with its output to a pipe (no terminal), stopped at the end."""
    with subprocess.Popen(
        [sys.executable, *WATCH, "--interval", "0.2", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO_ROOT / "src")},
        stdout=subprocess.PIPE,
        text=True,
    ) as watch:
        try:
            yield watch
        finally:
            watch.kill()


def _stopped(watch: subprocess.Popen[str]) -> int:
    watch.terminate()
    return watch.wait(timeout=10)


def _lines_until(watch: subprocess.Popen[str], text: str) -> list[str]:
    assert watch.stdout is not None
    seen: list[str] = []
    for line in watch.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    raise AssertionError(f"watch ended before {text!r}: {seen}")


def test_without_a_terminal_it_prints_one_line_per_change(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"galph": {"sleep": 1.5}, "ralph": {"sleep": 1.5}})
    with _plain_watch(host.root, env=host.env()) as watch:
        loop = _loop(host, tmp_path)
        assert loop.wait(timeout=60) == 0
        lines = _lines_until(watch, "stopped: all iterations done")
        assert _stopped(watch) == 0
    texts = [line.split(" ", 1)[1] for line in lines]
    assert all(re.match(r"\d\d:\d\d:\d\dZ ", line) for line in lines)
    assert all(a != b for a, b in itertools.pairwise(texts))
    assert any("running: galph supervisor.md with fake" in t for t in texts)
    assert any("running: ralph main.md with fake" in t for t in texts)
    assert not any(re.search(r"with fake, \d", t) for t in texts)  # no ticking clock


def test_remote_watches_another_machine_through_the_remote(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    galph.plan({"galph": {"sleep": 3}})
    git(tmp_path, "clone", "--quiet", str(pair.remote), "third")
    with _plain_watch(tmp_path / "third", "--remote", env=galph.env()) as watch:
        supervisor = start_tandem(
            galph.root, "supervisor", *SYNC, env=galph.env(), log=tmp_path / "galph.log"
        )
        lines = _lines_until(watch, "running: galph")
        lines += _lines_until(watch, "waiting for ralph (waiting-ralph)")
        assert supervisor.wait(timeout=60) == 0
        assert _stopped(watch) == 0
    assert any("lease " in line for line in lines)
    assert not (tmp_path / "third" / "sync" / "state.json").exists()  # the tree is untouched


def test_logs_follow_shows_the_running_turn_as_it_grows_then_the_next(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan(
        {
            "galph": {"stdout": "galph begins\n", "sleep": 1.5, "write_after_sleep": {"x": "1"}},
            "ralph": {"stdout": "ralph works\n", "sleep": 0.5},
        }
    )
    with subprocess.Popen(
        [sys.executable, "-m", "tandem", "logs", "--follow"],
        cwd=host.root,
        env={**host.env(), "PYTHONPATH": str(REPO_ROOT / "src")},
        stdout=subprocess.PIPE,
        text=True,
    ) as follow:
        try:
            loop = _loop(host, tmp_path)  # after --follow began: it waits for the first log
            assert loop.wait(timeout=60) == 0
            lines = _lines_until(follow, "ralph works")
            lines += _lines_until(follow, "result: ok")
            assert _stopped(follow) == 0
        finally:
            follow.kill()
    heads = [line for line in lines if line.startswith("==> ")]
    assert [h.split("/")[2] for h in heads] == ["galph", "ralph"]
    galph_end = lines.index(heads[1])
    assert "galph begins" in lines[:galph_end]
    assert "result: ok" in lines[:galph_end]  # the rest of galph's log before ralph's


def test_remote_without_a_remote_is_one_line_and_exit_1(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    done = tandem(host.root, "watch", "--remote", env=host.env())
    assert (done.code, done.err) == (
        1,
        "tandem: error: there is no remote 'origin' here; "
        "name it with --remote-name, or add it with git remote add\n",
    )

"""``tandem status`` totals from the receipts: read as git reads trailers, cached correctly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import synthetic_history
from helpers import git, tandem
from tandem import logs, receipts
from tandem.errors import GitError
from tandem.git import Repo
from tandem.receipts import Receipt

MESSAGES = [
    "subject only\n",
    "Tandem-Actor: galph\n",  # a subject is never a trailer
    "turn\n\nTandem-Actor: galph\nTandem-Iteration: 3\nTandem-Result: ok\n",
    "turn\n\nTandem-Actor: galph\nTandem-Failure: a long\n  folded reason\nTandem-Result: ok\n",
    "turn\n\nTandem-Actor: galph\nTandem-Result: ok\n\nlast paragraph is prose\n",
    "turn\n\nsome prose\nTandem-Actor: ralph\nTandem-Result: ok\n",
    "turn\n\nprose one\nprose two\nprose three\nTandem-Actor: ralph\nSigned-off-by: a <a@b>\n",
    "turn\n\nTandem-Actor: galph\nTandem-Actor: ralph\nTandem-Result: ok   \n",
    "turn\n\nTandem-Actor: galph \t\nTandem-Result: ok\n",  # blanks git drops
    "turn\n\nbody\n \nTandem-Actor: ralph\nTandem-Result: ok\n",
    "turn\n\nTandem-Actor: galph\nNot a trailer line\n",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_trailers_are_read_as_git_reads_them(tmp_path: Path, message: str) -> None:
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "commit", "--quiet", "--allow-empty", "--cleanup=verbatim", "-m", message)
    by_git = git(tmp_path, "log", "-1", "--format=%(trailers:only,unfold)")
    expected: dict[str, str] = {}
    for line in by_git.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("Tandem-"):
            expected.setdefault(name.removeprefix("Tandem-"), value.strip())
    assert receipts.trailer_values(message) == expected


def _status(root: Path, *args: str) -> dict[str, int]:
    done = tandem(root, "status", "--json", *args)
    assert done.code == 0, done.err
    view = json.loads(done.out)
    return {name: total["turns"] for name, total in view["actors"].items()}


def _turn(root: Path, actor: str, iteration: int) -> None:
    body = "\n".join(receipts.trailers(Receipt(actor, iteration, "ok", agent="x")))
    git(root, "commit", "--quiet", "--allow-empty", "-m", f"turn\n\n{body}")


def test_the_cache_follows_new_commits_rewrites_and_fetches(tmp_path: Path) -> None:
    synthetic_history.build(tmp_path / "origin", 20)
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(tmp_path / "origin"), str(remote))
    for name in ("here", "there"):
        git(tmp_path, "clone", "--quiet", str(remote), name)
    here, there = tmp_path / "here", tmp_path / "there"
    cache = here / "logs" / "main" / "receipts-cache.json"
    assert _status(here) == {"galph": 10, "ralph": 10}
    tip = json.loads(cache.read_text())["tip"]
    assert tip == git(here, "rev-parse", "origin/main").strip()
    _turn(here, "galph", 11)  # a new local commit: HEAD's totals extend
    assert _status(here, "--no-fetch") == {"galph": 11, "ralph": 10}
    _turn(there, "ralph", 11)
    git(there, "push", "--quiet", "origin", "main")  # the other machine publishes a turn
    assert _status(here) == {"galph": 10, "ralph": 11}  # fetched: the remote's history
    git(there, "reset", "--quiet", "--hard", "HEAD~4")  # and then rewrites it
    git(there, "push", "--quiet", "--force", "origin", "main")
    assert _status(here) == {"galph": 9, "ralph": 8}
    git(here, "reset", "--quiet", "--hard", "HEAD~2")  # 19 of the first turns are left
    assert _status(here, "--no-fetch") == {"galph": 10, "ralph": 9}
    cache.write_text("{torn")  # an unreadable cache is rebuilt, never trusted
    assert _status(here, "--no-fetch") == {"galph": 10, "ralph": 9}
    assert json.loads(cache.read_text())["tip"] == git(here, "rev-parse", "HEAD").strip()


def test_a_git_failure_while_reading_history_is_one_line(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    _turn(tmp_path, "galph", 1)
    history = receipts.read(Repo(tmp_path))
    assert [r.iteration for r in history.receipts] == [1]
    with pytest.raises(GitError) as caught:
        receipts.read(Repo(tmp_path), "HEAD~5..HEAD")
    assert "HEAD~5" in str(caught.value)


@pytest.mark.parametrize("block", [5, 64, 1 << 16])
def test_the_last_turns_are_read_back_from_the_end_of_the_event_log(
    tmp_path: Path, block: int
) -> None:
    events = tmp_path / "events.jsonl"
    lines = []
    for n in range(60):
        lines.append(json.dumps({"event": "route", "iteration": n, "note": "x" * (n % 9)}))
        lines.append(json.dumps({"event": "turn_end", "iteration": n, "prompt": "é" * (n % 4)}))
        if n % 10 == 3:
            lines.append('{"event": "turn_end", torn')  # a broken line is skipped
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [e for e in logs.read_events(events) if e["event"] == "turn_end"]
    for count in (1, 5, 60, 100):
        found = logs.last_events(events, "turn_end", count, block)
        assert found == expected[-count:]
    assert logs.last_events(tmp_path / "missing.jsonl", "turn_end", 5) == []
    assert logs.last_events(events, "turn_end", 0) == []

"""Totals from the receipts, counted once and then only what is new (the status cache)."""

from __future__ import annotations

import json
from pathlib import Path

import synthetic_history
from helpers import git
from tandem import ledger, receipts
from tandem.git import Repo
from tandem.receipts import Receipt


def _turn(root: Path, actor: str, iteration: int) -> None:
    body = "\n".join(receipts.trailers(Receipt(actor, iteration, "ok", agent="x")))
    git(root, "commit", "--quiet", "--allow-empty", "-m", f"turn\n\n{body}")


def test_the_cache_counts_only_new_turns_and_is_rebuilt_when_history_changes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "h"
    synthetic_history.build(root, 20)
    repo, cache = Repo(root), tmp_path / "cache.json"
    assert ledger.summarize(repo, "HEAD", cache).actors["galph"].turns == 10
    data = json.loads(cache.read_text())
    data["actors"]["galph"]["turns"] = 1000  # a mark: only the cache could say this
    cache.write_text(json.dumps(data))
    _turn(root, "galph", 11)
    assert ledger.summarize(repo, "HEAD", cache).actors["galph"].turns == 1001
    git(root, "reset", "--quiet", "--hard", "HEAD~3")  # the counted tip is gone
    fresh = ledger.summarize(repo, "HEAD", cache)
    assert (fresh.actors["galph"].turns, fresh.actors["ralph"].turns) == (9, 9)
    cache.write_text("{not json")
    assert ledger.summarize(repo, "HEAD", cache).actors == fresh.actors


def test_an_empty_repo_sums_to_nothing(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    assert ledger.summarize(Repo(tmp_path), "HEAD", tmp_path / "c.json") == ledger.Summary()

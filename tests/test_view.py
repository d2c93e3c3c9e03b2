"""The words of the watch view, from state objects this version's parser may not know yet."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tandem.view import lines, pause_words, plain
from tandem.watch import RunInfo, Snapshot

NOW = datetime(2026, 11, 22, 17, 40, 30, tzinfo=timezone.utc)


def _snap(state: dict[str, Any], **fields: Any) -> Snapshot:
    defaults: dict[str, Any] = {
        "where": "sync/state.json",
        "problem": None,
        "running": None,
        "run": None,
        "turns": (),
        "limits": {},
        "now": NOW,
    }
    return Snapshot(state=state, **{**defaults, **fields})


def test_spent_reads_against_the_budgets() -> None:
    state = {
        "iteration": 3,
        "expected_actor": "ralph",
        "status": "waiting-ralph",
        "spent": {"cost_usd": 12.5, "tokens": 1234567, "turns": 9},
    }
    words = lines(_snap(state, limits={"max_cost_usd": 50.0, "max_turns": 40}))
    assert words.spent == "spent $12.50 of $50.00 · 1,234,567 tokens · 9 turns of 40"
    assert words.status == "waiting for ralph (waiting-ralph)"


def test_a_pause_counts_down_and_a_lapsed_lease_says_so() -> None:
    pause = {"actor": "galph", "kind": "usage_limit", "until": "2026-11-22T20:40:00Z"}
    assert pause_words(pause, NOW) == (
        "paused: galph usage_limit until 20:40Z",
        "paused: galph usage_limit until 20:40Z (in 2h59m30s); the turn reruns then",
    )
    assert pause_words({"actor": "galph", "kind": "rate_limit"}, NOW)[1] == (
        "paused: galph rate_limit"
    )
    state = {
        "iteration": 1,
        "expected_actor": "galph",
        "status": "running-galph",
        "last_update": "2026-11-22T17:00:00Z",
        "lease_owner": "box:12",
        "lease_expires_at": "2026-11-22T17:30:00Z",
    }
    words = lines(_snap(state, run=RunInfo(1, 50, None)))
    assert words.headline == "iteration 1 · run 1 of 50 · galph's turn"
    assert words.status == "running: galph, 40m30s"  # from another clone: no prompt known
    assert words.lease == "lease box:12 · taken 40m30s ago · EXPIRED 10m30s ago"
    assert plain(_snap(state)) == "iteration 1 · galph's turn · running: galph · lease box:12"


def test_a_state_that_is_not_json_is_shown_not_fatal() -> None:
    snap = _snap({}, problem="the state file is not valid JSON (Expecting value)")
    assert lines(snap).status == "the state file is not valid JSON (Expecting value)"


def test_the_event_log_is_read_as_it_grows_and_again_when_it_is_cut(tmp_path: Path) -> None:
    from tandem.watch import Watcher

    events = tmp_path / "logs" / "main" / "events.jsonl"
    events.parent.mkdir(parents=True)
    watcher = Watcher(repo=None, state_path=tmp_path / "state.json", logs_folder=events.parent)
    events.write_text(json.dumps({"event": "run_start", "iteration": 3, "iterations": 10}) + "\n")
    assert watcher.snapshot().run == RunInfo(3, 10, None)
    with events.open("a") as handle:
        handle.write(json.dumps({"event": "stop", "reason": "lunch"}) + "\n")
        handle.write('{"event": "run_st')  # a line still being written is left for later
    assert watcher.snapshot().run == RunInfo(3, 10, "lunch")
    events.write_text(json.dumps({"event": "run_start", "iteration": 1, "iterations": 2}) + "\n")
    assert watcher.snapshot().run == RunInfo(1, 2, None)

"""The report reads this machine's events too (docs/events.md): pauses, retries, errors,
turns without a receipt; never a turn twice, and a bad line is skipped and counted."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import browser
from helpers import make_host, open_test_host, tandem
from scripted import FastInterrupt, Outcome, ScriptedExecutor
from tandem import report_events
from tandem.execution import FailureKind
from tandem.orchestrator import run_combined
from tandem.receipts import Receipt
from tandem.router import RouterContext

BAD_LINES = [
    "not json at all\n",
    '["a list"]\n',
    json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "turn_end", "actor": "bob"}) + "\n",
    json.dumps({"ts": "yesterday", "event": "retry", "actor": "galph"}) + "\n",
    json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "pause", "actor": "galph"}) + "\n",
]


def _loop(root: Path) -> Path:
    """A real loop: galph's first run hits a usage limit (a pause with its own receipt),
    the rerun fails once with a transient error (a retry), then both turns succeed."""
    host = open_test_host(root)
    script = {
        "galph": [Outcome(FailureKind.USAGE_LIMIT, reset_in=1.0), Outcome(FailureKind.TRANSIENT)]
    }
    agent = ScriptedExecutor(root, script)
    ctx = RouterContext.from_config(host.config)
    assert run_combined(host, ctx, agent, iterations=1, interrupt=FastInterrupt()) == 0
    events: Path = host.log.events_path
    return events


def _event(name: str, ts: str, /, **fields: object) -> str:
    record = {"ts": ts, "event": name, "host": "here", "pid": 1, **fields}
    return json.dumps(record) + "\n"


def _soon(minutes: int) -> str:
    """A time just after the loop's turns, as the event log writes times."""
    later = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return later.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _count(dom: str, wanted: str) -> int:
    return browser.count(dom, "timeline", wanted)


def test_events_add_pauses_retries_errors_and_unreceipted_turns_once(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  retries: 1\n")
    events = _loop(host.root)
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds.count("turn_end") == 3  # each turn's event, and each has a receipt too
    assert (kinds.count("pause"), kinds.count("retry")) == (1, 1)
    with events.open("a") as out:
        out.writelines(BAD_LINES)
        out.write(
            _event(
                "turn_end", _soon(10), actor="ralph", iteration=2,
                status="failed", kind="agent", prompt="main.md", agent="fake",
                failure="the tree changed under the turn", duration_secs=30.0, log=None,
            )
        )  # fmt: skip
        out.write(
            _event("error", _soon(11), actor="ralph", iteration=2,
                   error="git push was refused", kind="GitError")
        )  # fmt: skip
    done = tandem(host.root, "report", "-o", "report.html", env=host.env())
    assert done.code == 0, done.err
    assert done.out.rstrip().endswith(
        "(3 turns, 0 failed, 1 paused, 5 unreadable event lines skipped)"
    )
    page = browser.render(host.root / "report.html")
    assert page.console == []
    dom = page.dom
    assert _count(dom, "turn") == 4  # three receipts, one turn the events alone know
    assert _count(dom, "here-only") == 1
    assert _count(dom, "pause") == 1  # the paused turn's receipt
    assert _count(dom, "pause-span") == 1  # and the wait its event tells of
    assert _count(dom, "mark") == 2  # the retried attempt and the run error
    (span,) = re.findall(r'class="pause-span" id="pause-0"><title>(.*?)</title>', dom, re.S)
    assert span.startswith("galph paused (usage_limit) until ")
    here = re.search(r'<table id="here">.*?</table>', dom, re.S)
    assert here
    row = (
        r'<tr><td>[^<]*</td><td>(\w+)</td><td class="num">\d*</td>\s*<td class="\w+">([\w:]+)</td>'
    )
    rows = re.findall(row, here[0])
    assert rows == [("galph", "pause:usage_limit"), ("galph", "retry"), ("ralph", "error")]
    assert "until 20" in here[0]
    assert "git push was refused" in here[0]
    problems = re.search(r'<table id="problems">.*?</table>', dom, re.S)
    assert problems
    assert "the tree changed under the turn (no receipt: this machine" in problems[0]
    assert "pause:usage_limit" in problems[0]
    actors = re.search(r'<table id="totals-actor">.*?</table>', dom, re.S)
    assert actors
    counted = dict(re.findall(r'<tr><td>(\w+)</td><td class="num">(\d+)</td>', actors[0]))
    assert counted == {"galph": "2", "ralph": "1"}  # totals: the receipts only
    assert "5 event lines could not be read" in dom


def test_since_leaves_out_the_events_before_it(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="  retries: 1\n")
    events = _loop(host.root)
    with events.open("a") as out:
        out.write(_event("error", "2001-01-01T00:00:00.000Z", actor=None, iteration=None,
                         error="long ago", kind="GitError"))  # fmt: skip
    first = tandem(host.root, "report", "-o", "all.html", env=host.env())
    assert first.code == 0, first.err
    assert "long ago" in (host.root / "all.html").read_text()
    since = tandem(host.root, "report", "--since", "HEAD~1", "-o", "since.html", env=host.env())
    assert since.code == 0, since.err
    text = (host.root / "since.html").read_text()
    assert "long ago" not in text
    assert "(1 turns, 0 failed, 0 paused)" in since.out
    assert text.count('class="turn ') == 1  # the events of the older turns are not redrawn


def test_a_turn_without_a_log_is_matched_by_actor_iteration_and_result(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    turn = {"actor": "galph", "iteration": 3, "status": "failed", "kind": "agent", "log": None}
    events.write_text(
        _event("turn_end", "2026-01-01T00:00:00.000Z", **turn)
        + _event("turn_end", "2026-01-01T00:01:00.000Z", **{**turn, "iteration": 4})
        + _event("turn_end", "2026-01-01T00:02:00.000Z", **{**turn, "iteration": True})
        + "\n"  # a blank line is not an event, and not a bad one either
    )
    known = [Receipt("galph", 3, "fail:agent")]
    seen = report_events.read(events, known, root=tmp_path)
    assert [(t.iteration, t.result) for t in seen.turns] == [(4, "fail:agent")]
    assert seen.malformed == 1  # iteration true
    later = report_events.read(events, known, root=tmp_path, after=1767225661.0)
    assert (later.turns, later.malformed) == ([], 1)  # only the line at 00:02 is read

"""``tandem report`` (SPEC §17): one HTML file, opened in headless Chromium with no network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import browser
import synthetic_history
from helpers import git, make_host, tandem
from sync_history import run_pair
from tandem import cli, ledger, receipts
from tandem.git import Repo


def _report(root: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    done = tandem(root, "report", "-o", "report.html", *args, env=env)
    assert done.code == 0, done.err
    assert done.out.startswith(f"tandem: report: {root / 'report.html'}")
    return root / "report.html"


def _bars(dom: str) -> int:
    """Turns drawn on the timeline: one SVG element each, of class ``turn``."""
    return browser.count(dom, "timeline", "turn")


def _charts(dom: str) -> list[int]:
    """The SVG charts drawn in each of the page's three chart boxes."""
    return [browser.count(dom, chart, "chart-svg") for chart in ("timeline", "durations", "costs")]


def test_a_real_loop_renders_offline_with_one_bar_per_turn_and_its_totals(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path)
    host.plan({"default": {"write": {"input.md": "x\n"}}, "ralph:2": {"exit": 4}})
    tandem(host.root, "run", "--iterations", "2", env=host.env())
    page = browser.render(_report(host.root))
    assert page.console == []
    assert "<script" not in page.dom  # drawn when written: nothing runs in the browser
    assert _charts(page.dom) == [1, 1, 1]
    assert _bars(page.dom) == 4
    assert browser.count(page.dom, "timeline", "fail") == 1
    assert browser.count(page.dom, "durations", "chart-svg") == 1
    assert 'id="durations-galph"' in page.dom
    assert 'id="durations-ralph"' in page.dom
    history = receipts.read(Repo(host.root))
    totals = ledger.totals(history.receipts, "actor")
    for actor, total in totals.items():
        row = re.search(rf"<tr><td>{actor}</td><td class=\"num\">(\d+)</td>", page.dom)
        assert row
        assert int(row[1]) == total.turns == 2
    failed = re.search(r'<table id="problems">.*?</table>', page.dom, re.S)
    assert failed
    assert "fail:agent" in failed[0]
    assert "exited with 4" in failed[0]
    log = history.receipts[-1].log
    assert log
    assert f'href="{(host.root / log).resolve().as_uri()}"' in failed[0]
    # each bar: its result as a class, its details as a hover title, a link to its log
    bars = re.findall(
        r'<a href="file://[^"]+" class="turn (\w+)" id="turn-\d+"><title>(.*?)</title>',
        page.dom,
        re.S,
    )
    assert sorted(outcome for outcome, _ in bars) == ["fail", "ok", "ok", "ok"]
    (title,) = [text for outcome, text in bars if outcome == "fail"]
    assert title.startswith("i2 ralph main.md (fake)\nfail:agent, ")
    assert "exited with 4" in title


def test_a_sync_history_of_two_clones_shows_both_actors(tmp_path: Path) -> None:
    pair = run_pair(tmp_path, 2)
    galph = pair.clones["galph"].root
    git(galph, "pull", "--quiet", "--ff-only")
    page = browser.render(_report(galph))
    assert page.console == []
    assert _bars(page.dom) == 4
    actors = re.search(r'<table id="totals-actor">.*?</table>', page.dom, re.S)
    assert actors
    assert re.findall(r"<tr><td>(\w+)</td>", actors[0]) == ["galph", "ralph"]
    # ralph's logs live on the other machine: named, not linked
    assert "logs/main/galph/" in page.dom


def test_a_history_without_receipts_says_so(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    git(root, "init", "--quiet")
    git(root, "commit", "--quiet", "--allow-empty", "-m", "[SYNC i=1]\n\nTandem-Log: a.log")
    page = browser.render(_report(root))
    assert 'id="empty"' in page.dom
    assert page.console == []
    assert _bars(page.dom) == 0


def test_malformed_receipts_are_counted_on_the_page(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    git(root, "init", "--quiet")
    git(root, "commit", "--quiet", "--allow-empty", "-m", "t\n\nTandem-Actor: x\nTandem-Result: ok")
    done = tandem(root, "report", "-o", "r.html")
    assert done.code == 0
    assert "1 unreadable receipts skipped" in done.out
    assert "1 commits carry receipts that could not be read" in (root / "r.html").read_text()


def test_an_empty_repo_gets_an_empty_report(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    assert "(0 turns, 0 failed, 0 paused)" in tandem(tmp_path, "report").out
    assert (tmp_path / "logs" / "report.html").exists()  # git ignores logs/ in a host


def test_bad_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "first")
    since = tandem(repo, "report", "--since", "nope")
    assert (since.code, since.err) == (
        1,
        "tandem: error: --since nope: no such commit here; "
        "give a commit, tag or branch that exists (see git log --oneline)\n",
    )
    outside = tmp_path / "plain"
    outside.mkdir()
    done = tandem(outside, "report")
    assert done.code == 1
    assert done.err.startswith("tandem: error: ")
    assert "not a git work tree" in done.err
    assert len(done.err.splitlines()) == 1


def test_since_leaves_out_the_earlier_turns(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    tandem(host.root, "run", env=host.env())
    mark = git(host.root, "rev-parse", "HEAD").strip()
    tandem(host.root, "run", env=host.env())
    done = tandem(host.root, "report", "--since", mark, "-o", "r.html")
    assert "(2 turns, 0 failed, 0 paused)" in done.out


def test_without_the_report_extra_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    git(tmp_path, "init", "--quiet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "jinja2", None)  # what an install without the extra has
    assert cli.main(["report"]) == 1
    assert capsys.readouterr().err == (
        "tandem: error: tandem report needs Jinja2, which is not installed; "
        "install it with: pip install 'tandem[report]' (Jinja2 and matplotlib)\n"
    )
    monkeypatch.delitem(sys.modules, "jinja2")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert cli.main(["report"]) == 1
    assert capsys.readouterr().err == (
        "tandem: error: tandem report needs matplotlib, which is not installed; "
        "install it with: pip install 'tandem[report]' (Jinja2 and matplotlib)\n"
    )


def test_the_demo_ends_by_writing_its_report(tmp_path: Path) -> None:
    done = tandem(tmp_path, "demo", str(tmp_path / "demo"), "--iterations", "1")
    assert done.code == 0, done.err
    report = tmp_path / "demo" / "logs" / "report.html"
    assert done.out.rstrip().splitlines()[-1] == (
        f"tandem: report: {report} (2 turns, 0 failed, 0 paused)"
    )
    page = browser.render(report)
    assert (_charts(page.dom), _bars(page.dom), page.console) == ([1, 1, 1], 2, [])


def test_a_huge_history_keeps_the_page_light(tmp_path: Path) -> None:
    synthetic_history.build(tmp_path / "big", 3000)
    html = _report(tmp_path / "big").read_text()
    problems = re.search(r'<table id="problems">.*?</table>', html, re.S)
    assert problems
    assert problems[0].count("<tr>") == 1 + 500  # the header and the latest 500
    assert "The latest 500 of 626;" in html
    assert "3000 turns: 2374 ok" in html

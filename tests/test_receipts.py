"""Receipts in git (SPEC §15): written on every turn commit, read back from any clone."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import synthetic_history
from helpers import git, make_host, tandem
from sync_history import run_pair
from tandem import ledger, receipts
from tandem.execution import AgentResult, Status
from tandem.git import Repo
from tandem.receipts import Receipt, Tokens
from tandem.runner import TurnResult

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _commit(root: Path, message: str) -> None:
    git(root, "commit", "--quiet", "--allow-empty", "-m", message)


@given(
    st.builds(
        Receipt,
        actor=st.sampled_from(["galph", "ralph"]),
        iteration=st.integers(1, 10**6),
        result=st.sampled_from(["ok", "fail:agent", "pause:usage_limit", "fail:timeout"]),
        prompt=st.one_of(st.none(), st.sampled_from(["main.md", "supervisor.md"])),
        route=st.one_of(st.none(), st.sampled_from(["deterministic", "router"])),
        agent=st.one_of(st.none(), st.sampled_from(["claude", "codex", "dry-run"])),
        cost_usd=st.one_of(st.none(), st.floats(0, 1000).map(lambda v: round(v, 6))),
        tokens=st.one_of(st.none(), st.builds(Tokens, *[st.integers(0, 10**9)] * 3)),
        duration=st.one_of(st.none(), st.floats(0, 10**5).map(lambda v: round(v, 1))),
        agent_version=st.one_of(st.none(), st.just("2.1.330")),
        model=st.one_of(st.none(), st.just("opus")),
        log=st.one_of(st.none(), st.just("logs/main/galph/iter-00001_x.log")),
        reason=st.one_of(st.none(), st.just("exited with 2")),
        commit=st.just(""),
        time=st.just(0),
    ).filter(lambda r: r.agent or not r.agent_version)  # a version belongs to an agent
)
def test_the_parser_reads_what_the_formatter_writes(receipt: Receipt) -> None:
    lines = receipts.trailers(receipt)
    values = dict(line.removeprefix("Tandem-").split(": ", 1) for line in lines)
    assert receipts.parse(values) == receipt


def test_a_turn_result_becomes_a_receipt_with_the_router_run_billed_to_it() -> None:
    turn = TurnResult(
        "galph",
        4,
        Status.OK,
        T0,
        T0 + timedelta(seconds=12.34),
        prompt="supervisor.md",
        source="router",
        agent="claude",
        log_path="logs/main/galph/x.log",
        agent_result=AgentResult(
            cost_usd=0.25,
            usage={"input_tokens": 10, "cache_read_input_tokens": 7, "output_tokens": 3},
        ),
    )
    router = AgentResult(cost_usd=0.5, usage={"input_tokens": 1, "output_tokens": 2})
    receipt = receipts.from_turn(
        turn,
        versions={"claude": "2.1.330 (Claude Code)"},
        args={"claude": ("--model", "opus")},
        router=router,
    )
    assert receipts.trailers(receipt) == [
        "Tandem-Actor: galph",
        "Tandem-Iteration: 4",
        "Tandem-Prompt: supervisor.md",
        "Tandem-Route: router",
        "Tandem-Agent: claude 2.1.330",
        "Tandem-Model: opus",
        "Tandem-Result: ok",
        "Tandem-Duration: 12.3",
        "Tandem-Cost-USD: 0.750000",
        "Tandem-Tokens: in=11 out=5 cached=7",
        "Tandem-Log: logs/main/galph/x.log",
    ]


def test_failures_today_are_of_kind_agent_or_interrupted() -> None:
    failed = TurnResult("ralph", 1, Status.FAILED, T0, T0, failure="exited with\n2")
    stopped = TurnResult("ralph", 1, Status.INTERRUPTED, T0, T0)
    assert receipts.result_of(failed) == "fail:agent"
    assert receipts.result_of(stopped) == "fail:interrupted"
    assert "Tandem-Failure: exited with 2" in receipts.trailers(receipts.from_turn(failed))


def test_every_turn_commit_of_a_real_run_carries_its_receipt(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"default": {"write": {"input.md": "x\n"}}, "ralph:2": {"exit": 3}})
    assert tandem(host.root, "run", "--iterations", "2", env=host.env()).code == 1
    history = receipts.read(Repo(host.root))
    got = [(r.actor, r.iteration, r.result, r.agent, r.prompt) for r in history.receipts]
    assert got == [
        ("galph", 1, "ok", "fake", "supervisor.md"),
        ("ralph", 1, "ok", "fake", "main.md"),
        ("galph", 2, "ok", "fake", "supervisor.md"),
        ("ralph", 2, "fail:agent", "fake", "main.md"),
    ]
    assert all(r.log and (host.root / r.log).exists() for r in history.receipts)
    assert all(r.duration is not None and r.route == "deterministic" for r in history.receipts)
    assert history.receipts[-1].reason == "exited with 3"
    assert history.malformed == []


def test_malformed_receipts_are_skipped_and_counted_and_old_commits_ignored(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "--quiet")
    _commit(root, "user's own commit")
    _commit(root, "[SYNC i=1] actor=galph status=ok\n\nTandem-Log: logs/old.log")
    good = "\n".join(receipts.trailers(Receipt("galph", 1, "ok", cost_usd=0.5)))
    _commit(root, f"turn\n\n{good}")
    for bad in (
        "Tandem-Actor: bob\nTandem-Iteration: 1\nTandem-Result: ok",
        "Tandem-Actor: ralph\nTandem-Iteration: one\nTandem-Result: ok",
        "Tandem-Actor: ralph\nTandem-Iteration: 1\nTandem-Result: maybe",
        "Tandem-Actor: ralph\nTandem-Iteration: 1\nTandem-Result: ok\nTandem-Cost-USD: nan",
        "Tandem-Actor: ralph\nTandem-Iteration: 1\nTandem-Result: ok\nTandem-Tokens: lots",
        "Tandem-Actor: ralph\nTandem-Result: ok",
    ):
        _commit(root, f"turn\n\n{bad}")
    history = receipts.read(Repo(root))
    assert [(r.actor, r.cost_usd) for r in history.receipts] == [("galph", 0.5)]
    assert len(history.malformed) == 6
    assert "Tandem-Actor 'bob'" in history.malformed[0]
    assert "no Tandem-Iteration trailer" in history.malformed[-1]


def test_an_empty_repo_has_no_receipts(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    assert receipts.read(Repo(tmp_path)) == receipts.History()


def test_totals_group_receipts_and_count_turns_without_cost() -> None:
    found = ledger.totals(
        [
            Receipt("galph", 1, "ok", agent="claude", cost_usd=0.25, tokens=Tokens(1, 2, 3)),
            Receipt("ralph", 1, "fail:agent", agent="codex", tokens=Tokens(10, 20, 0)),
            Receipt("ralph", 1, "pause:usage_limit", agent="claude", cost_usd=0.5),
        ],
        "agent",
    )
    assert found["claude"].to_json()["cost_usd"] == 0.75
    assert (found["claude"].turns, found["claude"].paused) == (2, 1)
    assert (found["codex"].failed, found["codex"].unpriced) == (1, 1)
    assert found["codex"].tokens.total == 30


def test_a_huge_history_reads_fast(tmp_path: Path) -> None:
    synthetic_history.build(tmp_path / "big", 3000)
    started = time.perf_counter()
    history = receipts.read(Repo(tmp_path / "big"))
    took = time.perf_counter() - started
    assert len(history.receipts) == 3000
    assert history.receipts[-1].iteration == 1500
    assert took < 2.0  # 10,000 in about 0.4 s on the reference machine (bench/report_scale.py)


@pytest.mark.parametrize(
    ("answer", "version"),
    [("2.1.330 (Claude Code)", "2.1.330"), ("codex-cli 0.128.0", "0.128.0"), ("", None)],
)
def test_versions_are_read_from_what_the_agent_said(answer: str, version: str | None) -> None:
    assert receipts.version_of(answer) == version


def test_status_on_a_third_clone_totals_both_machines_turns(tmp_path: Path) -> None:
    pair = run_pair(tmp_path, 2)
    git(tmp_path, "clone", "--quiet", str(pair.remote), "third")
    views = [
        json.loads(tandem(root, "status", "--json").out)
        for root in (tmp_path / "third", pair.clones["galph"].root)
    ]
    for view in views:
        assert view["totals_from"] == "origin/main"
        assert {k: v["turns"] for k, v in view["actors"].items()} == {"galph": 2, "ralph": 2}
        assert view["agents"]["fake"]["unpriced_turns"] == 4
    assert views[0]["actors"] == views[1]["actors"]
    text = tandem(tmp_path / "third", "status").out
    assert "galph: 2 turns (0 failed, 0 paused)" in text
    assert "fake reports no cost" in text


def test_status_passes_on_the_spent_totals_the_state_keeps(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    tandem(host.root, "run", env=host.env())
    state = host.state()
    state["spent"] = {"cost_usd": 2.5, "tokens": 900, "turns": 2}
    (host.root / "sync" / "state.json").write_text(json.dumps(state))
    view = json.loads(tandem(host.root, "status", "--json", env=host.env()).out)
    assert view["local"]["spent"] == {"cost_usd": 2.5, "tokens": 900, "turns": 2}
    assert view["local"]["pause"] is None
    assert view["totals_from"] == "HEAD"

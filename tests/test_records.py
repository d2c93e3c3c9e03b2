"""The pieces of a turn's record: the field-by-field state merge, finished-turn
recognition, the commit-subject grammar, and temp files of interrupted writes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tandem.files import atomic_write, temp_files
from tandem.lease import Owner
from tandem.state import Actor, Failure, State, merge
from tandem.subjects import claim_subject, parse_subject, stop_subject, turn_subject

NOW = datetime(2026, 1, 20, 3, 29, 29, tzinfo=timezone.utc)
RUNNING = State(iteration=2, status="running-galph", lease_owner="a:1", lease_expires_at="x")


def test_merge_keeps_the_turns_fields_and_the_other_sides_stop_and_keys() -> None:
    turn = RUNNING.succeed("galph", NOW, "abc")
    turn = dataclasses.replace(turn, extra={"agent_note": 1})
    other = dataclasses.replace(RUNNING, exit=True, exit_reason="lunch", extra={"human": 2})
    merged = merge(turn, other, RUNNING)
    assert merged.protocol_fields() == turn.protocol_fields()
    assert (merged.exit, merged.exit_reason) == (True, "lunch")
    assert dict(merged.extra) == {"agent_note": 1, "human": 2}


def test_merge_does_not_bring_back_a_stop_the_turn_already_honoured() -> None:
    base = dataclasses.replace(RUNNING, exit=True, exit_reason="lunch")
    honoured = base.with_stop(None)
    assert merge(honoured, base, base).exit is False  # the other side did not change it
    assert merge(honoured, base).exit is True  # without a base, a stop is never lost


def test_merge_drops_a_key_the_other_side_deleted() -> None:
    base = dataclasses.replace(RUNNING, extra={"old": 1})
    other = dataclasses.replace(RUNNING, extra={})
    assert dict(merge(base, other, base).extra) == {}


def test_finished_turn_recognises_one_step_of_the_protocol() -> None:
    galph_ok = RUNNING.succeed("galph", NOW, None)
    assert galph_ok.finished_turn(RUNNING) == ("galph", True)
    assert galph_ok.finished_turn(State(iteration=2, status="complete")) == ("galph", True)
    ralph_running = galph_ok.begin("ralph", Owner("a", 1), NOW, 60)
    assert ralph_running.succeed("ralph", NOW, None).finished_turn(galph_ok) == ("ralph", True)
    failed = RUNNING.fail(Failure("galph", 2, None, "boom", None), NOW)
    assert failed.finished_turn(RUNNING) == ("galph", False)
    assert failed.finished_turn(failed) is None  # already recorded
    assert RUNNING.finished_turn(State(iteration=2)) is None  # begun, not finished
    assert galph_ok.finished_turn(State(iteration=1)) is None  # not one step


@given(
    iteration=st.integers(min_value=1, max_value=10**9),
    ok=st.booleans(),
    actor=st.sampled_from(["galph", "ralph"]),
    prompt=st.one_of(st.none(), st.sampled_from(["main.md", "supervisor.md", "x y.md"])),
)
def test_subject_grammar_round_trips(iteration: int, ok: bool, actor: str, prompt: str) -> None:
    who: Actor = "galph" if actor == "galph" else "ralph"
    after = State(iteration=iteration, expected_actor=who, galph_commit="abc", ralph_commit="d")
    parsed = parse_subject(turn_subject(who, ok, after, prompt))
    assert parsed is not None
    assert (parsed.iteration, parsed.actor, parsed.status) == (
        iteration,
        who,
        "ok" if ok else "fail",
    )
    claim = parse_subject(claim_subject(dataclasses.replace(after, status=f"running-{who}")))
    assert claim is not None
    assert (claim.actor, claim.status) == (who, "running")


def test_subjects_that_are_not_turns_do_not_parse() -> None:
    for text in (
        stop_subject(3, "status=running", requested=True),
        "[SYNC init] actor=galph status=idle",
        "[SYNC i=1] actor=galph status=running and more",
        "[SYNC i=1] actor=galph status=okay",
        "fix: actor=galph status=ok",
    ):
        assert parse_subject(text) is None, text


def test_temp_files_are_the_leftovers_of_interrupted_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"{}")
    assert temp_files(path) == []
    (tmp_path / ".state.json.abc.tmp").write_text("{")
    (tmp_path / ".other.json.abc.tmp").write_text("{")
    assert temp_files(path) == [tmp_path / ".state.json.abc.tmp"]

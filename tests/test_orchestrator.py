"""Combined mode (SPEC §7) and the shared turn functions, on real git repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import ANY, StubExecutor, assert_line, git, make_host, open_test_host
from tandem.errors import TurnFailed
from tandem.execution import ExecResult, TurnContext
from tandem.host import Policy
from tandem.interrupts import Interrupt
from tandem.orchestrator import run_async_role, run_combined
from tandem.router import RouterContext

CADENCE_2 = "router:\n  enabled: true\n  review_every_n: 2\n"


def combined(root: Path, iterations: int, executor: StubExecutor, **flags: object) -> int:
    host = open_test_host(root, **flags)
    ctx = RouterContext.from_config(host.config)
    return run_combined(host, ctx, executor, iterations=iterations, interrupt=Interrupt())


def test_combined_sequence(tmp_path: Path) -> None:
    """galph then ralph each iteration; the review cadence runs on galph's turn."""
    host = make_host(tmp_path, CADENCE_2)
    stub = StubExecutor(host.root)
    assert combined(host.root, 4, stub) == 0
    assert stub.turns() == [
        ("galph", 1, "supervisor.md"),
        ("ralph", 1, "main.md"),
        ("galph", 2, "reviewer.md"),
        ("ralph", 2, "main.md"),
        ("galph", 3, "supervisor.md"),
        ("ralph", 3, "main.md"),
        ("galph", 4, "reviewer.md"),
        ("ralph", 4, "main.md"),
    ]
    state = host.state()
    assert (state["iteration"], state["expected_actor"], state["status"]) == (
        5,
        "galph",
        "complete",
    )
    subjects = host.subjects()[1:]
    assert len(subjects) == 8  # one commit per turn
    assert subjects[0].startswith(
        "[SYNC i=1] actor=galph → next=ralph status=ok prompt=supervisor.md"
    )
    assert subjects[1].startswith("[SYNC i=2] actor=ralph → next=galph status=ok prompt=main.md")
    assert host.dirty() == []


def test_review_cadence_single(tmp_path: Path) -> None:
    """With a hit on every iteration, the reviewer runs once per iteration, never for ralph."""
    host = make_host(tmp_path, "router:\n  enabled: true\n  review_every_n: 1\n")
    stub = StubExecutor(host.root)
    combined(host.root, 3, stub)
    reviews = [(actor, i) for actor, i, prompt in stub.turns() if prompt == "reviewer.md"]
    assert reviews == [("galph", 1), ("galph", 2), ("galph", 3)]
    assert [p for a, _, p in stub.turns() if a == "ralph"] == ["main.md"] * 3


def test_router_override_galph_only(tmp_path: Path) -> None:
    """The router prompt is asked on galph's turns only; ralph keeps the deterministic route."""
    host = make_host(tmp_path, "router:\n  enabled: true\n  prompt: router.md\n  mode: only\n")
    stub = StubExecutor(host.root, router_answer="reviewer.md")
    combined(host.root, 2, stub)
    assert [(c.actor, c.purpose) for c in stub.calls if c.purpose == "router"] == [
        ("galph", "router"),
        ("galph", "router"),
    ]
    assert stub.turns() == [
        ("galph", 1, "reviewer.md"),
        ("ralph", 1, "main.md"),
        ("galph", 2, "reviewer.md"),
        ("ralph", 2, "main.md"),
    ]
    assert host.state()["last_prompt"] == "main.md"


def test_router_disabled_uses_actor_prompts(tmp_path: Path) -> None:
    """Router off: cadence and router prompt are ignored; plain supervisor/main alternation."""
    config = "router:\n  enabled: false\n  review_every_n: 1\n  prompt: router.md\n"
    host = make_host(tmp_path, config)
    stub = StubExecutor(host.root, router_answer="reviewer.md")
    combined(host.root, 2, stub)
    assert [c.purpose for c in stub.calls] == ["turn"] * 4
    assert [p for _, _, p in stub.turns()] == ["supervisor.md", "main.md"] * 2
    assert "last_prompt" not in host.state() or host.state()["last_prompt"] is None


def test_failed_galph_turn_stops_at_once_with_one_line(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    stub = StubExecutor(host.root, fail={("galph", 2)})
    with pytest.raises(TurnFailed) as caught:
        combined(host.root, 3, stub)
    message = str(caught.value)
    assert_line(
        message,
        "galph turn failed at iteration 2 (prompt supervisor.md, agent stub): exited with 2; "
        f"log: logs/main/galph/iter-00002_{ANY}_supervisor.log",
    )
    state = host.state()
    assert (state["expected_actor"], state["status"], state["iteration"]) == ("galph", "failed", 2)
    assert state["failure"]["reason"] == "exited with 2"
    assert host.subjects()[-1] == "[SYNC i=2] actor=galph status=fail prompt=supervisor.md"
    assert len(stub.turns()) == 3  # no retry


def test_restart_after_a_ralph_failure_resumes_with_ralph(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    first = StubExecutor(host.root, fail={("ralph", 1)})
    with pytest.raises(TurnFailed):
        combined(host.root, 1, first)
    second = StubExecutor(host.root)
    combined(host.root, 1, second)
    assert second.turns() == [("ralph", 1, "main.md")]
    assert host.state()["iteration"] == 2
    assert host.state()["failure"] is None


def test_missing_prompt_file_marks_the_turn_failed(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    (host.root / "prompts" / "supervisor.md").unlink()
    stub = StubExecutor(host.root)
    with pytest.raises(TurnFailed, match=r"routing failed: prompt 'supervisor\.md' rejected"):
        combined(host.root, 1, stub)
    assert stub.calls == []
    assert host.state()["status"] == "failed"
    assert "rule 4" in host.state()["failure"]["reason"]


def test_stop_request_before_a_turn_stops_cleanly_and_is_cleared(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.put_state(
        {
            "iteration": 1,
            "expected_actor": "galph",
            "status": "idle",
            "exit": True,
            "exit_reason": "weekend",
        }
    )
    stub = StubExecutor(host.root)
    assert combined(host.root, 3, stub) == 0
    assert stub.calls == []
    assert "exit" not in host.state()
    assert host.subjects()[-1] == "[SYNC i=1] stop: weekend"
    stub_again = StubExecutor(host.root)
    combined(host.root, 1, stub_again)
    assert len(stub_again.turns()) == 2  # the next start runs again


def test_stop_written_during_a_turn_stops_right_after_it(tmp_path: Path) -> None:
    host = make_host(tmp_path)

    class Stopper(StubExecutor):
        def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
            import json

            done = super().execute(prompt_path, turn)
            path = self.root / "sync" / "state.json"
            data = json.loads(path.read_text())
            data.update(exit=True, exit_reason="agent says done", agent_note="kept")
            path.write_text(json.dumps(data))
            return done

    stub = Stopper(host.root)
    assert combined(host.root, 3, stub) == 0
    assert len(stub.turns()) == 1
    state = host.state()
    assert "exit" not in state
    assert state["agent_note"] == "kept"  # keys the agent added survive
    assert state["expected_actor"] == "ralph"


def test_autocommit_skips_ignored_files_and_commits_deletions(tmp_path: Path) -> None:
    host = make_host(tmp_path, files={"old.txt": "x", ".gitignore": "logs/\nsecret.env\n"})

    class Worker(StubExecutor):
        def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
            done = super().execute(prompt_path, turn)
            (self.root / "secret.env").write_text("TOKEN=1")
            (self.root / "old.txt").unlink(missing_ok=True)
            (self.root / "new" / "deep").mkdir(parents=True, exist_ok=True)
            (self.root / "new" / "deep" / "file.py").write_text("print(1)")
            return done

    combined(host.root, 1, Worker(host.root), overrides={"autocommit.galph": ["nothing"]})
    tracked = git(host.root, "ls-files").split()
    assert "secret.env" not in tracked
    assert "old.txt" not in tracked
    assert "new/deep/file.py" in tracked
    assert "input.md" in tracked  # galph's file left for ralph's "**" to commit
    assert host.dirty() == []


def test_galph_globs_leave_other_paths_dirty_with_a_warning(tmp_path: Path) -> None:
    host = make_host(tmp_path)

    class Sloppy(StubExecutor):
        def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
            done = super().execute(prompt_path, turn)
            if turn.actor == "galph":
                (self.root / "plans" / "a").mkdir(parents=True, exist_ok=True)
                (self.root / "plans" / "x.md").write_text("plan")
                (self.root / "plans" / "a" / "y.md").write_text("plan")
                (self.root / "code.py").write_text("oops")
            return done

    host_obj = open_test_host(host.root)
    ctx = RouterContext.from_config(host_obj.config)
    run_async_role(host_obj, "galph", ctx, Sloppy(host.root), iterations=1, interrupt=Interrupt())
    last = git(host.root, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(last) == ["input.md", "plans/a/y.md", "plans/x.md", "sync/state.json"]
    assert host.dirty() == ["?? code.py"]
    assert "may not commit: code.py" in host_obj.console.err.getvalue()


def test_strict_tree_fails_the_turn_and_discards_nothing(tmp_path: Path) -> None:
    host = make_host(tmp_path)

    class Sloppy(StubExecutor):
        def execute(self, prompt_path: Path, turn: TurnContext) -> ExecResult:
            (self.root / "code.py").write_text("oops")
            return super().execute(prompt_path, turn)

    with pytest.raises(TurnFailed, match=r"left dirty paths it may not commit: code\.py"):
        combined(host.root, 1, Sloppy(host.root), policy=Policy(strict_tree=True))
    assert (host.root / "code.py").read_text() == "oops"
    assert host.state()["status"] == "failed"


def test_async_role_mode_runs_back_to_back_turns(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host_obj = open_test_host(host.root)
    ctx = RouterContext.from_config(host_obj.config)
    stub = StubExecutor(host.root)
    run_async_role(host_obj, "ralph", ctx, stub, iterations=3, interrupt=Interrupt())
    assert stub.turns() == [
        ("ralph", 1, "main.md"),
        ("ralph", 2, "main.md"),
        ("ralph", 3, "main.md"),
    ]
    assert host.state()["iteration"] == 4


def test_no_git_writes_state_but_commits_nothing(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    before = host.subjects()
    combined(host.root, 1, StubExecutor(host.root), use_git=False)
    assert host.subjects() == before
    assert host.state()["iteration"] == 2

"""Workflows of N steps (SPEC §18): real hosts, the fake agent, tandem as a child process."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from helpers import HostRepo, git, make_host, make_pair, remote_file, snapshot, start_tandem, tandem
from tandem.state import Next, State

FOUR = """workflow:
  name: plan-build-review
  steps:
    plan-build-review:
      - {actor: galph, prompt: plan.md}
      - {actor: ralph, prompt: main.md}
      - {actor: galph, prompt: review.md}
      - {actor: ralph, prompt: fix.md}
"""
STEP_PROMPTS = {f"prompts/{name}": f"# {name}\n" for name in ("plan.md", "review.md", "fix.md")}
TRACE = [("galph", "plan.md"), ("ralph", "main.md"), ("galph", "review.md"), ("ralph", "fix.md")]


def tracked(host: HostRepo) -> dict[str, bytes]:
    """The host's files and HEAD, without the git-ignored logs (events record errors)."""
    return {k: v for k, v in snapshot(host.root).items() if not k.startswith("logs/")}


def four_step_host(tmp_path: Path, extra: str = "") -> HostRepo:
    return make_host(tmp_path, FOUR + extra, files=STEP_PROMPTS)


def run(host: HostRepo, *args: str) -> tuple[int, str]:
    done = tandem(host.root, "run", *args, env=host.env())
    return done.code, done.out + done.err


def stamps(host: HostRepo) -> list[str]:
    return [s.split(" galph_commit")[0].split(" ralph_commit")[0] for s in host.subjects()[1:]]


def test_four_steps_run_in_order_over_several_iterations(tmp_path: Path) -> None:
    host = four_step_host(tmp_path)
    code, out = run(host, "--iterations", "2")
    assert code == 0, out
    assert host.turns() == TRACE * 2
    assert [c["iteration"] for c in host.calls()] == [1, 1, 1, 1, 2, 2, 2, 2]
    nexts = ["ralph", "galph", "ralph", "galph"]
    expected = []
    for i in (1, 2):
        for (actor, prompt), after, ends in zip(TRACE, nexts, (0, 0, 0, 1), strict=True):
            expected.append(
                f"[SYNC i={i + ends}] actor={actor} → next={after} status=ok prompt={prompt}"
            )
    assert stamps(host) == expected
    state = host.state()
    assert (state["iteration"], state["expected_actor"], state["status"]) == (
        3,
        "galph",
        "complete",
    )
    assert (state["workflow"], state["step"]) == ("plan-build-review", 0)


def test_the_standard_workflow_writes_no_workflow_or_step(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    assert run(host, "--iterations", "1")[0] == 0
    assert host.turns() == [("galph", "supervisor.md"), ("ralph", "main.md")]
    assert "workflow" not in host.state()
    assert "step" not in host.state()


@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_a_crash_at_each_step_resumes_at_that_step(tmp_path: Path, step: int) -> None:
    host = four_step_host(tmp_path)
    actor, prompt = TRACE[step]
    host.plan({f"{actor}:1:{prompt}": {"kill_parent": True}})
    code, out = run(host, "--iterations", "1")
    assert code != 0, out
    assert host.turns() == TRACE[: step + 1]
    host.plan({})
    code, out = run(host, "--iterations", "1")
    assert code == 0, out
    assert "recovering stale turn" in out
    assert host.turns() == TRACE[: step + 1] + TRACE[step:]
    assert (host.state()["iteration"], host.state()["step"]) == (2, 0)


@pytest.mark.parametrize("step", [0, 1, 2, 3])
def test_start_prompt_begins_at_that_step_logged_and_committed(tmp_path: Path, step: int) -> None:
    host = four_step_host(tmp_path)
    prompt = TRACE[step][1]
    code, out = run(host, "--start-prompt", prompt.removesuffix(".md"), "--iterations", "1")
    assert code == 0, out
    assert host.turns() == TRACE[step:]
    shown = f"step {step + 1} of 4 ({TRACE[step][0]} {prompt})"
    assert host.subjects()[1] == f"[SYNC i=1] start at {shown}"
    assert f"starting iteration 1 at {shown}" in out
    assert host.state()["iteration"] == 2


def test_start_step_counts_from_zero(tmp_path: Path) -> None:
    host = four_step_host(tmp_path)
    assert run(host, "--start-step", "2", "--iterations", "1")[0] == 0
    assert host.turns() == TRACE[2:]


def test_galph_runs_two_steps_in_a_row_without_a_handoff(tmp_path: Path) -> None:
    config = """workflow:
  name: think-twice
  steps:
    think-twice:
      - {actor: galph, prompt: plan.md}
      - {actor: galph, prompt: review.md}
      - {actor: ralph, prompt: main.md}
"""
    host = make_host(tmp_path, config, files=STEP_PROMPTS)
    code, out = run(host, "--iterations", "2")
    assert code == 0, out
    assert host.turns() == [("galph", "plan.md"), ("galph", "review.md"), ("ralph", "main.md")] * 2
    assert [s.split(" status")[0] for s in stamps(host)[:3]] == [
        "[SYNC i=1] actor=galph → next=galph",
        "[SYNC i=1] actor=galph → next=ralph",
        "[SYNC i=2] actor=ralph → next=galph",
    ]


def test_the_router_prompt_runs_on_galph_steps_only(tmp_path: Path) -> None:
    router = """router:
  enabled: true
  prompt: router.md
  actor_prompts: {galph: [supervisor.md]}
"""
    host = four_step_host(tmp_path, router)
    host.plan({"router": {"answer": "supervisor.md"}})
    code, out = run(host, "--iterations", "1")
    assert code == 0, out
    purposes = [(c["purpose"], c["actor"], c["prompt"]) for c in host.calls()]
    assert purposes == [
        ("router", "galph", "router.md"),
        ("turn", "galph", "supervisor.md"),
        ("turn", "ralph", "main.md"),
        ("router", "galph", "router.md"),
        ("turn", "galph", "supervisor.md"),
        ("turn", "ralph", "fix.md"),
    ]


def test_an_old_state_without_workflow_or_step_resumes_at_ralphs_step(tmp_path: Path) -> None:
    old = {"iteration": 3, "expected_actor": "ralph", "status": "waiting-ralph"}
    host = make_host(tmp_path, FOUR, files={**STEP_PROMPTS, "sync/state.json": json.dumps(old)})
    code, out = run(host, "--iterations", "1")
    assert code == 0, out
    assert host.turns() == TRACE[1:]
    assert (host.state()["iteration"], host.state()["step"]) == (4, 0)


STEP_OUT_OF_RANGE = json.dumps(
    {"iteration": 1, "expected_actor": "galph", "status": "complete", "workflow": "five", "step": 4}
)


@pytest.mark.parametrize(
    ("config", "args", "files", "needle", "exit_code"),
    [
        ("workflow: {name: review_cadense}\n", (), {}, "did you mean 'review_cadence'", 1),
        ("", ("--workflow", "plan-buld-review"), {}, "did you mean 'plan-build-review'", 2),
        (
            "workflow:\n  steps:\n    x: [{actor: bob, prompt: a.md}]\n",
            (),
            {},
            "x[0]: 'bob' is not an actor",
            1,
        ),
        ("workflow:\n  steps:\n    standard: []\n", (), {}, "'standard' is a built-in", 1),
        (
            "workflow:\n  name: x\n  steps:\n    x: [{actor: galph, prompt: ../outside.md}]\n",
            (),
            {},
            "step 0 (galph ../outside.md): prompt '../outside.md' rejected (rule 3",
            1,
        ),
        ("", ("--start-prompt", "nothing.md"), {}, "no step of workflow 'plan-build-review'", 2),
        (
            "",
            ("--start-step", "4"),
            {},
            "--start-step 4: workflow 'plan-build-review' has steps",
            2,
        ),
        (
            "",
            (),
            {"sync/state.json": STEP_OUT_OF_RANGE},
            "field 'step' is 4, out of range for workflow 'plan-build-review'",
            1,
        ),
        ("", ("--mode", "role", "--role", "galph", "--start-step", "1"), {}, "combined runs", 2),
    ],
)
def test_bad_workflow_input_is_one_line_and_changes_nothing(
    tmp_path: Path,
    config: str,
    args: tuple[str, ...],
    files: dict[str, str],
    needle: str,
    exit_code: int,
) -> None:
    host = make_host(tmp_path, (config or FOUR), files={**STEP_PROMPTS, **files})
    before = tracked(host)
    done = tandem(host.root, "run", *args, env=host.env())
    assert done.code == exit_code, done.err
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("tandem: error: ")
    assert needle in lines[0]
    assert tracked(host) == before
    assert host.calls() == []


def test_the_state_names_the_workflow_it_was_written_for(tmp_path: Path) -> None:
    host = make_host(tmp_path, FOUR, files={**STEP_PROMPTS, "sync/state.json": STEP_OUT_OF_RANGE})
    err = tandem(host.root, "run", env=host.env()).err
    assert "the state was written for workflow 'five'" in err


def test_sync_mode_runs_each_actors_steps_in_order(tmp_path: Path) -> None:
    pair = make_pair(tmp_path, FOUR)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    for path, text in STEP_PROMPTS.items():
        (galph.root / path).write_text(text)
    git(galph.root, "add", "prompts")
    git(galph.root, "commit", "--quiet", "-m", "step prompts")
    git(galph.root, "push", "--quiet", "origin", "main")
    git(ralph.root, "pull", "--quiet", "origin", "main")
    sync = ("--sync-via-git", "--poll-interval", "0.3", "--iterations", "4")
    procs = [
        start_tandem(host.root, cmd, *sync, env=host.env(), log=tmp_path / f"{cmd}.log")
        for host, cmd in ((galph, "supervisor"), (ralph, "loop"))
    ]
    codes = [p.wait(timeout=180) for p in procs]
    logs = "".join((tmp_path / f"{cmd}.log").read_text() for cmd in ("supervisor", "loop"))
    assert codes == [0, 0], logs
    assert galph.turns() == [TRACE[0], TRACE[2]] * 2
    assert ralph.turns() == [TRACE[1], TRACE[3]] * 2
    ordered = [
        s
        for s in git(pair.remote, "log", "--reverse", "--format=%s", "main").splitlines()
        if "status=ok" in s
    ]
    assert [s.split(" status")[0].split("] ")[1] for s in ordered] == [
        f"actor={actor} → next={after}"
        for actor, after in [("galph", "ralph"), ("ralph", "galph")] * 4
    ]
    assert [s.split("prompt=")[1].split()[0] for s in ordered] == [p for _, p in TRACE] * 2
    state = json.loads(remote_file(pair.remote, "sync/state.json"))
    assert (state["iteration"], state["step"], state["expected_actor"]) == (3, 0, "galph")


def at_step_two(tmp_path: Path) -> HostRepo:
    state = {"iteration": 1, "expected_actor": "galph", "status": "complete"}
    state |= {"workflow": "plan-build-review", "step": 2}
    return make_host(tmp_path, FOUR, files={**STEP_PROMPTS, "sync/state.json": json.dumps(state)})


def test_route_explains_the_workflow_the_step_and_the_next_ones(tmp_path: Path) -> None:
    host = at_step_two(tmp_path)
    done = tandem(host.root, "route", "--explain", env=host.env())
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == "review.md"
    assert "workflow plan-build-review: step 3 of 4 (galph review.md)" in lines
    assert lines[-1] == (
        "then: iteration 1: step 4 of 4 (ralph fix.md); iteration 2: step 1 of 4 (galph "
        "plan.md); iteration 2: step 2 of 4 (ralph main.md)"
    )
    decision = json.loads(tandem(host.root, "route", "--json", env=host.env()).out)
    assert (decision["workflow"], decision["prompt"]) == ("plan-build-review", "review.md")


def test_status_shows_the_step(tmp_path: Path) -> None:
    host = at_step_two(tmp_path)
    done = tandem(host.root, "status", env=host.env())
    assert "  workflow plan-build-review: step 3 of 4 (galph review.md)" in done.out.splitlines()


def test_a_failed_step_is_retried_at_that_step_by_its_actor(tmp_path: Path) -> None:
    host = four_step_host(tmp_path)
    host.plan({"galph:1:review.md": {"exit": 2}})
    code, out = run(host, "--iterations", "1")
    assert code == 1
    assert "galph turn failed at iteration 1 (prompt review.md" in out
    state = host.state()
    assert (state["status"], state["expected_actor"], state["step"]) == ("failed", "galph", 2)
    host.plan({})
    assert run(host, "--iterations", "1")[0] == 0
    assert host.turns() == [*TRACE[:3], *TRACE[2:]]
    logs = sorted(p.name.split("_", 2)[2] for p in (host.root / "logs/main/galph").glob("iter-*"))
    assert logs == ["plan.log", "review.log", "review.log"]


def test_one_actor_and_empty_workflows_run_with_a_note(tmp_path: Path) -> None:
    config = """workflow:
  name: solo
  steps:
    solo: [{actor: galph, prompt: plan.md}, {actor: galph, prompt: review.md}]
    empty: []
"""
    host = make_host(tmp_path, config, files=STEP_PROMPTS)
    assert run(host, "--iterations", "2")[0] == 0
    assert host.turns() == [("galph", "plan.md"), ("galph", "review.md")] * 2
    assert host.state()["iteration"] == 3
    done = tandem(host.root, "loop", env=host.env())
    assert (done.code, done.out.strip()) == (
        0,
        "tandem: workflow 'solo' has no step for ralph: nothing to run",
    )
    done = tandem(host.root, "run", "--workflow", "empty", env=host.env())
    assert (done.code, done.out.strip()) == (
        0,
        "tandem: workflow 'empty' has no steps: nothing to run",
    )
    assert len(host.turns()) == 4


def test_config_explain_lists_the_steps(tmp_path: Path) -> None:
    host = four_step_host(tmp_path)
    done = tandem(host.root, "config", "--explain", env=host.env())
    assert done.code == 0, done.err
    assert (
        "workflow.steps: {plan-build-review: [[galph, plan.md], [ralph, main.md], "
        "[galph, review.md], [ralph, fix.md]]}  (orchestration.yaml)"
    ) in done.out.splitlines()


def test_stamp_moves_to_the_next_step(tmp_path: Path) -> None:
    host = at_step_two(tmp_path)
    done = tandem(host.root, "stamp", "galph", "ok", env=host.env())
    assert done.code == 0, done.err
    state = host.state()
    assert (state["step"], state["expected_actor"], state["status"]) == (
        3,
        "ralph",
        "waiting-ralph",
    )
    assert host.subjects()[-1].startswith("[SYNC i=1] actor=galph → next=ralph status=ok")


def test_a_written_step_finish_is_recognised_for_recovery() -> None:
    def at(iteration: int, step: int, actor: str, status: str = "complete") -> State:
        return State(iteration, actor, status, workflow="w", step=step)  # type: ignore[arg-type]

    assert at(1, 2, "galph").finished_turn(at(1, 1, "ralph", "waiting-ralph")) == ("ralph", True)
    assert at(2, 0, "galph").finished_turn(at(1, 3, "ralph", "waiting-ralph")) == ("ralph", True)
    assert at(1, 2, "galph").finished_turn(at(1, 0, "galph")) is None  # two steps on
    running = State(1, "galph", "running-galph", workflow="w", step=0)
    moved = running.succeed("galph", running_now(), None, Next("galph", 1, "w", False))
    assert (moved.expected_actor, moved.status, moved.step) == ("galph", "complete", 1)
    assert moved.finished_turn(at(1, 0, "galph")) == ("galph", True)
    # the standard: galph's step 0 never leads to step 0 of the next iteration
    assert State(2, "galph", "complete").finished_turn(State(1, "galph", "complete")) is None


def running_now() -> datetime:
    return datetime(2026, 1, 20, tzinfo=timezone.utc)


def test_a_step_another_workflow_wrote_fails_the_routing(tmp_path: Path) -> None:
    from tandem.errors import RoutingError
    from tandem.router import RouterContext, decide
    from tandem.workflow import Step, Workflow

    ctx = RouterContext(tmp_path, configured=Workflow("w", (Step("galph", "plan.md"),)))
    with pytest.raises(RoutingError, match="the state was written for workflow 'five'"):
        decide("galph", State(workflow="five", step=4), ctx)

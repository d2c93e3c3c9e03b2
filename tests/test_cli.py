"""The command line end to end: ``python -m tandem`` in temp repos with a fake agent on PATH."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.dom import minidom

import pytest

from helpers import (
    ANY,
    REPO_ROOT,
    assert_line,
    assert_one_line_error,
    error_line,
    git,
    make_host,
    snapshot,
    tandem,
)

ROUTER_ONLY = "router:\n  enabled: true\n  prompt: router.md\n  mode: router_only\n"


def test_run_two_iterations_commits_each_turn(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan(
        {
            "galph": {"write": {"input.md": "task"}, "stdout": "planned\n"},
            "ralph": {"write": {"src/app.py": "print(1)\n"}, "stdout": "built\n"},
        }
    )
    result = tandem(host.root, "run", "--iterations", "2", env=host.env())
    assert result.code == 0, result.err
    assert "planned" in result.out
    assert "iteration 2: ralph runs main.md with fake" in result.out
    assert host.turns() == [("galph", "supervisor.md"), ("ralph", "main.md")] * 2
    assert len(host.subjects()) == 5
    assert host.dirty() == []
    assert host.state()["iteration"] == 3


def test_agent_gets_the_prompt_on_stdin_and_its_context_in_env(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    tandem(host.root, "run", env=host.env())
    first = host.calls()[0]
    assert first["prompt_text"].startswith("# supervisor")
    assert (first["actor"], first["iteration"], first["prompt"]) == ("galph", 1, "supervisor.md")
    assert first["cwd"] == str(host.root)


def test_turn_logs_events_and_latest_link(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"default": {"stdout": "hello from the agent\n"}})
    tandem(host.root, "run", env=host.env())
    galph_dir = host.root / "logs" / "main" / "galph"
    latest = galph_dir / "latest.log"
    assert latest.is_symlink()
    text = latest.read_text()
    assert "prompt: supervisor.md" in text
    assert "hello from the agent" in text
    assert "result: ok" in text
    events = [
        json.loads(line) for line in (host.root / "logs/main/events.jsonl").read_text().splitlines()
    ]
    kinds = [e["event"] for e in events]
    for kind in ("run_start", "route", "turn_start", "turn_end"):
        assert kind in kinds
    assert all({"ts", "event", "actor", "iteration", "host"} <= set(e) for e in events)


def test_failed_agent_exits_1_with_the_one_line_reason(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.plan({"ralph": {"exit": 2}})
    result = tandem(host.root, "run", "--iterations", "3", env=host.env())
    assert result.code == 1
    assert_line(
        error_line(result.err),
        "tandem: ralph turn failed at iteration 1 (prompt main.md, agent fake): exited with 2; "
        f"log: logs/main/ralph/iter-00001_{ANY}_main.log",
    )
    assert host.turns() == [("galph", "supervisor.md"), ("ralph", "main.md")]


def test_status_route_and_logs(tmp_path: Path) -> None:
    host = make_host(tmp_path, "router:\n  enabled: true\n  review_every_n: 2\n")
    host.plan({"default": {"stdout": "working\n"}})
    tandem(host.root, "run", env=host.env())
    status = tandem(host.root, "status", env=host.env())
    assert status.code == 0
    assert "iteration 2, galph's turn, complete" in status.out
    assert "i1 ralph main.md fake" in status.out
    as_json = json.loads(tandem(host.root, "status", "--json", env=host.env()).out)
    assert as_json["local"]["iteration"] == 2
    assert as_json["agents"]["fake"]["turns"] == 2
    route = tandem(host.root, "route", "--explain", env=host.env())
    assert route.out.splitlines()[0] == "reviewer.md"
    assert "review cadence hit" in route.out
    decision = json.loads(tandem(host.root, "route", "--json", env=host.env()).out)
    assert (decision["actor"], decision["prompt"]) == ("galph", "reviewer.md")
    logs = tandem(host.root, "logs", "-n", "1", env=host.env())
    galph_at = logs.out.index("/galph/iter-00001")
    assert galph_at < logs.out.index("/ralph/iter-00001")
    as_xml = tandem(host.root, "logs", "--format", "xml", env=host.env()).out
    assert '<log role="galph" iter="1" path="logs/main/galph/iter-00001_' in as_xml
    assert "<![CDATA[" in as_xml
    parsed = minidom.parseString(as_xml)  # noqa: S318 - tandem's own output
    commits = [node.getAttribute("commit") for node in parsed.getElementsByTagName("log")]
    assert len(commits) == 2  # galph's and ralph's log, each naming the commit it stamped
    assert all(git(host.root, "cat-file", "-t", c).strip() == "commit" for c in commits), commits


def test_stop_command_makes_the_next_check_point_stop(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    tandem(host.root, "run", env=host.env())
    stopped = tandem(host.root, "stop", "--reason", "maintenance", env=host.env())
    assert stopped.code == 0
    assert host.state()["exit"] is True
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 0
    assert "stopping: maintenance" in result.out
    assert "exit" not in host.state()
    assert len(host.turns()) == 2


def test_init_creates_what_is_missing_and_never_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    (root / ".gitignore").write_text("node_modules/")
    first = tandem(root, "init")
    assert first.code == 0
    assert "created orchestration.yaml" in first.out
    for name in ("supervisor.md", "main.md", "reviewer.md", "router.md"):
        assert (root / "prompts" / name).is_file()
    assert json.loads((root / "sync/state.json").read_text())["iteration"] == 1
    assert (root / ".gitignore").read_text() == "node_modules/\nlogs/\n"
    (root / "prompts/main.md").write_text("mine")
    second = tandem(root, "init")
    assert "kept prompts/main.md (exists)" in second.out
    assert (root / "prompts/main.md").read_text() == "mine"
    assert (root / ".gitignore").read_text() == "node_modules/\nlogs/\n"


def test_dry_run_agent_runs_offline(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    result = tandem(host.root, "run", "--agent", "dry-run", env=host.env())
    assert result.code == 0, result.err
    assert "dry-run agent: galph, iteration 1, prompt supervisor.md" in result.out
    assert (host.root / "input.md").is_file()
    assert (
        (host.root / "dry-run-work.md").read_text().startswith("- iteration 1: ralph ran main.md")
    )


def test_demo_makes_a_host_and_runs_a_loop(tmp_path: Path) -> None:
    result = tandem(tmp_path, "demo", str(tmp_path / "demo"), "--iterations", "2")
    assert result.code == 0, result.err
    assert "[SYNC i=3] actor=ralph → next=galph status=ok" in result.out
    assert "prompt=reviewer.md" in result.out  # the demo's cadence of 2
    state = json.loads((tmp_path / "demo/sync/state.json").read_text())
    assert state["iteration"] == 3


# -- bad input: one line, exit 1 (2 for usage), no traceback, nothing changed ----------------
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            '{"iteration": 2, "expected_act',
            (
                "sync/state.json is not valid JSON (Unterminated string starting at at line 1); "
                "fix the file by hand (or restore it with `git checkout -- sync/state.json`), "
                "then restart"
            ),
        ),
        (
            '<<<<<<< HEAD\n{"iteration": 1}\n=======\n{}\n>>>>>>> theirs\n',
            (
                "sync/state.json contains git conflict markers; resolve the merge in "
                "sync/state.json (keep one side's JSON), commit it, then restart"
            ),
        ),
        (
            '{"iteration": 1, "expected_actor": "bob", "status": "idle"}',
            (
                'sync/state.json: field \'expected_actor\' must be one of "galph", "ralph", '
                'not "bob"; fix the file by hand (or restore it with `git checkout -- '
                "sync/state.json`), then restart"
            ),
        ),
        (
            '{"iteration": 1, "expected_actor": "galph", "status": "zzz"}',
            (
                'sync/state.json: field \'status\' must be one of "idle", "running-galph", '
                '"waiting-ralph", "running-ralph", "complete", "failed", "paused", not "zzz"; '
                "fix the file by hand (or restore it with `git checkout -- sync/state.json`), "
                "then restart"
            ),
        ),
        (
            '{"iteration": "3", "expected_actor": "galph", "status": "idle"}',
            (
                "sync/state.json: field 'iteration' must be an integer ≥ 1, not \"3\"; fix the "
                "file by hand (or restore it with `git checkout -- sync/state.json`), then "
                "restart"
            ),
        ),
    ],
)
def test_bad_state_file(tmp_path: Path, text: str, needle: str) -> None:
    host = make_host(tmp_path)
    host.put_state(text)
    before = snapshot(host.root)
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    assert_one_line_error(result.err, needle)
    assert snapshot(host.root) == before
    assert host.calls() == []


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (
            "router:\n  enabeld: true\n",
            (
                "orchestration.yaml: unknown key 'router.enabeld' (did you mean "
                "'router.enabled'?); fix orchestration.yaml (see the README's config reference)"
            ),
        ),
        (
            'router:\n  enabled: "false"\n',
            (
                'orchestration.yaml: router.enabled: must be true or false, not "false" (a '
                "quoted string); fix orchestration.yaml (see the README's config reference)"
            ),
        ),
        (
            "router:\n  enabled: [true\n",
            (
                "orchestration.yaml is not valid YAML at line 7, column 1: expected ',' or ']', "
                "but got '<stream end>'; fix the YAML syntax"
            ),
        ),
    ],
)
def test_bad_config(tmp_path: Path, config: str, needle: str) -> None:
    host = make_host(tmp_path, config)
    before = snapshot(host.root)
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    assert_one_line_error(result.err, needle)
    assert snapshot(host.root) == before


def test_missing_agent_binary_stops_before_anything(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    before = snapshot(host.root)
    result = tandem(
        host.root, "run", "--agent-role", "galph=codex", env=host.env(PATH="/usr/bin:/bin")
    )
    assert result.code == 1
    assert_one_line_error(
        result.err, "agent 'codex' not found on PATH; install it or set agent.commands.codex"
    )
    assert snapshot(host.root) == before


def test_unknown_agent_name_is_a_config_error(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    result = tandem(host.root, "run", "--agent", "robot", env=host.env())
    assert result.code == 1
    assert_one_line_error(
        result.err,
        (
            "agent 'robot' is neither built in nor under agent.commands (known: claude, codex, "
            "gemini, opencode, dry-run, fake); add agent.commands.robot: [program, args...] to "
            "orchestration.yaml"
        ),
    )


def test_missing_prompt_marks_the_turn_failed(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    (host.root / "prompts" / "supervisor.md").unlink()
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    missing = host.root / "prompts" / "supervisor.md"
    assert_line(
        error_line(result.err),
        "tandem: galph turn failed at iteration 1: routing failed: prompt 'supervisor.md' "
        f"rejected (rule 4: {missing} does not exist); allowlist: supervisor.md, main.md, "
        f"reviewer.md; create {missing}; log: logs/main/galph/iter-00001_{ANY}_route.log",
    )
    assert host.state()["status"] == "failed"
    assert host.calls() == []


_ALLOWED = "allowlist: supervisor.md, main.md, reviewer.md, link.md"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            "",
            'the router prompt gave no answer (router_only needs one): ""; '
            "make the router prompt answer with one prompt name",
        ),
        (
            "I pick\nreviewer.md",
            'router answer has 2 non-empty lines, not exactly one: "I pick\\nreviewer.md"; '
            "make the router prompt answer with just the prompt name",
        ),
        (
            "../x.md",
            "prompt '../x.md' rejected (rule 3: it must stay inside prompts_dir); "
            f'router answer: "../x.md"; {_ALLOWED}; name a prompt inside prompts_dir',
        ),
        (
            "/etc/passwd.md",
            "prompt '/etc/passwd.md' rejected (rule 3: it must stay inside prompts_dir); "
            f'router answer: "/etc/passwd.md"; {_ALLOWED}; name a prompt inside prompts_dir',
        ),
        (
            "link.md",
            "prompt 'link.md' rejected (rule 3: it resolves outside prompts_dir (a symlink "
            f'leaves the folder)); router answer: "link.md"; {_ALLOWED}; '
            "replace the symlink with a real file inside prompts_dir",
        ),
        (
            "notes.txt",
            "prompt 'notes.txt' rejected (rule 1: prompts are .md files); "
            f'router answer: "notes.txt"; {_ALLOWED}; name a .md prompt',
        ),
        (
            "plan.md",
            "prompt 'plan.md' rejected (rule 2: not in the allowlist); "
            f'router answer: "plan.md"; {_ALLOWED}; add it to router.allowlist or pick another',
        ),
        (
            "main.md",
            "prompt 'main.md' rejected (rule 5: galph may not run it); "
            f'router answer: "main.md"; {_ALLOWED}; '
            "list it under router.actor_prompts.galph if galph should run it",
        ),
    ],
)
def test_bad_router_answer_fails_the_turn_before_any_agent_runs(
    tmp_path: Path, answer: str, reason: str
) -> None:
    config = ROUTER_ONLY + "  allowlist: [supervisor.md, main.md, reviewer.md, link.md]\n"
    host = make_host(tmp_path, config, files={"prompts/plan.md": "x", "outside.md": "secret"})
    (host.root / "prompts" / "link.md").symlink_to(host.root / "outside.md")
    host.plan({"router": {"answer": answer} if answer else {}})
    result = tandem(host.root, "run", env=host.env())
    assert result.code == 1
    assert_line(
        error_line(result.err),
        f"tandem: galph turn failed at iteration 1: routing failed: {reason}; "
        f"log: logs/main/galph/iter-00001_{ANY}_route.log",
    )
    assert host.turns() == []  # the router ran, no turn did
    assert host.state()["status"] == "failed"
    assert host.dirty() == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["run", "--iteratoins", "2"],
            (
                "unrecognized arguments: --iteratoins 2 (did you mean --iterations?); see "
                "`tandem --help`"
            ),
        ),
        (
            ["run", "--iterations", "zero"],
            "--iterations 'zero' is not a whole number; see `tandem run --help`",
        ),
        (["run", "--mode", "role"], "--mode role needs --role galph|ralph; add --role"),
        (  # counts outside run read as --iterations does: one reader, one message
            ["status", "-n", "0"],
            "argument -n: must be from 1 to 1000000000, not 0; see `tandem status --help`",
        ),
        (
            ["logs", "--min-iter", "first"],
            "--min-iter 'first' is not a whole number; see `tandem logs --help`",
        ),
        (
            ["run", "--sync-via-git"],
            (
                "--sync-via-git needs role mode (one actor per machine); use `tandem supervisor "
                "--sync-via-git` / `tandem loop --sync-via-git`"
            ),
        ),
        (
            ["run", "--router-mode", "sideways"],
            (
                "--router-mode: router.mode: must be one of router_default, router_first, "
                'router_only, not "sideways"; fix the flag or the environment variable'
            ),
        ),
        (
            ["run", "--agent-role", "galph"],
            (
                "--agent-role takes KEY=AGENT pairs separated by commas, not 'galph' (e.g. "
                "galph=codex,ralph=claude); see `tandem run --help`"
            ),
        ),
        (
            ["run", "--agent-role", "boss=codex"],
            "'boss' is not an actor (use galph/supervisor or ralph/loop/engineer); name an actor",
        ),
        (
            ["frobnicate"],
            (
                "argument COMMAND: invalid choice: 'frobnicate' (choose from 'run', "
                "'supervisor', 'loop', 'route', 'status', 'logs', 'stamp', 'stop', 'watch', "
                "'report', 'init', 'config', 'demo'); see `tandem --help`"
            ),
        ),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    host = make_host(tmp_path)
    before = snapshot(host.root)
    result = tandem(host.root, *args, env=host.env())
    assert result.code == 2, result.err
    assert_one_line_error(result.err, needle)
    assert snapshot(host.root) == before


def test_internal_error_writes_a_crash_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tandem import cli

    def explode(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_dispatch", explode)
    assert cli.main(["status"]) == 3
    crash = next(tmp_path.glob("logs/tandem-crash-*.log"))
    assert "RuntimeError: a bug" in crash.read_text()


def test_help_explains_itself(tmp_path: Path) -> None:
    result = tandem(tmp_path, "--help")
    assert result.code == 0
    for word in (
        "run",
        "supervisor",
        "loop",
        "route",
        "status",
        "logs",
        "stamp",
        "stop",
        "init",
        "exit codes",
    ):
        assert word in result.out
    run_help = tandem(tmp_path, "run", "--help").out
    for flag in ("--sync-via-git", "--iterations", "--agent-role", "--router-mode"):
        assert flag in run_help


@pytest.mark.parametrize(
    ("wrapper", "turns"),
    [
        ("supervisor.sh", [("galph", "supervisor.md")] * 2),
        ("loop.sh", [("ralph", "main.md")] * 2),
        ("orchestrator.sh", [("galph", "supervisor.md"), ("ralph", "main.md")] * 2),
    ],
)
def test_each_wrapper_execs_its_subcommand_with_the_arguments(
    tmp_path: Path, wrapper: str, turns: list[tuple[str, str]]
) -> None:
    """``--iterations 2`` reaches the subcommand: two turns (two iterations combined)."""
    host = make_host(tmp_path)
    done = subprocess.run(
        [str(REPO_ROOT / wrapper), "--iterations", "2"],
        cwd=host.root,
        env=host.env(TANDEM_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert host.turns() == turns
    assert host.dirty() == []


def test_run_outside_a_host_says_so_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "somewhere"
    empty.mkdir()
    result = tandem(empty, "run", "--agent", "dry-run")
    assert result.code == 1
    assert_one_line_error(
        result.err,
        f"no tandem host here: no orchestration.yaml and no prompts/ under {empty}; "
        "cd into your project, or run `tandem init` there first",
    )
    assert list(empty.iterdir()) == []

"""Drop-in for the earlier orchestration scripts: their flags and variables (SPEC §12.1).

Every flag of their supervisor.py, loop.py and orchestrator.py and every environment
variable they read is checked for what it does to the run, not only for being accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from legacy_support import effective
from tandem.commands.run import RunOptions
from tandem.config import Config
from tandem.errors import UsageError

Probe = Callable[[RunOptions, Config], Any]
DOCS = ("input.md", "galph_memory.md", "docs/fix_plan.md", "plans/**/*.md", "prompts/**/*.md")


def galph(_: RunOptions, c: Config) -> tuple[str, ...]:
    return c.autocommit.galph


def caps(_: RunOptions, c: Config) -> tuple[int, int]:
    return (c.autocommit.max_file_bytes, c.autocommit.max_total_bytes)


FLAGS: list[tuple[list[str], Probe, Any]] = [
    (["run", "--sync-loops", "3"], lambda o, _: o.iterations, 3),
    (["supervisor", "--prompt", "plan"], lambda _, c: c.supervisor_prompt, "plan.md"),
    (["loop", "--prompt", "fix.md"], lambda _, c: c.main_prompt, "fix.md"),
    (["run", "--router-prompt-supervisor", "a"], lambda _, c: c.supervisor_prompt, "a.md"),
    (["run", "--router-prompt-main", "b.md"], lambda _, c: c.main_prompt, "b.md"),
    (["run", "--router-prompt-reviewer", "r"], lambda _, c: c.reviewer_prompt, "r.md"),
    (["run", "--workflow-review-every-n", "2"], lambda _, c: c.router.review_every_n, 2),
    (["run", "--workflow", "standard"], lambda _, c: c.workflow.name, "standard"),
    (
        ["run", "--workflow", "review_cadence", "--workflow-review-every-n", "2"],
        lambda _, c: (c.workflow.name, c.router.enabled, c.router.review_every_n),
        ("review_cadence", True, 2),
    ),
    (["run", "--claude-cmd", "/opt/claude"], lambda o, _: o.env, {"CLAUDE_CMD": "/opt/claude"}),
    (["run", "--codex-cmd", "/opt/codex"], lambda o, _: o.env, {"CODEX_CMD": "/opt/codex"}),
    (["supervisor", "--auto-commit-docs"], lambda o, c: c.autocommit.galph[:5], DOCS),
    (["supervisor", "--no-auto-commit-docs"], galph, ()),
    (["run", "--autocommit-whitelist", "a.md, b/**"], galph, ("a.md", "b/**")),
    (["run", "--max-autocommit-bytes", "100"], caps, (100, 20971520)),
    (["supervisor", "--auto-commit-reports"], lambda _, c: "**/*.png" in c.autocommit.galph, True),
    (
        ["supervisor", "--no-auto-commit-reports", "--report-extensions", ".png"],
        lambda _, c: "**/*.png" in c.autocommit.galph,
        False,
    ),
    (
        ["run", "--report-extensions", ".png,.txt"],
        lambda _, c: galph(_, c)[-2:],
        ("**/*.png", "**/*.txt"),
    ),
    (
        ["run", "--report-path-globs", "reports/**", "--report-extensions", ".log"],
        lambda _, c: galph(_, c)[-1],
        "reports/**/*.log",
    ),
    (["run", "--max-report-file-bytes", "7"], caps, (7, 20971520)),
    (["run", "--max-report-total-bytes", "9"], caps, (5242880, 9)),
    (["run", "--max-tracked-output-file-bytes", "11"], caps, (11, 20971520)),
    (["run", "--max-tracked-output-total-bytes", "13"], caps, (5242880, 13)),
    (
        ["run", "--tracked-output-globs", "fixtures/**"],
        lambda _, c: galph(_, c)[-4:],
        ("fixtures/**/*.npy", "fixtures/**/*.npz", "fixtures/**/*.json", "fixtures/**/*.pkl"),
    ),
    (
        ["run", "--tracked-output-globs", "fixtures/**", "--tracked-output-extensions", ".npz"],
        lambda _, c: galph(_, c)[-1],
        "fixtures/**/*.npz",
    ),
    (
        ["run", "--auto-commit-tracked-outputs", "--tracked-output-globs", "f/x.npy"],
        lambda _, c: galph(_, c)[-1],
        "f/x.npy",
    ),
    (
        ["run", "--no-auto-commit-tracked-outputs", "--tracked-output-globs", "f/x.npy"],
        lambda _, c: "f/x.npy" in c.autocommit.galph,
        False,
    ),
    (
        ["run", "--force-add-reports"],
        lambda o, _: o.warnings[0][:27],
        "--force-add-reports is igno",
    ),
    (["run", "--no-force-add-reports"], lambda o, _: o.warnings, ()),
    (
        ["run", "--prepull-auto-commit-docs"],
        lambda o, _: o.warnings[0][:26],
        "--prepull-auto-commit-docs",
    ),
    (["run", "--no-prepull-auto-commit-docs"], lambda o, _: o.warnings, ()),
    (["loop", "--allow-dirty"], lambda o, _: o.warnings[0][:24], "--allow-dirty is ignored"),
    (["run", "--tolerate-doc-dirty"], lambda o, _: (o.strict_tree, o.warnings), (False, ())),
    (
        ["supervisor", "--sync-via-git", "--tolerate-doc-dirty"],
        lambda o, _: o.warnings[0][:50],
        "--tolerate-doc-dirty does not apply to sync mode: ",
    ),
    (["supervisor", "--use-router"], lambda _, c: c.router.enabled, True),
    (["loop", "--no-router"], lambda _, c: c.router.enabled, False),
    (
        ["supervisor", "--router-allowlist", "a.md,b.md"],
        lambda _, c: c.router.allowlist,
        ("a.md", "b.md"),
    ),
    (["loop", "--router-mode", "router_first"], lambda _, c: c.router.mode, "router_first"),
    (["supervisor", "--router-prompt", "router.md"], lambda _, c: c.router.prompt, "router.md"),
    (["loop", "--branch", "feature"], lambda _, c: c.sync.branch, "feature"),
    (["supervisor", "--heartbeat-secs", "30"], lambda _, c: c.agent.heartbeat_secs, 30),
    (["loop", "--agent", "codex"], lambda _, c: c.agent.default, "codex"),
    (["loop", "--agent", "auto"], lambda _, c: c.agent.default, "auto"),
    (
        ["supervisor", "--agent-role", "supervisor=codex"],
        lambda o, _: o.agent_roles,
        {"galph": "codex"},
    ),
    (["loop", "--agent-prompt", "main=codex"], lambda o, _: o.agent_prompts, {"main.md": "codex"}),
    (
        ["run", "--mode", "role", "--role", "ralph"],
        lambda o, _: (o.mode, o.actor),
        ("role", "ralph"),
    ),
    (["run", "--commit-dry-run"], lambda o, _: o.commit_dry_run, True),
]


@pytest.mark.parametrize(("argv", "probe", "expected"), FLAGS, ids=lambda v: None)
def test_each_legacy_flag_has_its_effect(
    tmp_path: Path, argv: list[str], probe: Probe, expected: Any
) -> None:
    options, config = effective(tmp_path / "h", *argv)
    assert probe(options, config) == expected


ENVIRONMENT: list[tuple[str, dict[str, str], Probe, Any]] = [
    ("run", {"SYNC_LOOPS": "4"}, lambda o, _: o.iterations, 4),
    ("loop", {"POLL_INTERVAL": "2"}, lambda _, c: c.sync.poll_interval, 2),
    ("loop", {"MAX_WAIT_SEC": "60"}, lambda _, c: c.sync.max_wait_sec, 60),
    ("run", {"STATE_FILE": "s/st.json"}, lambda _, c: c.state_file.parts[-2:], ("s", "st.json")),
    ("supervisor", {"SUPERVISOR_AGENT": "codex"}, lambda _, c: c.agent.default, "codex"),
    ("loop", {"SUPERVISOR_AGENT": "codex"}, lambda _, c: c.agent.default, "claude"),
    ("loop", {"LOOP_AGENT": "codex"}, lambda _, c: c.agent.default, "codex"),
    ("run", {"ORCHESTRATOR_AGENT": "codex"}, lambda _, c: c.agent.default, "codex"),
    (
        "run",
        {"ORCHESTRATOR_MODE": "role", "ORCHESTRATOR_ROLE": "galph"},
        lambda o, _: (o.mode, o.actor),
        ("role", "galph"),
    ),
    (
        "supervisor",
        {"SUPERVISOR_AGENT_ROLE": "galph=codex"},
        lambda o, _: o.agent_roles,
        {"galph": "codex"},
    ),
    ("loop", {"LOOP_AGENT_ROLE": "ralph=codex"}, lambda o, _: o.agent_roles, {"ralph": "codex"}),
    (
        "run",
        {"ORCHESTRATOR_AGENT_ROLE": "ralph=codex"},
        lambda o, _: o.agent_roles,
        {"ralph": "codex"},
    ),
    (
        "supervisor",
        {"SUPERVISOR_AGENT_PROMPT": "x=codex"},
        lambda o, _: o.agent_prompts,
        {"x.md": "codex"},
    ),
    ("loop", {"LOOP_AGENT_PROMPT": "x.md=codex"}, lambda o, _: o.agent_prompts, {"x.md": "codex"}),
    (
        "run",
        {"ORCHESTRATOR_AGENT_PROMPT": "x=codex"},
        lambda o, _: o.agent_prompts,
        {"x.md": "codex"},
    ),
    ("run", {"ROUTER_MODE": "router_only"}, lambda _, c: c.router.mode, "router_only"),
    ("run", {"ROUTER_PROMPT": "router.md"}, lambda _, c: c.router.prompt, "router.md"),
    ("run", {"ROUTER_ALLOWLIST": "a.md,b.md"}, lambda _, c: c.router.allowlist, ("a.md", "b.md")),
    ("run", {"ROUTER_REVIEW_EVERY_N": "3"}, lambda _, c: c.router.review_every_n, 3),
    (
        "supervisor",
        {"ORCHESTRATION_WORKFLOW_REVIEW_EVERY_N": "2", "ROUTER_REVIEW_EVERY_N": "5"},
        lambda _, c: c.router.review_every_n,
        2,
    ),
    (
        "run",
        {"ORCHESTRATION_WORKFLOW": "review_cadence"},
        lambda _, c: c.workflow.name,
        "review_cadence",
    ),
    ("supervisor", {"SUPERVISOR_PROMPT": "plan.md"}, lambda _, c: c.supervisor_prompt, "plan.md"),
    ("loop", {"LOOP_PROMPT": "fix.md"}, lambda _, c: c.main_prompt, "fix.md"),
    ("run", {"REVIEWER_PROMPT": "rev.md"}, lambda _, c: c.reviewer_prompt, "rev.md"),
    ("run", {"ROUTER_PROMPT_SUPERVISOR": "s.md"}, lambda _, c: c.supervisor_prompt, "s.md"),
    ("run", {"ROUTER_PROMPT_MAIN": "m.md"}, lambda _, c: c.main_prompt, "m.md"),
    ("run", {"ROUTER_PROMPT_REVIEWER": "r.md"}, lambda _, c: c.reviewer_prompt, "r.md"),
    ("loop", {"ORCHESTRATION_BRANCH": "feature"}, lambda _, c: c.sync.branch, "feature"),
    ("loop", {"ORCHESTRATION_BRANCH": ""}, lambda _, c: c.sync.branch, None),
    ("supervisor", {"HEARTBEAT_SECS": "15"}, lambda _, c: c.agent.heartbeat_secs, 15),
    ("loop", {"ORCHESTRATION_PROMPT_HEARTBEAT_SECS": "9"}, lambda _, c: c.agent.heartbeat_secs, 9),
    ("supervisor", {"MAX_AUTOCOMMIT_BYTES": "99"}, caps, (99, 20971520)),
    (
        "supervisor",
        {"SUPERVISOR_REPORT_EXTENSIONS": ".png"},
        lambda _, c: galph(_, c)[-1],
        "**/*.png",
    ),
    ("loop", {"REPORT_EXTENSIONS": ".png"}, lambda _, c: galph(_, c)[-1], "**/*.png"),
    (
        "supervisor",
        {"SUPERVISOR_REPORT_PATH_GLOBS": "r/**"},
        lambda _, c: galph(_, c)[-1],
        "r/**/*.sh",
    ),
    ("loop", {"REPORT_PATH_GLOBS": "r/**"}, lambda _, c: galph(_, c)[-1], "r/**/*.sh"),
    ("supervisor", {"SUPERVISOR_MAX_REPORT_FILE_BYTES": "5"}, caps, (5, 20971520)),
    ("loop", {"MAX_REPORT_FILE_BYTES": "5"}, caps, (5, 20971520)),
    ("supervisor", {"SUPERVISOR_MAX_REPORT_TOTAL_BYTES": "6"}, caps, (5242880, 6)),
    ("loop", {"MAX_REPORT_TOTAL_BYTES": "6"}, caps, (5242880, 6)),
    (
        "run",
        {"SUPERVISOR_TRACKED_OUTPUT_GLOBS": "f/a.pkl"},
        lambda _, c: galph(_, c)[-1],
        "f/a.pkl",
    ),
    (
        "run",
        {"SUPERVISOR_TRACKED_OUTPUT_GLOBS": "f/**", "SUPERVISOR_TRACKED_OUTPUT_EXTENSIONS": ".npy"},
        lambda _, c: galph(_, c)[-1],
        "f/**/*.npy",
    ),
    ("run", {"SUPERVISOR_MAX_TRACKED_OUTPUT_FILE_BYTES": "8"}, caps, (8, 20971520)),
    ("run", {"SUPERVISOR_MAX_TRACKED_OUTPUT_TOTAL_BYTES": "8"}, caps, (5242880, 8)),
    (
        "run",
        {"CLAUDE_CMD": "/opt/claude"},
        lambda o, _: o.notes,
        ("using environment: CLAUDE_CMD=/opt/claude",),
    ),
]


# read by another script than this command's, or shadowed by the variable listed first
NOT_USED = {
    ("loop", "SUPERVISOR_AGENT", "codex"),
    ("supervisor", "ROUTER_REVIEW_EVERY_N", "5"),
    ("run", "ORCHESTRATOR_ROLE", "ralph"),  # only with ORCHESTRATOR_MODE=role, as orchestrator.py
}


@pytest.mark.parametrize(("command", "env", "probe", "expected"), ENVIRONMENT, ids=lambda v: None)
def test_each_environment_variable_has_its_effect(
    tmp_path: Path, command: str, env: dict[str, str], probe: Probe, expected: Any
) -> None:
    options, config = effective(tmp_path / "h", command, env=env)
    assert probe(options, config) == expected
    said = "".join(options.notes)
    for name, value in env.items():
        used = value and (command, name, value) not in NOT_USED
        assert said.count(f"{name}=") == (1 if used else 0), (name, options.notes)


def test_variables_tandem_has_no_use_for_get_one_warning_each(tmp_path: Path) -> None:
    env = {"ORCHESTRATION_USE_PTY": "1", "REPORT_SKIP_CONFIG": ".reportsignore"}
    options, _ = effective(tmp_path / "h", "loop", env=env)
    assert options.warnings == (
        "ORCHESTRATION_USE_PTY is not used by tandem: agents run with pipes and structured "
        "output, no terminal",
        "REPORT_SKIP_CONFIG is not used by tandem: what a turn commits follows autocommit "
        "globs and .gitignore",
    )


def test_precedence_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    root = tmp_path / "h"
    file = "sync:\n  poll_interval: 3\n"
    assert effective(root, "loop", config=file)[1].sync.poll_interval == 3
    assert effective(root, "loop", env={"POLL_INTERVAL": "2"})[1].sync.poll_interval == 2
    flagged = effective(root, "loop", "--poll-interval", "1", env={"POLL_INTERVAL": "2"})[1]
    assert flagged.sync.poll_interval == 1
    assert flagged.origins["sync.poll_interval"] == "flag --poll-interval"
    assert effective(tmp_path / "bare", "loop")[1].sync.poll_interval == 5


def test_the_environment_used_is_named_once(tmp_path: Path) -> None:
    options, _ = effective(tmp_path / "h", "run", env={"SYNC_LOOPS": "2", "POLL_INTERVAL": "1"})
    assert options.notes == ("using environment: SYNC_LOOPS=2, POLL_INTERVAL=1",)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["run", "--iterations", "2", "--sync-loops", "3"],
            "--iterations and --sync-loops disagree (2 vs 3)",
        ),
        (
            ["run", "--prompt-main", "a.md", "--router-prompt-main", "b"],
            "disagree ('a.md' vs 'b.md')",
        ),
        (["supervisor", "--prompt", "a", "--prompt-supervisor", "b.md"], "disagree"),
        (["run", "--prompt", "a"], "--prompt names one actor's prompt"),
        (["loop", "--start-prompt", "main.md"], "--start-prompt is for combined runs"),
        (["run", "--workflow", "plan-build"], "unknown workflow 'plan-build'"),
        (
            ["run", "--strict-tree", "--tolerate-doc-dirty"],
            "--strict-tree cannot work with --tolerate",
        ),
    ],
)
def test_legacy_flags_that_conflict_are_usage_errors(
    tmp_path: Path, argv: list[str], needle: str
) -> None:
    with pytest.raises(UsageError) as caught:
        effective(tmp_path / "h", *argv)
    assert needle in str(caught.value)


def test_twins_that_agree_are_fine(tmp_path: Path) -> None:
    options, _ = effective(tmp_path / "h", "run", "--iterations", "2", "--sync-loops", "2")
    assert options.iterations == 2
    assert (
        effective(tmp_path / "h", "run", "--prompt-main", "m", "--router-prompt-main", "m.md")[
            1
        ].main_prompt
        == "m.md"
    )


@pytest.mark.parametrize(
    ("on_path", "expected"), [(("claude", "codex"), "claude"), (("codex",), "codex")]
)
def test_auto_agent_is_claude_when_found_else_codex(
    tmp_path: Path, on_path: tuple[str, ...], expected: str
) -> None:
    from tandem.commands.run import _auto_agent

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in on_path:
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    _, config = effective(
        tmp_path / "h", "run", config="agent:\n  default: auto\n  roles: {loop: auto}\n"
    )
    chosen = _auto_agent(config, {"PATH": str(bin_dir)}).agent
    assert (chosen.default, dict(chosen.roles)) == (expected, {"ralph": expected})


def test_the_init_template_states_the_real_defaults(tmp_path: Path) -> None:
    from importlib import resources

    from tandem.commands.config import leaves
    from tandem.configfile import load

    template = (resources.files("tandem") / "templates" / "orchestration.yaml").read_text()
    for name, text in (("template", template.replace("__AGENT__", "claude")), ("empty", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "orchestration.yaml").write_text(text)

    def values(name: str) -> dict[str, Any]:
        config = load(tmp_path / name, env={})
        return {k: config.relative(v) if isinstance(v, Path) else v for k, v in leaves(config)}

    assert values("template") == values("empty")

"""A host of the earlier orchestration scripts runs under tandem with no edit (SPEC §12.1).

The hosts are built as those scripts' README says: its example config copied verbatim
(seed era and latest), the prompts folder, and a state file each version wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import (
    REPO_ROOT,
    assert_one_line_error,
    git,
    make_host,
    remote_file,
    snapshot,
    start_tandem,
    tandem,
    write,
)
from legacy_support import legacy_host

DRY = ("--agent-role", "galph=dry-run,ralph=dry-run")  # their config maps claude/codex
VERSIONS = [("seed-20e6769.yaml", "state-seed.json"), ("head-2fb52b2.yaml", "state-head.json")]
UNUSED = ("findings_file", "input_file", "tmp_dir")


@pytest.mark.parametrize(("config", "state"), VERSIONS)
def test_their_host_routes_and_runs_unchanged(tmp_path: Path, config: str, state: str) -> None:
    root = legacy_host(tmp_path, config, state)
    route = tandem(root, "route", "--explain")
    assert route.code == 0, route.err
    assert route.out.splitlines()[0] == "supervisor.md"
    assert "iteration 7" in route.out
    done = tandem(root, "run", *DRY, "--quiet")
    assert done.code == 0, done.err
    warnings = [line for line in done.err.splitlines() if line.startswith("tandem: warning:")]
    assert [w.split(": ")[3].split()[0] for w in warnings] == list(UNUSED)
    after = json.loads((root / "sync" / "state.json").read_text())
    assert (after["iteration"], after["expected_actor"]) == (8, "galph")
    assert after["status"] == "complete"
    assert git(root, "status", "--porcelain") == ""


def test_explain_names_the_legacy_keys_and_their_meaning(tmp_path: Path) -> None:
    root = legacy_host(tmp_path, "head-2fb52b2.yaml", "state-head.json")
    result = tandem(root, "config", "--explain", "--sync-loops", "3", env=_env(POLL_INTERVAL="2"))
    assert result.code == 0, result.err
    out = result.out
    assert "autocommit.galph: [input.md, galph_memory.md, docs/fix_plan.md, plans/**/*.md" in out
    assert "tests/fixtures/**/*.npy, tests/fixtures/**/*.npz]  (orchestration.yaml)" in out
    assert "router.allowlist: [supervisor.md, main.md, reviewer.md]  (orchestration.yaml)" in out
    assert "sync.poll_interval: 2.0  (env POLL_INTERVAL)" in out
    assert "run.iterations: 3  (flag --sync-loops)" in out
    for line in (
        "doc_whitelist -> autocommit.galph (orchestration.yaml)",
        "workflow.review_every_n -> router.review_every_n (orchestration.yaml)",
        "POLL_INTERVAL -> sync.poll_interval (env)",
        "--sync-loops -> run.iterations (flag)",
    ):
        assert f"  {line}\n" in out
    assert "agent.roles: {galph: claude, ralph: codex}" in out


def test_spec_bootstrap_section_is_kept_with_one_warning(tmp_path: Path) -> None:
    root = legacy_host(tmp_path, "head-spec-bootstrap.yaml", "state-seed.json")
    result = tandem(root, "run", "--agent", "dry-run", "--quiet")
    assert result.code == 0, result.err
    assert _warnings(result.err) == (
        "tandem: warning: orchestration.yaml: spec_bootstrap is accepted but unused: "
        "spec bootstrapping is not part of tandem\n"
    )


@pytest.mark.parametrize(
    ("edit", "args", "env", "code", "needle"),
    [
        (
            "report_extensions: .png\n",
            [],
            {},
            1,
            (
                "orchestration.yaml: report_extensions: autocommit.report_extensions: must be a "
                'list of strings, not the string ".png"; fix orchestration.yaml (see the '
                "README's config reference)"
            ),
        ),
        (
            'router_enabled: "yes"\n',
            [],
            {},
            1,
            (
                "orchestration.yaml: both router_enabled and router.enabled are set, to "
                "different values; router_enabled: router.enabled: must be true or false, not "
                '"yes" (a quoted string); fix orchestration.yaml (see the README\'s config '
                "reference)"
            ),
        ),
        (
            "router_review_every_n: two\n",
            [],
            {},
            1,
            (
                "orchestration.yaml: both router_review_every_n and router.review_every_n are "
                "set, to different values; router_review_every_n: router.review_every_n: must be "
                'an integer ≥ 0, not "two"; fix orchestration.yaml (see the README\'s config '
                "reference)"
            ),
        ),
        (
            "",
            ["--iterations", "2", "--sync-loops", "3"],
            {},
            2,
            "--iterations and --sync-loops disagree (2 vs 3); give only one of them",
        ),
        (
            "",
            [],
            {"POLL_INTERVAL": "soon"},
            2,
            "POLL_INTERVAL='soon': 'soon' is not a number of seconds; fix or unset POLL_INTERVAL",
        ),
        (
            "",
            [],
            {"ROUTER_MODE": "sideways"},
            2,
            (
                "ROUTER_MODE: router.mode: must be one of router_default, router_first, "
                'router_only, not "sideways"; fix the flag or the environment variable'
            ),
        ),
        (
            "",
            [],
            {"SYNC_LOOPS": "0"},
            2,
            "SYNC_LOOPS='0': must be from 1 to 1000000000, not 0; fix or unset SYNC_LOOPS",
        ),
    ],
)
def test_bad_legacy_input_is_one_line_and_changes_nothing(
    tmp_path: Path, edit: str, args: list[str], env: dict[str, str], code: int, needle: str
) -> None:
    root = legacy_host(tmp_path, "seed-20e6769.yaml", "state-seed.json")
    config = root / "orchestration.yaml"
    config.write_text(edit + config.read_text())
    before = snapshot(root)
    result = tandem(root, "run", *DRY, *args, env=_env(**env))
    assert result.code == code, result.err
    assert_one_line_error(result.err.replace(_warnings(result.err), ""), needle)
    assert snapshot(root) == before


def _warnings(err: str) -> str:
    return "".join(f"{line}\n" for line in err.splitlines() if line.startswith("tandem: warning:"))


def _env(**extra: str) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


def test_shim_runs_the_old_module_commands_through_tandem(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent="")
    (host.root / "orchestration.yaml").write_text("agent:\n  default: dry-run\n")
    made = tandem(host.root, "init", "--shim")
    assert made.code == 0, made.err
    assert "created scripts/orchestration/" in made.out
    assert "kept scripts/orchestration/" in tandem(host.root, "init", "--shim").out
    done = _module(host.root, "orchestrator", "--mode", "combined", "--sync-loops", "2")
    assert done.returncode == 0, done.stderr
    state = json.loads((host.root / "sync" / "state.json").read_text())
    assert state["iteration"] == 3
    assert sum("dry-run agent: galph" in line for line in done.stdout.splitlines()) == 2
    stamped = _module(host.root, "stamp_handoff", "galph", "ok", "--no-pull", "--no-push")
    assert stamped.returncode == 0, stamped.stderr
    assert "stamped galph ok: iteration 3, ralph's turn" in stamped.stdout
    assert json.loads((host.root / "sync" / "state.json").read_text())["expected_actor"] == "ralph"


def test_shim_defaults_to_the_scripts_twenty_iterations(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    tandem(host.root, "init", "--shim")
    result = _module(host.root, "supervisor", "--agent", "dry-run", "--prompt", "nothere")
    assert "using environment: SYNC_LOOPS=20" in result.stdout + result.stderr


def test_shim_never_replaces_the_old_submodule(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    old = host.root / "scripts" / "orchestration"
    write(old, {"supervisor.py": "# the old script\n", ".git": "gitdir: ../../.git/modules/x\n"})
    before = snapshot(host.root)
    result = tandem(host.root, "init", "--shim")
    assert result.code == 1
    assert_one_line_error(
        result.err,
        (
            "scripts/orchestration is the earlier scripts' submodule; tandem never deletes it; "
            "remove it with `git submodule deinit -f scripts/orchestration && git rm -f "
            "scripts/orchestration` (your config, prompts and state stay), then run `tandem init "
            "--shim` again"
        ),
    )
    assert "git submodule deinit -f scripts/orchestration" in result.err
    assert snapshot(host.root) == before
    assert (old / "supervisor.py").read_text() == "# the old script\n"


def _module(root: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m scripts.orchestration.NAME ARGS``, as the old wrappers run it."""
    env = _env(PYTHONPATH=str(REPO_ROOT / "src"))
    return subprocess.run(
        [sys.executable, "-m", f"scripts.orchestration.{name}", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_their_wrappers_sync_two_clones_through_the_remote(tmp_path: Path) -> None:
    seed = legacy_host(tmp_path, "head-2fb52b2.yaml", "state-head.json", name="seed")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(seed, "push", "--quiet", str(remote), "main")
    env = _env(SYNC_LOOPS="1", POLL_INTERVAL="0.2", PYTHONPATH=str(REPO_ROOT / "src"))
    procs = []
    for actor, command in (("galph", "supervisor"), ("ralph", "loop")):
        git(tmp_path, "clone", "--quiet", str(remote), actor)
        log = tmp_path / f"{actor}.log"
        procs.append(
            (start_tandem(tmp_path / actor, command, "--sync-via-git", *DRY, env=env, log=log), log)
        )
    try:
        for proc, log in procs:
            assert proc.wait(timeout=180) == 0, log.read_text()
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    state = json.loads(remote_file(remote, "sync/state.json"))
    assert (state["iteration"], state["expected_actor"], state["status"]) == (
        8,
        "galph",
        "complete",
    )
    for _, log in procs:
        assert "using environment: SYNC_LOOPS=1, POLL_INTERVAL=0.2" in log.read_text()

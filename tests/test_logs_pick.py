"""``tandem logs`` with the earlier ``tail_interleave_logs`` choices (SPEC §10, §12.1):
a branch's folder, --count, --roles, --min-iter/--max-iter, summaries, file listings."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from helpers import REPO_ROOT, HostRepo, git, make_host, tandem, write


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> HostRepo:
    """A host after three real iterations with the dry-run agent."""
    host = make_host(tmp_path_factory.mktemp("logs"), files={"docs/guide.md": "read me\n"})
    done = tandem(host.root, "run", "--agent", "dry-run", "--iterations", "3", env=host.env())
    assert done.code == 0, done.err
    return host


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - tandem's own output, made by this test


def _logs(host: HostRepo, *args: str) -> list[tuple[str, str]]:
    """(role, iter) of each log that ``tandem logs --format xml ARGS`` printed."""
    done = tandem(host.root, "logs", "--format", "xml", *args, env=host.env())
    assert done.code == 0, done.err
    return [(e.get("role", ""), e.get("iter", "")) for e in _parse(done.out).iter("log")]


def test_count_and_roles_pick_the_last_iterations_of_one_actor(ran: HostRepo) -> None:
    assert _logs(ran, "--count", "2", "--roles", "ralph") == [("ralph", "2"), ("ralph", "3")]
    assert _logs(ran, "-n", "1") == [("galph", "3"), ("ralph", "3")]


def test_min_and_max_iter_bound_the_iterations(ran: HostRepo) -> None:
    assert _logs(ran, "-n", "9", "--min-iter", "2", "--max-iter", "2") == [
        ("galph", "2"),
        ("ralph", "2"),
    ]


def _branch(host: HostRepo) -> str:
    return git(host.root, "branch", "--show-current").strip()


def test_a_branch_prefix_names_the_folder_under_logs(ran: HostRepo) -> None:
    branch = _branch(ran)
    assert _logs(ran, f"logs/{branch}", "-n", "1") == [("galph", "3"), ("ralph", "3")]
    assert _logs(ran, branch, "-n", "1") == [("galph", "3"), ("ralph", "3")]
    done = tandem(ran.root, "logs", "elsewhere", env=ran.env())
    assert done.code == 0
    assert done.err.strip() == "tandem: no turn logs under logs/elsewhere"


def test_ls_paths_list_the_files_at_the_commit_that_stamped_each_log(ran: HostRepo) -> None:
    done = tandem(ran.root, "logs", "--format", "xml", "-n", "1", "--ls-paths", "docs,prompts")
    assert done.code == 0, done.err
    logs = list(_parse(done.out).iter("log"))
    assert [e.get("role") for e in logs] == ["galph", "ralph"]
    for log in logs:
        listed = {ls.get("path"): (ls.text or "").split() for ls in log.iter("ls")}
        assert listed["docs"] == ["docs/guide.md"]
        assert "prompts/main.md" in listed["prompts"]
        assert {ls.get("commit") for ls in log.iter("ls")} == {log.get("commit")}
        assert log.get("commit")


def test_summaries_of_the_earlier_scripts_are_read_from_their_folders(ran: HostRepo) -> None:
    summary = f"logs/{_branch(ran)}/galph-summaries/iter-00002_20260101-summary.md"
    write(ran.root, {summary: "# did x\n"})
    done = tandem(ran.root, "logs", "--source", "summaries", "-n", "5", env=ran.env())
    assert done.code == 0, done.err
    assert done.out == f"==> {summary} <==\n# did x\n"


def test_roles_naming_no_actor_is_a_usage_error(ran: HostRepo) -> None:
    done = tandem(ran.root, "logs", "--roles", "bob", env=ran.env())
    assert done.code == 2
    assert done.err.startswith("tandem: error: ")
    assert len(done.err.strip().splitlines()) == 1
    assert "bob" in done.err


def _shim_logs(host: HostRepo, *args: str) -> list[ET.Element]:
    """The logs that ``python -m scripts.orchestration.tail_interleave_logs ARGS`` printed."""
    made = tandem(host.root, "init", "--shim", env=host.env())
    assert made.code == 0, made.err
    done = subprocess.run(
        [sys.executable, "-m", "scripts.orchestration.tail_interleave_logs", *args],
        cwd=host.root,
        env={**host.env(), "PYTHONPATH": str(REPO_ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(_parse(done.stdout).iter("log"))


def test_the_shim_runs_tail_interleave_logs_as_the_script_did(ran: HostRepo) -> None:
    logs = _shim_logs(ran, _branch(ran))
    # the script's defaults: the last 5 iterations, with docs/plans/reports listed
    assert [(e.get("role"), e.get("iter")) for e in logs] == [
        (role, str(i)) for i in (1, 2, 3) for role in ("galph", "ralph")
    ]
    assert {ls.get("path") for ls in logs[0].iter("ls")} == {"docs", "plans", "reports"}


def test_the_shims_default_listing_gives_way_to_the_callers_choice(ran: HostRepo) -> None:
    logs = _shim_logs(ran, _branch(ran), "--no-ls")
    assert len(logs) == 6
    assert [ls.get("path") for log in logs for ls in log.iter("ls")] == []
    logs = _shim_logs(ran, _branch(ran), "--ls-paths", "docs")
    assert {ls.get("path") for ls in logs[0].iter("ls")} == {"docs"}

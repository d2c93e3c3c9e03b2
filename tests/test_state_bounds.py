"""Bad state files are bounded (SPEC §13.1 rule 7): duplicate keys, a symlink, a FIFO, and a
state file outside the work tree, inside .git/ or inside logs_dir. Each is one line, exit 1,
no traceback, and nothing changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import assert_one_line_error, make_host, snapshot, tandem

GOOD = '{"iteration": 2, "expected_actor": "galph", "status": "idle"}\n'


def _refused(root: Path, *args: str, env: dict[str, str]) -> str:
    before = snapshot(root)
    done = tandem(root, "run", "--agent", "dry-run", *args, env=env, timeout=30)
    assert done.code == 1, (done.out, done.err)
    assert "Traceback" not in done.err
    assert snapshot(root) == before
    return done.err


def test_a_key_given_twice_is_refused_by_name(tmp_path: Path) -> None:
    host = make_host(tmp_path, files={"sync/state.json": GOOD[:-2] + ', "iteration": 3}\n'})
    err = _refused(host.root, env=host.env())
    assert_one_line_error(
        err,
        "sync/state.json has the key 'iteration' twice (which one counts depends on the "
        "reader); fix the file by hand (or restore it with `git checkout -- sync/state.json`), "
        "then restart",
    )


def test_a_symlinked_state_file_is_refused(tmp_path: Path) -> None:
    host = make_host(tmp_path, files={"elsewhere.json": GOOD})
    (host.root / "sync").mkdir()
    os.symlink(host.root / "elsewhere.json", host.root / "sync" / "state.json")
    err = _refused(host.root, env=host.env())
    assert_one_line_error(
        err,
        "sync/state.json is a symlink; the state file must be a regular file; replace the "
        f"link with the file it points to (cp --remove-destination {host.root}/elsewhere.json "
        "sync/state.json)",
    )


def test_a_fifo_in_place_of_the_state_file_is_refused_not_read(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    (host.root / "sync").mkdir()
    os.mkfifo(host.root / "sync" / "state.json")
    err = _refused(host.root, env=host.env())  # a read would block until the timeout
    assert_one_line_error(
        err,
        "sync/state.json is not a regular file (a FIFO, socket or device); remove it "
        "(rm sync/state.json); galph's next start creates the file",
    )


@pytest.mark.parametrize(
    ("place", "problem"),
    [
        ("../outside.json", "is outside the work tree {root}"),
        (".git/state.json", "is inside .git/"),
        ("logs/state.json", "is inside logs_dir (logs)"),
    ],
)
def test_the_state_file_must_lie_in_the_work_tree(tmp_path: Path, place: str, problem: str) -> None:
    host = make_host(tmp_path)
    where = os.path.abspath(host.root / place)
    err = _refused(host.root, "--state-file", place, env=host.env())
    shown = problem.format(root=host.root)
    assert_one_line_error(
        err,
        f"state_file {where} {shown} (flag --state-file); put the state file in the work "
        "tree, e.g. sync/state.json",
    )

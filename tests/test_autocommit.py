"""Which dirty paths a turn publishes: gitignore-style globs and size caps (SPEC §9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_host, open_test_host, write
from tandem.autocommit import Matcher, select, selection_for
from tandem.config import GALPH_GLOBS
from tandem.gitstatus import Dirty


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("plans/**/*.md", "plans/x.md", True),
        ("plans/**/*.md", "plans/a/b/x.md", True),
        ("plans/**/*.md", "plans/x.txt", False),
        ("plans/**/*.md", "other/plans/x.md", False),
        ("input.md", "input.md", True),
        ("input.md", "sub/input.md", True),
        ("docs/fix_plan.md", "docs/fix_plan.md", True),
        ("docs/fix_plan.md", "x/docs/fix_plan.md", False),
        ("/top.md", "top.md", True),
        ("/top.md", "a/top.md", False),
        ("**", "any/where/at.all", True),
        ("*.py", "a/b/c.py", True),
        ("src/*.py", "src/a/b.py", False),
        ("build/", "build/x.o", True),
        ("build/", "build", False),
        ("plans", "plans/a/b.md", True),
        ("file?.txt", "file1.txt", True),
        ("file[0-9].txt", "filex.txt", False),
        ("file[!0-9].txt", "filex.txt", True),
        ("**/deep.md", "a/b/deep.md", True),
        ("a/**", "a", False),
    ],
)
def test_gitignore_style_matching(glob: str, path: str, hit: bool) -> None:
    assert Matcher((glob,)).matches(path) is hit


def test_negation_takes_paths_back_out() -> None:
    matcher = Matcher(("**", "!secrets/**"))
    assert matcher.matches("src/a.py")
    assert not matcher.matches("secrets/key.pem")


def test_galph_defaults() -> None:
    matcher = Matcher(GALPH_GLOBS)
    for path in ("input.md", "plans/x.md", "prompts/a/b.md", ".gitignore", "docs/fix_plan.md"):
        assert matcher.matches(path), path
    for path in ("src/a.py", "docs/other.md", "plans/x.txt"):
        assert not matcher.matches(path), path


def test_size_caps_leave_paths_dirty_and_say_why(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(b"x" * 100)
    (tmp_path / "a.txt").write_bytes(b"x" * 30)
    (tmp_path / "b.txt").write_bytes(b"x" * 30)
    dirty = [
        Dirty("a.txt", "??"),
        Dirty("b.txt", "??"),
        Dirty("big.bin", "??"),
        Dirty("gone.txt", " D"),
    ]
    selection = select(dirty, ["**"], root=tmp_path, max_file_bytes=50, max_total_bytes=40)
    assert selection.commit == ("a.txt", "gone.txt")
    assert dict(selection.too_big) == {
        "b.txt": "over autocommit.max_total_bytes for one turn",
        "big.bin": "100 bytes > autocommit.max_file_bytes",
    }
    assert set(selection.left_dirty) == {"b.txt", "big.bin"}
    assert selection.untracked == ("a.txt",)


def test_never_paths_are_skipped_and_renames_are_whole(tmp_path: Path) -> None:
    (tmp_path / "new.py").write_text("x")
    dirty = [
        Dirty("logs/main/x.log", "??"),
        Dirty("sync/state.json", " M"),
        Dirty("new.py", "R.", "old.py"),
    ]
    selection = select(
        dirty,
        ["**"],
        root=tmp_path,
        never=("sync/state.json", "logs"),
        max_file_bytes=10**6,
        max_total_bytes=10**6,
    )
    assert selection.commit == ("new.py", "old.py")
    assert selection.unmatched == ()


def test_a_turn_never_selects_the_state_file_its_temp_files_or_the_logs(tmp_path: Path) -> None:
    host = open_test_host(make_host(tmp_path).root)
    dirty = [
        Dirty("sync/state.json", " M"),
        Dirty("sync/.state.json.123.4.tmp", "??"),  # an interrupted atomic write
        Dirty("other/.state.json.123.4.tmp", "??"),  # the same name elsewhere is not one
        Dirty("logs/main/events.jsonl", "??"),
        Dirty("src/app.py", "??"),
    ]
    for path in ("other/.state.json.123.4.tmp", "src/app.py"):
        write(host.config.root, {path: "x"})
    selection = selection_for(host, "ralph", dirty)
    assert selection.commit == ("other/.state.json.123.4.tmp", "src/app.py")
    assert selection.unmatched == ()

"""A real sync-mode history: two clones of a bare remote running both actors at once."""

from __future__ import annotations

from pathlib import Path

from helpers import Pair, make_pair, start_tandem

SYNC = ("--sync-via-git", "--poll-interval", "0.3")


def run_pair(tmp_path: Path, iterations: int) -> Pair:
    """``iterations`` iterations, galph on one clone and ralph on the other, all pushed."""
    pair = make_pair(tmp_path)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    ralph.plan({"ralph": {"append": {"work.txt": "done\n"}}})
    runs = [
        start_tandem(
            clone.root,
            command,
            *SYNC,
            "--iterations",
            str(iterations),
            env=clone.env(),
            log=tmp_path / f"{command}.log",
        )
        for command, clone in (("supervisor", galph), ("loop", ralph))
    ]
    codes = [run.wait(timeout=120) for run in runs]
    logs = "".join((tmp_path / f"{c}.log").read_text() for c in ("supervisor", "loop"))
    assert codes == [0, 0], logs
    return pair

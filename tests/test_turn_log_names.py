"""Turn log names (SPEC §10): two turns begun in the same second never share a log."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tandem.logs import Console, Logbook
from tandem.redaction import Redactor

START = datetime(2026, 1, 20, 3, 29, 29, tzinfo=timezone.utc)


def test_a_retry_in_the_same_second_gets_the_next_free_second(tmp_path: Path) -> None:
    book = Logbook(tmp_path / "logs", "main", Redactor({}), Console(Redactor({})), root=tmp_path)
    book.clock = lambda: START
    names = []
    for text in ("first\n", "second\n", "third\n"):
        log = book.open_turn("galph", 3, "review")
        log.line(text.strip())
        log.close()
        names.append(log.path.name)
    assert names == [
        "iter-00003_20260120T032929Z_review.log",
        "iter-00003_20260120T032930Z_review.log",
        "iter-00003_20260120T032931Z_review.log",
    ]
    folder = tmp_path / "logs" / "main" / "galph"
    assert [(folder / n).read_text().strip() for n in names] == ["first", "second", "third"]
    assert (folder / "latest.log").resolve().name == names[-1]

"""The output relay: lines joined across chunks, secrets masked wherever chunks are cut."""

from __future__ import annotations

import io
from pathlib import Path

from tandem.agents.base import Notice
from tandem.agents.relay import LineJoiner, Relay
from tandem.execution import AgentResult
from tandem.logs import Console, TurnLog
from tandem.redaction import Redactor

SECRET = "sk-live-0123456789abcdef"  # noqa: S105 - a made-up key to mask
REDACTOR = Redactor({"API_KEY": SECRET})


def joined(
    chunks: list[bytes], redactor: Redactor = REDACTOR, long_line: int = 1 << 20
) -> list[bytes]:
    out: list[bytes] = []
    joiner = LineJoiner(redactor, lambda block: out.append(bytes(block)), long_line)
    for chunk in chunks:
        joiner.feed(chunk)
    joiner.flush()
    return out


def test_lines_split_across_chunks_are_joined_and_whole_lines_pass_at_once() -> None:
    out = joined([b"one\ntw", b"o\nthr", b"ee", b"\nfour"])
    assert out == [b"one\n", b"two\n", b"three\n", b"four"]


def test_a_chunk_of_several_lines_passes_as_one_block() -> None:
    assert joined([b"a\nb\nc\npartial", b" end\n"]) == [b"a\nb\nc\n", b"partial end\n"]


def test_a_secret_cut_at_every_possible_point_is_masked() -> None:
    line = f"key={SECRET} done\n".encode()
    for cut in range(1, len(line)):
        out = b"".join(joined([line[:cut], line[cut:]]))
        assert out == b"key=*** done\n", cut


def test_a_secret_dribbled_one_byte_per_write_is_masked() -> None:
    line = f"token {SECRET}\n".encode()
    assert b"".join(joined([bytes([b]) for b in line])) == b"token ***\n"


def test_a_long_line_goes_on_in_pieces_never_cut_inside_a_secret() -> None:
    for offset in range(0, 200, 7):
        line = b"x" * (1000 + offset) + SECRET.encode() + b"y" * 500
        pieces = joined([line[i : i + 100] for i in range(0, len(line), 100)], long_line=1024)
        assert len(pieces) > 1  # it was not held back whole
        text = b"".join(pieces)
        assert SECRET.encode() not in text
        assert text == b"x" * (1000 + offset) + b"***" + b"y" * 500


def relay(tmp_path: Path, parser: object = None) -> tuple[Relay, io.BytesIO, list[float]]:
    redactor = Redactor({})
    out = io.BytesIO()
    console = Console(redactor, out=out, err=io.StringIO())
    log = TurnLog(tmp_path / "turn.log", "turn.log", redactor)
    now = [0.0]
    return Relay(log, console, redactor, parser, "turn", clock=lambda: now[0]), out, now  # type: ignore[arg-type]


class NoticeParser:
    """Renders ``retry`` lines as notices and anything else as itself."""

    def feed(self, line: str) -> list[str]:
        return [Notice(line)] if line.startswith("retry") else [line]

    def result(self) -> AgentResult | None:
        return None

    def last_api_error(self) -> str | None:
        return None


def test_the_agents_own_retry_notices_are_shown_but_are_not_activity(tmp_path: Path) -> None:
    sink, out, now = relay(tmp_path, NoticeParser())
    now[0] = 5.0
    sink.stdout(b"working\n")
    assert sink.last_activity == 5.0
    now[0] = 9.0
    sink.stdout(b"retry 1/10\nretry 2/10\n")
    sink.close()
    sink.log.close()
    assert sink.last_activity == 5.0
    assert out.getvalue() == b"working\nretry 1/10\nretry 2/10\n"


def test_the_last_meaningful_stderr_line_is_kept_for_the_reason(tmp_path: Path) -> None:
    sink, _, _ = relay(tmp_path)
    sink.stderr(b"Reading additional input from stdin...\n")
    sink.stderr(b"Error: CODEX_HOME points to /nope, but that path does not exist\n")
    sink.stderr(b"    at main (file.js:1:2)\n\n")
    sink.close()
    sink.log.close()
    assert sink.last_error_line == "Error: CODEX_HOME points to /nope, but that path does not exist"

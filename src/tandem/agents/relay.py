"""The output relay of one agent run: redact, then log, show, parse and keep the answer.

Chunks arrive as the pipes give them, cut anywhere; ``LineJoiner`` hands on whole lines
so no secret is split between two writes (SPEC §13.1 rule 8). The relay also keeps what
judging the run needs: when the agent last did something (its own retry notices do not
count, SPEC §14.5), its last meaningful stderr line, and a plain agent's router answer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tandem.agents.base import Notice, Parser, one_line
from tandem.execution import AgentResult
from tandem.logs import Console, TurnLog
from tandem.redaction import Redactor

ANSWER_CAP = 64 * 1024  # a router answer is one line; more than this is not an answer
LONG_LINE = 1 << 20
Chunk = bytes | memoryview
# Lines of a stack trace (node's "    at f (file:1:2)", Python's '  File "x", line 1')
# say where, not why.
_NOT_A_REASON = re.compile(r'^\s*(?:at\s|File "|\^+$|[-=~_*#]+$|\}+$|\]+$)')


class LineJoiner:
    """Cuts a byte stream at line ends, so a secret is never split between two chunks.

    Whole lines pass on as views of the chunk they came in (no copy unless a secret has
    to be masked); only a line that spans chunks is joined. A line longer than
    ``long_line`` goes on in pieces, each cut where no secret can straddle it.
    """

    def __init__(
        self, redactor: Redactor, emit: Callable[[Chunk], None], long_line: int = LONG_LINE
    ) -> None:
        self.redactor = redactor
        self.emit = emit
        self.long_line = long_line
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Take a chunk; pass on every line it completes."""
        start = 0
        if self._partial:
            end_of_line = data.find(b"\n")
            if end_of_line < 0:
                self._partial += data
                if len(self._partial) >= self.long_line:
                    self._flush_long()
                return
            self._out(self._partial + data[: end_of_line + 1])
            self._partial = b""
            start = end_of_line + 1
        end = data.rfind(b"\n", start) + 1
        if end > start:
            self._out(data, start, end)
            start = end
        if start < len(data):
            self._partial = data[start:]
            if len(self._partial) >= self.long_line:
                self._flush_long()

    def flush(self) -> None:
        """Pass on what is left (a last line without a newline)."""
        if self._partial:
            partial, self._partial = self._partial, b""
            self._out(partial)

    def _flush_long(self) -> None:
        cut = self.redactor.safe_end(self._partial)
        if cut > 0:
            head, self._partial = self._partial[:cut], self._partial[cut:]
            self._out(head)

    def _out(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        end = len(data) if end is None else end
        if self.redactor.found(data, start, end):
            self.emit(self.redactor.data(data[start:end]))
        else:
            self.emit(memoryview(data)[start:end])


class Relay:
    """Takes one run's output chunks and hands them on (see the module docstring)."""

    def __init__(
        self,
        log: TurnLog,
        console: Console,
        redactor: Redactor,
        parser: Parser | None,
        purpose: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.console = console
        self.parser = parser
        self.clock = clock
        self.capture = purpose == "router" and parser is None
        self.captured = bytearray()
        self.overflow = False
        self.last_activity = clock()
        self.last_error_line: str | None = None
        self._out = LineJoiner(redactor, self._lines)
        self._err = LineJoiner(redactor, self._errors)

    def stdout(self, data: bytes) -> None:
        """A chunk of stdout."""
        self._out.feed(data)

    def stderr(self, data: bytes) -> None:
        """A chunk of stderr."""
        self.last_activity = self.clock()
        self._err.feed(data)

    def _lines(self, block: Chunk) -> None:
        self.log.output(block)
        if self.capture:
            self._keep(block)
        if self.parser is None:
            self.last_activity = self.clock()
            self.console.agent_output(block)
            return
        for raw in bytes(block).splitlines():
            line = raw.decode("utf-8", errors="replace")
            if self.console.verbose:
                self.console.agent_line(line)
            shown = self.parser.feed(line)
            if not shown or not all(isinstance(s, Notice) for s in shown):
                self.last_activity = self.clock()
            for text in shown:
                self.console.agent_line(text)

    def _errors(self, block: Chunk) -> None:
        self.log.output(block)
        self.console.agent_error(block)
        for raw in bytes(block).splitlines():
            line = raw.decode("utf-8", errors="replace").strip()
            if line and not _NOT_A_REASON.match(line):
                self.last_error_line = one_line(line, limit=240)

    def _keep(self, block: Chunk) -> None:
        room = ANSWER_CAP - len(self.captured)
        self.captured += block[:room]
        self.overflow = self.overflow or len(block) > room

    def close(self) -> None:
        """Pass on last lines without a newline; flush the log."""
        self._out.flush()
        self._err.flush()
        self.log.flush()

    def answer(self, result: AgentResult | None) -> str | None:
        """The text a router prompt answered."""
        if self.parser is not None:
            return result.text if result else None
        text = self.captured.decode("utf-8", errors="replace")
        return text + "\n(output truncated)" if self.overflow else text

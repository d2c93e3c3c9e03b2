"""The one place that starts child processes.

``run``/``run_bounded`` (``commands.py``) are for short commands whose output is read at the
end (``output`` streams a long one); ``stream`` (``streaming.py``) is for agents. Every
child gets its own session, so a Ctrl-C in the terminal reaches tandem only and tandem
decides what the children get. Argv lists only; no shell is ever involved.
"""

from tandem.proc.commands import (
    Completed,
    ProcessError,
    Stalled,
    output,
    pid_alive,
    run,
    run_bounded,
    which,
)
from tandem.proc.streaming import Ending, Outcome, Sink, StreamOptions, stream

__all__ = [
    "Completed",
    "Ending",
    "Outcome",
    "ProcessError",
    "Sink",
    "Stalled",
    "StreamOptions",
    "output",
    "pid_alive",
    "run",
    "run_bounded",
    "stream",
    "which",
]

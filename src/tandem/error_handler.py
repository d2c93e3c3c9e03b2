"""The one error handler around every command: outcomes to exit codes (SPEC §11).

A ``TandemError`` is one line and its exit code; Ctrl-C is 130; anything else is a bug:
one line naming it, exit 3, and the traceback in a crash log whose path is printed. Each
line goes through the secret redaction, since messages and argv may hold a key.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from tandem import __version__
from tandem.errors import Interrupted, TandemError

EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def handled(cwd: Path) -> Iterator[list[int]]:
    """User errors: one line and their exit code; Ctrl-C: 130; bugs: 3 and a crash log."""
    outcome: list[int] = []
    try:
        yield outcome
    except TandemError as exc:
        _err(f"tandem: {exc.prefix}{_bounded(exc.what)}" + (f"; {exc.fix}" if exc.fix else ""))
        outcome.append(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        detail = f": {exc}" if str(exc) else ""
        _err(f"tandem: interrupted{detail}")
        outcome.append(EXIT_INTERRUPTED)
    except SystemExit as exc:  # --help and --version
        outcome.append(exc.code if isinstance(exc.code, int) else 0)
    except BrokenPipeError:  # `tandem logs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        outcome.append(0)
    except Exception as exc:
        _crashed(cwd, exc)
        outcome.append(EXIT_INTERNAL)


def _crashed(cwd: Path, exc: Exception) -> None:
    """Rule 9: name the bug in one line and keep the details; this never raises itself."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    try:
        where = f"details in {_crash_log(cwd)}"
    except Exception as failure:
        where = f"no crash log could be written ({type(failure).__name__})"
    with contextlib.suppress(Exception):
        _err(f"tandem: internal error (a bug): {what}; {where}")
        return
    with contextlib.suppress(Exception):  # even redaction failed: plain stderr
        os.write(2, f"tandem: internal error (a bug): {type(exc).__name__}\n".encode())


def _crash_log(cwd: Path) -> Path:
    """The traceback with tandem's, git's and Python's versions, the platform and argv."""
    import tempfile
    import time
    import traceback

    text = "\n".join([*_crash_facts(), "", traceback.format_exc()])
    with contextlib.suppress(Exception):
        from tandem.redaction import Redactor

        text = Redactor(os.environ).text(text)  # argv and messages may hold a secret
    name = f"tandem-crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    folders = [Path(tempfile.gettempdir())]
    with contextlib.suppress(Exception):
        from tandem import configfile

        folders.insert(0, configfile.load(cwd).logs_dir)
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text)
            return path
    raise OSError(f"none of {', '.join(map(str, folders))} is writable")


def _crash_facts() -> list[str]:
    import platform

    git = "unknown"
    with contextlib.suppress(Exception):
        from tandem import proc

        git = proc.run(("git", "--version"), cwd=Path.cwd(), timeout=5).text.strip()
    return [
        f"tandem: {__version__}",
        f"git: {git}",
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"command: {' '.join(sys.argv)}",
    ]


def _bounded(what: str, limit: int = 600) -> str:
    """Rule 7: what went wrong, cut if it runs away, so the fix stays in view.

    Messages bound their own parts (config problems, agent output, path lists) to about
    300 characters; this stops one that does not from flooding the terminal.
    """
    one_line = " ".join(what.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _err(line: str) -> None:
    from tandem.redaction import Redactor

    one_line = " ".join(line.split())  # an error is one line, whatever its parts said
    sys.stderr.write(Redactor(os.environ).text(one_line) + "\n")
    sys.stderr.flush()

"""Loaded by the Python of a tandem under test (this folder first on PYTHONPATH): SIGKILL
the process inside an atomic write of the state file, after the temp file is written and
synced and before its rename, when the temp file contains ``TANDEM_KILL_IN_WRITE``."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

_NEEDLE = os.environ.get("TANDEM_KILL_IN_WRITE", "")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "os.rename" or not _NEEDLE:
        return
    source = os.fsdecode(args[0])
    if ".state.json." in source and source.endswith(".tmp"):
        with open(source, encoding="utf-8") as handle:
            if _NEEDLE in handle.read():
                os.kill(os.getpid(), signal.SIGKILL)


if _NEEDLE:
    sys.addaudithook(_hook)

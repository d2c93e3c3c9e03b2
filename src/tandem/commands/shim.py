"""``tandem init --shim``: ``python -m scripts.orchestration.X`` keeps working (SPEC §12.1).

The earlier scripts lived in a ``scripts/orchestration`` submodule that the hosts' own
wrappers and cron lines run as modules. The shim is a tiny package in its place whose
modules exec tandem with the same arguments. It is written only where that folder does
not exist; the old submodule is never deleted (the command says how to remove it), and
any other folder is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tandem.errors import TandemError

FOLDER = "scripts/orchestration"


@dataclass(frozen=True)
class Shim:
    """One module of the scripts: the tandem subcommand (and fixed flags) it becomes, and
    the scripts' defaults that tandem does not share: environment values set unless the
    caller set them, and flags added unless the caller gave one starting with ``unless``."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()


_LOOPS = (("SYNC_LOOPS", "20"),)  # the scripts ran 20 iterations by default
MODULES = {
    "supervisor": Shim(("supervisor",), env=_LOOPS),
    "loop": Shim(("loop",), env=_LOOPS),
    "orchestrator": Shim(("run",), env=_LOOPS),
    "stamp_handoff": Shim(("stamp", "--sync-via-git")),  # it pulled and pushed by default
    # it printed XML of the last 5 iterations (a later -n wins) with these folders listed
    "tail_interleave_logs": Shim(
        ("logs", "--format", "xml", "--count", "5"),
        flags=("--ls-paths", "docs,plans,reports"),
        unless=("--ls-paths", "--no-ls"),
    ),
}
_MARK = "written by `tandem init --shim`"
_INIT = f'''"""The earlier orchestration scripts' entry points, now run by tandem ({_MARK}).

Remove this folder to stop using it; tandem itself does not need it.
"""

import importlib.util
import os
import shutil
import sys


def run(subcommand, env=(), flags=(), unless=()):
    """Exec tandem SUBCOMMAND with this process's arguments (never returns); ``env`` and
    ``flags`` are the script's defaults (flags only when no argument starts with ``unless``)."""
    for name, value in env:
        os.environ.setdefault(name, value)
    args = [*subcommand, *sys.argv[1:]]
    if not (unless and any(a.startswith(unless) for a in sys.argv[1:])):
        args += flags
    if importlib.util.find_spec("tandem") is not None:
        os.execv(sys.executable, [sys.executable, "-m", "tandem", *args])
    found = shutil.which("tandem")
    if found is None:
        sys.exit("tandem: error: tandem is not installed; pip install tandem (or put it on PATH)")
    os.execv(found, [found, *args])
'''
_MODULE = '''"""`python -m scripts.orchestration.{name}` runs `tandem {shown}` ({mark})."""

from scripts.orchestration import run

if __name__ == "__main__":
    run({args}, env={env}, flags={flags}, unless={unless})
'''


def write_shim(root: Path) -> list[str]:
    """Write the shim package under ``root``; the lines saying what was done."""
    folder = root / FOLDER
    if (folder / "__init__.py").is_file() and _MARK in (folder / "__init__.py").read_text():
        return [f"kept {FOLDER}/ (the shim is there)"]
    if folder.exists():
        raise TandemError(*_refusal(root, folder))
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(_INIT)
    for name, shim in MODULES.items():
        text = _MODULE.format(
            name=name,
            shown=" ".join(shim.args),
            mark=_MARK,
            args=repr(shim.args),
            env=repr(shim.env),
            flags=repr(shim.flags),
            unless=repr(shim.unless),
        )
        (folder / f"{name}.py").write_text(text)
    return [f"created {FOLDER}/ (python -m scripts.orchestration.* now runs tandem)"]


def _refusal(root: Path, folder: Path) -> tuple[str, str]:
    """Why the shim is not written over ``folder``, and how to clear the way."""
    if _is_submodule(root, folder):
        return (
            f"{FOLDER} is the earlier scripts' submodule; tandem never deletes it",
            f"remove it with `git submodule deinit -f {FOLDER} && git rm -f {FOLDER}` "
            "(your config, prompts and state stay), then run `tandem init --shim` again",
        )
    return (
        f"{FOLDER} exists and is not the old submodule, so the shim is not written there",
        "move that folder away if it is not yours, then run `tandem init --shim` again",
    )


def _is_submodule(root: Path, folder: Path) -> bool:
    """A git submodule checkout (a ``.git`` file or folder), or listed in .gitmodules."""
    if (folder / ".git").exists():
        return True
    modules = root / ".gitmodules"
    return modules.is_file() and f"path = {FOLDER}" in modules.read_text()

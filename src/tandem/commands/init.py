"""``tandem init``: create what a host needs, never overwriting anything (SPEC §2)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tandem.commands.common import host_root
from tandem.commands.shim import write_shim
from tandem.config import CONFIG_NAME
from tandem.state import initial
from tandem.times import utcnow

PROMPTS = ("supervisor.md", "main.md", "reviewer.md", "router.md")
_IGNORED = {"logs", "logs/", "/logs", "/logs/"}


def init(*, cwd: Path, agent: str | None = None, hint: bool = True, shim: bool = False) -> int:
    """Create the config, starter prompts, state file and the logs/ ignore line.

    With ``shim``, only the ``scripts/orchestration`` package for hosts of the earlier
    scripts: their config, prompts and state are already there.
    """
    root = host_root(cwd)
    if shim:
        for line in write_shim(root):
            print(f"tandem: {line}")
        return 0
    templates = resources.files("tandem") / "templates"
    config_text = (templates / CONFIG_NAME).read_text().replace("__AGENT__", agent or "claude")
    made = [_create(root, CONFIG_NAME, config_text)]
    for name in PROMPTS:
        made.append(_create(root, f"prompts/{name}", (templates / "prompts" / name).read_text()))
    made.append(_create(root, "sync/state.json", initial(utcnow()).dumps()))
    made.append(_ignore_logs(root / ".gitignore"))
    for line in made:
        print(f"tandem: {line}")
    if hint:
        print(
            "tandem: next: edit the prompts, commit these files, then `tandem run` "
            "(try `tandem run --agent dry-run` first: it spends nothing)"
        )
    return 0


def _create(root: Path, shown: str, text: str) -> str:
    path = root / shown
    if path.exists():
        return f"kept {shown} (exists)"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return f"created {shown}"


def _ignore_logs(path: Path) -> str:
    lines = path.read_text().splitlines() if path.exists() else []
    if any(line.strip() in _IGNORED for line in lines):
        return "kept .gitignore (logs/ already ignored)"
    with path.open("a") as handle:
        if lines and not path.read_text().endswith("\n"):
            handle.write("\n")
        handle.write("logs/\n")
    return "added logs/ to .gitignore"

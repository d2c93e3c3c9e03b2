"""Every test runs with its own HOME and git config; nothing touches the real home."""

from __future__ import annotations

from pathlib import Path

import pytest

# Variables from the developer's shell that would change what tandem does.
_CLEARED = (
    "TANDEM_CONFIG",
    "CLAUDE_CMD",
    "CODEX_CMD",
    "GEMINI_CMD",
    "OPENCODE_CMD",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh HOME and global git config (fixed identity, branch main, file remotes only)."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test\n\temail = test@example.invalid\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)

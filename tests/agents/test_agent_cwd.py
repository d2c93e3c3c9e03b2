"""Where an agent runs: the host root, with a PWD that says so, wherever tandem started."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import make_host, tandem

# Writes the PWD it was given into pwd.txt in its working directory.
SHOW_DIR = "import os; open('pwd.txt', 'w').write(os.environ.get('PWD', '<unset>'))"


def test_an_agent_started_from_a_subfolder_gets_the_host_root_as_pwd(tmp_path: Path) -> None:
    host = make_host(tmp_path, agent=f'    pwd: [{sys.executable}, -c, "{SHOW_DIR}"]\n')
    sub = host.root / "docs"
    sub.mkdir()
    run = tandem(sub, "run", "--iterations", "1", "--agent", "pwd", env=host.env(PWD=str(sub)))
    assert run.code == 0, run.err
    # opencode, for one, takes PWD for its project and would run its tools in docs/.
    assert (host.root / "pwd.txt").read_text() == str(host.root)
    assert not (sub / "pwd.txt").exists()


# Writes what GIT_DIR and GIT_INDEX_FILE it was given into git-env.txt.
SHOW_GIT = (
    "import os; open('git-env.txt', 'w').write("
    "os.environ.get('GIT_DIR', '-') + ' ' + os.environ.get('GIT_INDEX_FILE', '-'))"
)


def test_a_run_started_from_a_git_hook_does_not_pass_git_dir_to_the_agent(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, agent=f'    gitenv: [{sys.executable}, -c, "{SHOW_GIT}"]\n')
    other = tmp_path / "elsewhere.git"
    hook_env = host.env(GIT_DIR=str(other), GIT_INDEX_FILE=str(other / "index"))
    run = tandem(host.root, "run", "--iterations", "1", "--agent", "gitenv", env=hook_env)
    assert run.code == 0, run.err
    # the agent's own git must work on the host, not on the repository the hook named
    assert (host.root / "git-env.txt").read_text() == "- -"

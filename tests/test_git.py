"""git.py against real repositories: status, commits by pathspec, errors translated once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers import git, make_pair, tandem
from tandem.errors import (
    GitError,
    GitLocked,
    NotAGitRepo,
    PushRejected,
    RemoteRefused,
    RemoteUnreachable,
)
from tandem.git import Repo
from tandem.gitenv import agent_env
from tandem.gitstatus import Dirty

LATIN1 = "caf\udce9.txt"  # b"caf\xe9.txt": not UTF-8, kept as surrogate escapes


def make_repo(path: Path) -> Repo:
    git(path.parent, "init", "--quiet", str(path))
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "--quiet", "-m", "one")
    return Repo(path)


def committed(repo: Repo, rev: str = "HEAD") -> list[str]:
    return sorted(repo.changed_paths(rev))


# -- status ------------------------------------------------------------------------------
def test_status_lists_renames_untracked_files_one_by_one_and_non_utf8_names(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo.root, "mv", "a.txt", "b c.txt")
    (repo.root / "new" / "deep").mkdir(parents=True)
    (repo.root / "new" / "deep" / "x.txt").write_text("x")
    (repo.root / "new" / "y.txt").write_text("y")
    os.close(os.open(os.fsencode(repo.root) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))
    status = repo.status()
    assert status.branch == "main"
    assert status.head == git(repo.root, "rev-parse", "HEAD").strip()
    assert set(status.dirty) == {
        Dirty("b c.txt", "R.", "a.txt"),
        Dirty("new/deep/x.txt", "??"),
        Dirty("new/y.txt", "??"),
        Dirty(LATIN1, "??"),
    }


def test_status_of_a_repository_without_commits_and_a_detached_head(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet", "empty")
    assert Repo(tmp_path / "empty").status().head is None
    repo = make_repo(tmp_path / "r")
    git(repo.root, "checkout", "--quiet", "--detach")
    assert repo.status().branch is None


# -- commits by pathspec -----------------------------------------------------------------
def test_commit_paths_commits_exactly_the_paths_whatever_else_is_staged(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo.root / "staged.txt").write_text("the agent staged this\n")
    git(repo.root, "add", "staged.txt")
    (repo.root / "a.txt").write_text("changed\n")
    names = ["*.txt", ":(glob)**", "-n", LATIN1]  # read literally, never as patterns
    for name in names:
        (repo.root / name).write_bytes(b"x")
    sha = repo.commit_paths(["a.txt", *names], untracked=names, message="turn")
    assert git(repo.root, "rev-parse", "--short=7", "HEAD").strip().startswith(sha[:7])
    assert committed(repo) == sorted(["a.txt", *names])
    assert "A  staged.txt" in git(repo.root, "status", "--porcelain")  # still staged only


# -- every failure is a GitError -------------------------------------------------------
def test_a_failed_command_names_itself_and_gits_reason(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    with pytest.raises(GitError) as caught:
        repo.git("-c", "x.y=1", "checkout", "no-such-branch")
    assert caught.value.what.startswith("git checkout failed: pathspec 'no-such-branch'")


def test_git_missing_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    repo.env["PATH"] = str(tmp_path / "nowhere")
    with pytest.raises(GitError, match="git cannot be run") as caught:
        repo.status()
    assert caught.value.fix == "install git and try again"


def test_not_a_git_repo(tmp_path: Path) -> None:
    with pytest.raises(NotAGitRepo, match="is not inside a git work tree"):
        Repo.discover(tmp_path)


@pytest.mark.parametrize("lock", ["index.lock", "refs/heads/main.lock"])
def test_a_lock_file_is_named_with_advice(tmp_path: Path, lock: str) -> None:
    repo = make_repo(tmp_path / "r")
    path = repo.root / ".git" / lock
    path.touch()
    (repo.root / "a.txt").write_text("changed\n")
    with pytest.raises(GitLocked) as caught:
        repo.commit_paths(["a.txt"], [], "turn")
    assert caught.value.what == f"git commit failed: {path} exists"
    assert caught.value.fix == (
        f"another git process is running, or one crashed: if none runs, delete {path}"
    )


# -- inherited GIT_* variables -----------------------------------------------------------
def test_git_variables_from_a_hook_do_not_redirect_tandems_git(tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other")
    repo_root = make_repo(tmp_path / "r").root
    hook_env = {
        **os.environ,
        "GIT_DIR": str(other.root / ".git"),
        "GIT_WORK_TREE": str(other.root),
        "GIT_INDEX_FILE": str(tmp_path / "bogus-index"),
        "GIT_LITERAL_PATHSPECS": "0",
        "GIT_ICASE_PATHSPECS": "1",
    }
    (repo_root / "sub").mkdir()
    repo = Repo.discover(repo_root / "sub", hook_env)
    assert repo.root == repo_root
    (repo_root / "a.txt").write_text("mine\n")
    repo.commit_paths(["a.txt"], [], "turn")
    assert git(repo_root, "log", "-1", "--format=%s").strip() == "turn"
    assert git(other.root, "log", "-1", "--format=%s").strip() == "one"
    assert not (tmp_path / "bogus-index").exists()


def test_agents_inherit_the_environment_minus_what_redirects_git() -> None:
    env = {
        "PATH": "/bin",
        "LANG": "de_DE.UTF-8",
        "GIT_DIR": "/elsewhere/.git",
        "GIT_INDEX_FILE": "/tmp/index",
        "GIT_WORK_TREE": "/elsewhere",
        "GIT_OBJECT_DIRECTORY": "/elsewhere/objects",
        "GIT_SSH_COMMAND": "ssh -i key",
        "GIT_ASKPASS": "/bin/askpass",
        "GIT_CONFIG_GLOBAL": "/home/u/.gitconfig",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.autocrlf",
        "GIT_CONFIG_VALUE_0": "false",
        "GIT_AUTHOR_NAME": "Ann",
        "GIT_COMMITTER_EMAIL": "ann@example.invalid",
        "GIT_ALLOW_PROTOCOL": "ssh",
    }
    dropped = {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "GIT_OBJECT_DIRECTORY"}
    assert agent_env(env) == {k: v for k, v in env.items() if k not in dropped}


def test_tandems_own_calls_are_in_english_and_never_prompt(tmp_path: Path) -> None:
    repo = Repo(tmp_path, {"LANG": "de_DE.UTF-8", "PATH": os.environ["PATH"]})
    assert (repo.env["LC_ALL"], repo.env["GIT_TERMINAL_PROMPT"]) == ("C", "0")


def test_tandems_status_never_rewrites_the_index(tmp_path: Path) -> None:
    """git status refreshes and rewrites the index through index.lock unless told not to;
    tandem's never does, so it cannot make an agent's own git command meet that lock."""
    repo = make_repo(tmp_path / "repo")
    os.utime(repo.root / "a.txt", (1, 1))  # stat data the index lacks: a refresh writes
    index = repo.root / ".git" / "index"
    before = index.stat()
    assert repo.status().dirty == ()  # same content: clean
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    git(repo.root, "status", "--porcelain")  # git's own default does rewrite it
    assert index.stat().st_ino != before.st_ino


# -- pushes: the remote moved, or it said no ---------------------------------------------
def pair_of_clones(tmp_path: Path) -> tuple[Path, Repo, Path]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    seed = make_repo(tmp_path / "seed")
    git(seed.root, "push", "--quiet", str(remote), "HEAD:refs/heads/main")
    git(tmp_path, "clone", "--quiet", str(remote), "mine")
    git(tmp_path, "clone", "--quiet", str(remote), "theirs")
    mine = Repo(tmp_path / "mine")
    git(mine.root, "commit", "--quiet", "--allow-empty", "-m", "mine")
    return remote, mine, tmp_path / "theirs"


def test_a_push_behind_the_remote_is_rejected_as_moved(tmp_path: Path) -> None:
    _, mine, theirs = pair_of_clones(tmp_path)
    git(theirs, "commit", "--quiet", "--allow-empty", "-m", "theirs")
    git(theirs, "push", "--quiet", "origin", "main")
    with pytest.raises(PushRejected) as caught:
        mine.push("origin", "main")
    assert caught.value.what == "push to origin/main was rejected: the remote moved (fetch first)"


def test_a_hook_refusal_quotes_the_hook_and_is_not_retryable(tmp_path: Path) -> None:
    remote, mine, _ = pair_of_clones(tmp_path)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'policy: sign your commits' >&2\necho 'see RULES.md' >&2\nexit 1\n"
    )
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(RemoteRefused) as caught:
        mine.push("origin", "main")
    assert not isinstance(caught.value, PushRejected | RemoteUnreachable)
    assert caught.value.what == (
        "push to origin/main refused by the remote (pre-receive hook declined): "
        "policy: sign your commits / see RULES.md"
    )
    assert caught.value.exit_code == 1


def test_a_refused_push_in_a_sync_run_stops_with_the_hooks_words(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    hook = pair.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'frozen for the release' >&2\nexit 1\n")
    hook.chmod(0o755)
    galph = pair.clones["galph"]
    before = git(pair.remote, "rev-parse", "main")
    result = tandem(
        galph.root, "supervisor", "--sync-via-git", "--iterations", "1", env=galph.env()
    )
    assert result.code == 1
    assert "Traceback" not in result.err
    last = result.err.strip().splitlines()[-1]
    assert last == (
        "tandem: error: push to origin/main refused by the remote (pre-receive hook declined): "
        "frozen for the release; do what the remote says (or ask its admin), then rerun; the "
        "commits are kept here"
    )
    assert git(pair.remote, "rev-parse", "main") == before
    assert galph.calls() == []


# -- ssh refusals: the fix, not "check the network" --------------------------------------
def fake_ssh(tmp_path: Path, stderr: str, code: int = 255) -> Repo:
    """A clone whose origin is an ssh URL, reached through a fake ssh that fails."""
    ssh = tmp_path / "fake-ssh"
    ssh.write_text(f"#!/bin/sh\nprintf '%s\\n' '{stderr}' >&2\nexit {code}\n")
    ssh.chmod(0o755)
    repo = make_repo(tmp_path / "r")
    git(repo.root, "remote", "add", "origin", "ssh://deploy@git.example.invalid:2222/srv/r.git")
    env = {**os.environ, "GIT_SSH_COMMAND": str(ssh), "GIT_SSH_VARIANT": "ssh"}
    env["GIT_ALLOW_PROTOCOL"] = "ssh"
    return Repo(repo.root, env)


def test_an_unknown_host_key_says_how_to_add_it(tmp_path: Path) -> None:
    repo = fake_ssh(tmp_path, "Host key verification failed.")
    with pytest.raises(RemoteRefused) as caught:
        repo.fetch("origin", "main")
    assert caught.value.what == (
        "remote 'origin' refused (git fetch): Host key verification failed"
    )
    fix = str(caught.value.fix)
    assert "`ssh-keyscan -H -p 2222 git.example.invalid >> ~/.ssh/known_hosts`" in fix
    assert "`ssh -p 2222 deploy@git.example.invalid`" in fix


def test_a_refused_key_names_the_user_and_host_to_check(tmp_path: Path) -> None:
    repo = fake_ssh(tmp_path, "deploy@git.example.invalid: Permission denied (publickey).")
    with pytest.raises(RemoteRefused) as caught:
        repo.ls_remote("origin", "main")
    assert caught.value.what == (
        "remote 'origin' refused (git ls-remote): Permission denied (publickey) "
        "for deploy@git.example.invalid"
    )
    assert "user deploy on git.example.invalid accepts your key" in str(caught.value.fix)
    assert "`ssh-add -l`" in str(caught.value.fix)


def test_an_ssh_connection_failure_is_an_outage(tmp_path: Path) -> None:
    repo = fake_ssh(
        tmp_path, "ssh: connect to host git.example.invalid port 2222: Connection timed out"
    )
    with pytest.raises(RemoteUnreachable) as caught:
        repo.push("origin", "main")
    assert caught.value.what == (
        "remote 'origin' unreachable: ssh: connect to host git.example.invalid port 2222: "
        "Connection timed out (git push)"
    )

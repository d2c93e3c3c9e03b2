"""Sync via git over ssh://, through a real ``sshd`` on 127.0.0.1 (SPEC §8, §8.7).

The server is ``netrig.Sshd``: its own config, host key and authorized key under the
test's folder. git reaches it with ``GIT_SSH_COMMAND`` (``-i``, ``UserKnownHostsFile``,
``IdentitiesOnly``), as a user's ``core.sshCommand`` would. Skipped where sshd cannot run.
"""

from __future__ import annotations

import getpass
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import (
    REPO_ROOT,
    HostRepo,
    Pair,
    assert_one_line_error,
    git,
    make_pair,
    remote_subjects,
    tandem,
)
from netrig import Sshd, network_env

MISSING = Sshd.missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no sshd here: {MISSING}")
SYNC = ("--sync-via-git", "--poll-interval", "0.3")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    with Sshd(tmp_path / "sshd") as server:
        yield server


def over_ssh(tmp_path: Path, sshd: Sshd) -> Pair:
    pair = make_pair(tmp_path)
    for clone in pair.clones.values():
        git(clone.root, "remote", "set-url", "origin", sshd.url(pair.remote))
    return pair


def ssh_env(host: HostRepo, sshd: Sshd, known_hosts: Path, key: Path) -> dict[str, str]:
    env = network_env(host.env())
    env["GIT_SSH_COMMAND"] = sshd.ssh_command(known_hosts, key)
    return env


def test_a_handoff_over_ssh(tmp_path: Path, sshd: Sshd) -> None:
    pair = over_ssh(tmp_path, sshd)
    galph, ralph = pair.clones["galph"], pair.clones["ralph"]
    galph.plan({"galph": {"write": {"input.md": "task\n"}}})
    ralph.plan({"ralph": {"write": {"work.txt": "done\n"}}})
    log = tmp_path / "ralph.log"
    with log.open("wb") as out:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "tandem", "loop", *SYNC],
            cwd=ralph.root,
            env={
                **ssh_env(ralph, sshd, sshd.trusted, sshd.client_key),
                "PYTHONPATH": str(REPO_ROOT / "src"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    env = ssh_env(galph, sshd, sshd.trusted, sshd.client_key)
    result = tandem(galph.root, "supervisor", *SYNC, env=env)
    assert result.code == 0, result.err
    assert waiting.wait(timeout=60) == 0, log.read_text()
    assert "waiting for " in log.read_text()
    subjects = remote_subjects(pair.remote)
    assert any(s.startswith("[SYNC i=1] actor=galph → next=ralph status=ok") for s in subjects)
    assert subjects[-1].startswith("[SYNC i=2] actor=ralph → next=galph status=ok")
    assert git(pair.remote, "show", "main:work.txt") == "done\n"
    assert (len(galph.calls()), len(ralph.calls())) == (1, 1)


def test_an_unknown_host_key_is_one_line_with_the_fix(tmp_path: Path, sshd: Sshd) -> None:
    pair = over_ssh(tmp_path, sshd)
    galph = pair.clones["galph"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = tandem(
        galph.root, "supervisor", *SYNC, env=ssh_env(galph, sshd, empty, sshd.client_key)
    )
    assert result.code == 1
    port, user = sshd.port, getpass.getuser()
    assert_one_line_error(
        result.err,
        "remote 'origin' refused (git fetch): Host key verification failed; add the host "
        f"key: `ssh-keyscan -H -p {port} 127.0.0.1 >> ~/.ssh/known_hosts` (check its "
        f"fingerprint first), or connect once by hand with `ssh -p {port} {user}@127.0.0.1`",
    )
    assert galph.calls() == []


def test_a_refused_key_is_one_line_with_the_fix(tmp_path: Path, sshd: Sshd) -> None:
    pair = over_ssh(tmp_path, sshd)
    galph = pair.clones["galph"]
    env = ssh_env(galph, sshd, sshd.trusted, sshd.stranger_key)
    result = tandem(galph.root, "supervisor", *SYNC, env=env)
    assert result.code == 1
    port, user = sshd.port, getpass.getuser()
    assert_one_line_error(
        result.err,
        f"remote 'origin' refused (git fetch): Permission denied (publickey) for "
        f"{user}@127.0.0.1; check that user {user} on 127.0.0.1 accepts your key: "
        f"`ssh-add -l` lists the loaded keys, `ssh -v -p {port} {user}@127.0.0.1` shows the "
        "one offered (IdentityFile in ~/.ssh/config or core.sshCommand picks it)",
    )
    assert galph.calls() == []

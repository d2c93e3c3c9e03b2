"""Git over a real network that fails: bounded commands, outages told from refusals (§8.7).

A ``git daemon`` and smart HTTP on 127.0.0.1 behind the fault proxy of ``netrig``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import git, make_pair, remote_subjects, tandem
from netrig import GitDaemon, Proxy, SmartHttp, network_env, served
from tandem.errors import RemoteUnreachable
from tandem.git import Repo

BOUND = 2.0  # network_timeout in these tests
SLACK = 8.0  # a loaded CI machine: the bound plus this is still far from TCP's minutes


@dataclass
class Net:
    """A served bare remote, a clone whose origin goes through the proxy, its ``Repo``."""

    remote: Path
    clone: Path
    proxy: Proxy
    repo: Repo


def _served(tmp_path: Path, server: GitDaemon | SmartHttp) -> Iterator[Net]:
    remote = tmp_path / "srv" / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(remote), str(seed))
    (seed / "big.bin").write_bytes(os.urandom(3 << 20))  # a transfer that takes a while
    git(seed, "add", "big.bin")
    git(seed, "commit", "--quiet", "-m", "seed")
    git(seed, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    clone = tmp_path / "clone"
    git(tmp_path, "init", "--quiet", str(clone))
    git(clone, "commit", "--quiet", "--allow-empty", "-m", "local")
    with Proxy(server.port) as proxy:
        git(clone, "remote", "add", "origin", proxy.url(server.url("remote.git")))
        repo = Repo(clone, network_env(os.environ), network_timeout=BOUND)
        yield Net(remote, clone, proxy, repo)


@pytest.fixture
def daemon_net(tmp_path: Path) -> Iterator[Net]:
    (tmp_path / "srv").mkdir()
    with GitDaemon(tmp_path / "srv") as server:
        yield from _served(tmp_path, server)


@pytest.fixture
def http_net(tmp_path: Path) -> Iterator[Net]:
    (tmp_path / "srv").mkdir()
    with SmartHttp(tmp_path / "srv") as server:
        yield from _served(tmp_path, server)


def fetch(net: Net) -> object:
    return net.repo.fetch("origin", "main")


def push(net: Net) -> object:
    git(net.clone, "fetch", "--quiet", str(net.remote), "main")
    git(net.clone, "reset", "--quiet", "--hard", "FETCH_HEAD")
    git(net.clone, "commit", "--quiet", "--allow-empty", "-m", f"more {time.monotonic()}")
    net.repo.push("origin", "main")
    return None


def ls_remote(net: Net) -> object:
    return net.repo.ls_remote("origin", "main")


OPS: dict[str, Callable[[Net], object]] = {"fetch": fetch, "push": push, "ls-remote": ls_remote}


def timed_failure(op: Callable[[Net], object], net: Net) -> tuple[RemoteUnreachable, float]:
    started = time.monotonic()
    with pytest.raises(RemoteUnreachable) as caught:
        op(net)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("name", list(OPS))
def test_a_blackhole_ends_the_command_within_the_bound_then_it_works(
    daemon_net: Net, name: str
) -> None:
    op = OPS[name]
    daemon_net.proxy.blackhole()
    error, took = timed_failure(op, daemon_net)
    assert BOUND <= took < BOUND + SLACK
    assert error.what == f"remote 'origin' unreachable: no progress for 2 s (git {name})"
    assert daemon_net.proxy.accepted >= 1  # git did connect: the stall was after that
    daemon_net.proxy.heal()
    op(daemon_net)


def test_a_cut_in_the_middle_of_a_fetch_ends_it_within_the_bound(daemon_net: Net) -> None:
    daemon_net.proxy.freeze_after(64 << 10)  # some of the 3 MiB pack, then silence
    error, took = timed_failure(fetch, daemon_net)
    assert daemon_net.proxy.downstream > 0
    assert took < BOUND + SLACK
    assert "no progress for 2 s (git fetch)" in error.what
    daemon_net.proxy.heal()
    assert fetch(daemon_net) == git(daemon_net.remote, "rev-parse", "main").strip()


def test_a_slow_but_moving_fetch_is_not_cut(daemon_net: Net) -> None:
    bound = 4.0  # git reports progress every second; the rest is margin for a loaded CI
    repo = Repo(daemon_net.clone, network_env(os.environ), network_timeout=bound)
    daemon_net.proxy.delay(50)
    daemon_net.proxy.throttle(600 << 10)  # the 3 MiB take about 5 s: longer than the bound
    started = time.monotonic()
    assert repo.fetch("origin", "main") == git(daemon_net.remote, "rev-parse", "main").strip()
    assert time.monotonic() - started > bound


def test_the_proxy_delays_each_direction(daemon_net: Net) -> None:
    sha = ls_remote(daemon_net)
    daemon_net.proxy.delay(200)
    started = time.monotonic()
    assert ls_remote(daemon_net) == sha
    assert time.monotonic() - started >= 0.4  # at least one round trip, 0.2 s each way


@pytest.mark.parametrize("name", list(OPS))
def test_a_reset_is_an_outage(daemon_net: Net, name: str) -> None:
    daemon_net.proxy.reset()
    error, took = timed_failure(OPS[name], daemon_net)
    assert took < BOUND + SLACK
    assert error.what.startswith("remote 'origin' unreachable: ")
    assert error.what.endswith(f"(git {name})")
    daemon_net.proxy.heal()
    OPS[name](daemon_net)


def test_a_refused_connection_is_an_outage(daemon_net: Net) -> None:
    daemon_net.proxy.refuse()
    error, _ = timed_failure(fetch, daemon_net)
    assert "Connection refused" in error.what
    daemon_net.proxy.heal()
    fetch(daemon_net)


@pytest.mark.parametrize("name", list(OPS))
def test_smart_http_blackhole_ends_within_the_bound_and_kills_the_helper(
    http_net: Net, name: str
) -> None:
    OPS[name](http_net)  # works through the proxy
    http_net.proxy.blackhole()
    error, took = timed_failure(OPS[name], http_net)
    assert took < BOUND + SLACK
    assert f"no progress for 2 s (git {name})" in error.what
    assert _helpers_for(http_net.proxy.port) == []  # git-remote-http went with git
    http_net.proxy.heal()
    OPS[name](http_net)


def _helpers_for(port: int) -> list[int]:
    """Pids of live processes whose command line names the proxy's port."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f":{port}/".encode() in cmdline:
            found.append(int(entry.name))
    return found


# -- tandem itself over the network ------------------------------------------------------
def test_a_sync_turn_over_git_daemon_through_the_proxy(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    with served(pair.remote, [galph.root]) as net:
        result = tandem(
            galph.root,
            "supervisor",
            "--sync-via-git",
            "--iterations",
            "1",
            env=network_env(galph.env()),
        )
        assert result.code == 0, result.err
        assert net.proxy.accepted >= 3  # sync, claim push, finish push at least
    assert "actor=galph → next=ralph status=ok" in remote_subjects(pair.remote)[-1]


def test_a_sync_run_that_cannot_reach_the_remote_says_so_in_one_line(tmp_path: Path) -> None:
    pair = make_pair(tmp_path)
    galph = pair.clones["galph"]
    with served(pair.remote, [galph.root]) as net:
        net.proxy.refuse()
        result = tandem(
            galph.root,
            "supervisor",
            "--sync-via-git",
            "--iterations",
            "1",
            "--max-offline-secs",
            "1",
            env=network_env(galph.env()),
        )
    assert result.code == 1
    assert "Traceback" not in result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("tandem: error: remote unreachable since ")
    assert "gave up after sync.max_offline_secs" in last
    assert "remote unreachable since" in result.err.splitlines()[0]  # the heartbeat came first
    assert "Connection refused (git fetch); gave up" in last
    assert "; check the network, then rerun" in last
    assert galph.calls() == []

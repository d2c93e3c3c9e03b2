"""A real network between tests and a git remote, with faults on demand.

Everything binds 127.0.0.1 only and ends with its ``with`` block (or the test process).

``GitDaemon(base)``
    ``git daemon`` serving every repository under ``base`` over ``git://``, pushes on.
    ``.port``; ``.url("remote.git")`` is ``git://127.0.0.1:<port>/remote.git``. Its own
    process group, stopped by its pid (and given SIGTERM if the test process dies).

``SmartHttp(base)``
    Smart HTTP: ``git http-backend`` behind a small local HTTP server (a thread), pushes
    on. ``.port``; ``.url("remote.git")``.

``Sshd(base)``
    ``sshd`` on 127.0.0.1 with its own config, host key and one authorized client key,
    all under ``base`` (``StrictModes no``, keys only, a PidFile there), for the user
    running the tests. ``.url(repo)`` is ``ssh://<user>@127.0.0.1:<port><repo>``;
    ``.ssh_command(known_hosts, key)`` is a ``GIT_SSH_COMMAND`` that offers only ``key``
    and trusts only ``known_hosts`` (``.trusted`` holds the server's key, ``.client_key``
    the authorized one, ``.stranger_key`` one the server never saw). ``Sshd.missing()``
    says why it cannot run here, or None. Stopped by its pid.

``Proxy(port)`` (in ``netproxy``, imported here)
    A TCP proxy to ``127.0.0.1:<port>`` (a thread). ``.port``; ``.url(url)`` rewrites a
    server's URL to go through the proxy. Faults, switched at any time from the test:

    - ``passing()``: forward everything (the start, and ``heal()``);
    - ``delay(ms)``: every byte arrives ``ms`` later, in each direction;
    - ``throttle(bytes_per_sec)``: each direction at most that fast (steady, never still);
    - ``blackhole()``: accept new connections and never answer; established ones freeze
      (nothing is read or sent, nothing is closed), as a cut cable looks;
    - ``freeze_after(nbytes)``: pass, then become a blackhole once ``nbytes`` went from
      the server to the client (a cut in the middle of a transfer);
    - ``reset()``: every connection, open or new, is reset (RST);
    - ``refuse()``: stop listening, so a connect is refused; ``heal()`` listens again on
      the same port;
    - ``heal()``: back to ``passing()`` (no delay, no throttle); frozen connections resume.

    ``.accepted`` counts connections, ``.downstream`` the bytes sent to clients.

``network_env(env)``
    ``env`` with ``GIT_ALLOW_PROTOCOL`` opened to ``git`` and ``http`` (the test config
    allows only ``file``).

``served(remote, clones)``
    A context manager for the sync tests: serves the bare ``remote`` with a ``GitDaemon``
    behind a ``Proxy``, points each clone's ``origin`` at the proxy, and yields the
    ``Served(daemon, proxy)``. Run tandem in those clones with ``network_env(env)``.

Example::

    with GitDaemon(tmp_path) as daemon, Proxy(daemon.port) as proxy:
        git(clone, "remote", "add", "origin", proxy.url(daemon.url("remote.git")))
        proxy.blackhole()
        ...                      # a fetch now stalls; proxy.heal() ends the outage
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from netproxy import LOCAL, Proxy, Stoppable

__all__ = ["GitDaemon", "Proxy", "Served", "SmartHttp", "Sshd", "network_env", "served"]


def network_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with git allowed to use git://, http:// and ssh:// (and file)."""
    return {**env, "GIT_ALLOW_PROTOCOL": "file:git:http:ssh"}


@dataclass(frozen=True)
class Served:
    """What ``served`` started."""

    daemon: GitDaemon
    proxy: Proxy


@contextlib.contextmanager
def served(remote: Path, clones: Iterable[Path]) -> Iterator[Served]:
    """Serve ``remote`` over git:// through a proxy; every clone's origin goes through it."""
    with GitDaemon(remote.parent) as daemon, Proxy(daemon.port) as proxy:
        url = proxy.url(daemon.url(remote.name))
        for clone in clones:
            subprocess.run(["git", "remote", "set-url", "origin", url], cwd=clone, check=True)
        yield Served(daemon, proxy)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL, 0))
        return int(probe.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((LOCAL, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {LOCAL}:{port}")


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class _Server(Stoppable):
    """A server on 127.0.0.1 that stops what it started."""

    port: int


class GitDaemon(_Server):
    """``git daemon`` on 127.0.0.1 serving the bare repositories under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        argv = [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--informative-errors",
            f"--base-path={base}",
            f"--listen={LOCAL}",
            f"--port={self.port}",
            str(base),
        ]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - the daemon ends with the tests
        )
        _wait_listening(self.port, self.process)

    def url(self, name: str) -> str:
        """The git:// URL of repository ``name`` under ``base``."""
        return f"git://{LOCAL}:{self.port}/{name}"

    def stop(self) -> None:
        """End the daemon and its per-connection children (its process group), by pid."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


SSHD = "/usr/sbin/sshd"
_PRIVSEP = Path("/run/sshd")  # sshd started by root insists on its empty chroot directory


class Sshd(_Server):
    """``sshd -D`` on 127.0.0.1, configured, keyed and stopped by the test."""

    @staticmethod
    def missing() -> str | None:
        """Why sshd cannot run here (None if it can)."""
        if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
            return f"needs {SSHD} and ssh-keygen (Debian: openssh-server)"
        if os.geteuid() == 0 and not _PRIVSEP.is_dir():
            try:  # what the ssh service makes at boot: an empty root-owned directory
                _PRIVSEP.mkdir(mode=0o755)
            except OSError as exc:
                return f"sshd needs {_PRIVSEP} ({exc.strerror})"
        return None

    def __init__(self, base: Path) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        host_key, self.client_key, self.stranger_key = (base / n for n in ("host", "me", "them"))
        for key in (host_key, self.client_key, self.stranger_key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        (base / "authorized_keys").write_text((base / "me.pub").read_text())
        self.port = _free_port()
        config = base / "sshd_config"
        config.write_text(
            f"ListenAddress {LOCAL}\nHostKey {host_key}\nPidFile {base / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {base / 'authorized_keys'}\nStrictModes no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\n"
        )
        self.trusted = base / "known_hosts"
        algo, public = (base / "host.pub").read_text().split()[:2]
        self.trusted.write_text(f"[{LOCAL}]:{self.port} {algo} {public}\n")
        self._log = (base / "sshd.log").open("wb")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - sshd ends with the tests
        )
        _wait_listening(self.port, self.process)

    def url(self, repo: Path) -> str:
        """The ssh:// URL of the repository at absolute path ``repo``."""
        return f"ssh://{getpass.getuser()}@{LOCAL}:{self.port}{repo}"

    def ssh_command(self, known_hosts: Path, key: Path) -> str:
        """``GIT_SSH_COMMAND`` offering only ``key``, trusting only ``known_hosts``."""
        return (
            f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known_hosts}"
            " -o StrictHostKeyChecking=yes -o BatchMode=yes"
        )

    def stop(self) -> None:
        """End sshd and its sessions (its process group), by pid."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


class SmartHttp(_Server):
    """Smart HTTP through ``git http-backend``, served by a thread."""

    def __init__(self, base: Path) -> None:
        handler = type("Handler", (_BackendHandler,), {"base": base})
        self.server = ThreadingHTTPServer((LOCAL, 0), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        """The http:// URL of repository ``name``."""
        return f"http://{LOCAL}:{self.port}/{name}"

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _BackendHandler(BaseHTTPRequestHandler):
    """One request, handed to ``git http-backend`` as CGI."""

    base: Path

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read git's output, not the server's."""

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GIT_PROJECT_ROOT": str(self.base),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "tester",  # http-backend allows pushes of a known user
            "REMOTE_ADDR": LOCAL,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": os.environ.get("HOME", "/nonexistent"),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
        status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
        self.send_response(int(status.split()[0]))
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value.strip())
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(parts)

"""What a failed git command means, in one line a user can act on (SPEC §13.1 rule 6).

``git.py`` runs the commands; this module reads git's output when one fails and picks the
``GitError`` subclass: a lock file in the way (``GitLocked``), a push the remote refused
because it moved (``PushRejected``) or because it said no (``RemoteRefused``, quoting the
hook), and a remote that could not be reached or stopped answering (``RemoteUnreachable``).
Refusals and outages are told apart because a waiting loop retries one and stops on the
other (SPEC §8.7). Messages name the git command, never its full argv: a remote URL may
carry a token.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tandem import proc
from tandem.errors import GitError, GitLocked, PushRejected, RemoteRefused, RemoteUnreachable

_LOCK = re.compile(r"Unable to create '([^']+\.lock)': File exists")
_UNREACHABLE = re.compile(
    r"Could not read from remote|does not appear to be a git repository|"
    r"unable to access|Connection refused|Connection reset|Connection timed out|"
    r"Connection closed|Could not resolve host|unable to connect|Network is unreachable|"
    r"No route to host|remote end hung up|early EOF|unexpected disconnect|"
    r"Broken pipe|No such file or directory|not found|fatal: '.*' does not appear",
    re.IGNORECASE,
)
_RACED = re.compile(r"^\[remote rejected\] \((failed to update ref|failed to lock|cannot lock)")
_HOST_KEY = re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED")
_PUBLICKEY = re.compile(r"Permission denied \(([^)]*)\)")
_HTTP_AUTH = re.compile(
    r"Authentication failed|returned error: 40[13]|could not read (Username|Password)|"
    r"terminal prompts disabled",
    re.IGNORECASE,
)
_MISSING = re.compile(r"repository '[^']*' not found|Repository not found")
_DENIED = re.compile(r"access denied|not exported|permission denied|insufficient permission", re.I)
# scp-like ``user@host:path`` or ``ssh://user@host:port/path``
_SSH_URL = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)[:/]")
_GIT_SAYS = ("fatal: ", "error: ")
_GENERIC = ("Could not read from remote repository", "the remote end hung up unexpectedly")
_FIX_OUTAGE = "check the network; nothing was lost: waiting retries it, or rerun when it is back"


def command(args: Sequence[str]) -> str:
    """``git <subcommand>`` of an argv, skipping ``-c key=value`` and other options."""
    words = iter(args)
    for word in words:
        if word == "-c":
            next(words, None)
        elif not word.startswith("-"):
            return f"git {word}"
    return "git"


def reason(output: str) -> str:
    """git's own reason: its first telling ``fatal:``/``error:`` line, else its first line.

    git's closing "Could not read from remote repository" says less than what ssh or the
    transport printed before it, so that comes first when there is one.
    """
    lines = [line.strip() for line in re.split(r"[\r\n]+", output) if line.strip()]
    said = [_said(lines, i) for i, line in enumerate(lines) if line.startswith(_GIT_SAYS)]
    plain = [
        line
        for line in lines
        if not line.startswith((*_GIT_SAYS, "hint:", "Hint:", "remote:", "To "))
        and not _progress(line)
    ]
    telling = [line for line in said if not line.startswith(_GENERIC)]
    return (telling or plain or said or ["no message"])[0]


def _said(lines: list[str], i: int) -> str:
    """Line ``i`` without its prefix; "unable to connect to host:" takes the next line."""
    text = lines[i].removeprefix("error: ").removeprefix("fatal: ")
    if text.endswith(":") and i + 1 < len(lines):
        text = f"{text} {lines[i + 1]}"
    return text


def _progress(line: str) -> bool:
    return bool(
        re.match(
            r"(Enumerating|Counting|Compressing|Writing|Receiving|Resolving|"
            r"Total|Delta|Unpacking)\b",
            line,
        )
    )


def translate(args: Sequence[str], exc: proc.ProcessError) -> GitError:
    """Any failed local git command: a lock, a missing git, or git's reason."""
    cmd = command(args)
    if exc.returncode in (126, 127) and not exc.stdout:
        return GitError(f"git cannot be run ({reason(exc.output)})", "install git and try again")
    return locked(exc) or GitError(
        f"{cmd} failed: {reason(exc.output)}", "fix what git says, then rerun"
    )


def locked(exc: proc.ProcessError) -> GitLocked | None:
    """``GitLocked`` naming the lock file, if a lock file is what stopped git."""
    lock = _LOCK.search(exc.output)
    if lock is None:
        return None
    path = lock.group(1)
    return GitLocked(
        f"{command(exc.argv[1:])} failed: {path} exists",
        f"another git process is running, or one crashed: if none runs, delete {path}",
    )


def remote_error(
    remote: str, url: str | None, args: Sequence[str], exc: proc.ProcessError
) -> GitError:
    """A failed fetch, push or ls-remote: an outage, a refusal, or another git error."""
    cmd = command(args)
    output = exc.output
    if isinstance(exc, proc.Stalled):
        return RemoteUnreachable(
            f"remote '{remote}' unreachable: no progress for {exc.silent:g} s ({cmd})", _FIX_OUTAGE
        )
    refused = _refusal(remote, url, cmd, output)
    if refused is not None:
        return refused
    lock = locked(exc)
    if lock is not None:
        return lock
    if _UNREACHABLE.search(output):
        return RemoteUnreachable(
            f"remote '{remote}' unreachable: {reason(output)} ({cmd})", _FIX_OUTAGE
        )
    return GitError(f"{cmd} failed (remote '{remote}'): {reason(output)}", "check `git remote -v`")


def _refusal(remote: str, url: str | None, cmd: str, output: str) -> RemoteRefused | None:
    """The remote answered and said no: host key, key or password, permission."""
    user, host = _ssh_user_host(url)
    dest = f"{user}@{host}" if user else host
    port = _ssh_port(url)
    said = f"remote '{remote}' refused ({cmd})"
    if _HOST_KEY.search(output):
        return RemoteRefused(
            f"{said}: Host key verification failed",
            f"add the host key: `ssh-keyscan -H{port} {host} >> ~/.ssh/known_hosts` (check "
            f"its fingerprint first), or connect once by hand with `ssh{port} {dest}`",
        )
    key = _PUBLICKEY.search(output)
    if key is not None:
        return RemoteRefused(
            f"{said}: Permission denied ({key.group(1)}) for {dest}",
            f"check that user {user or '(your login)'} on {host} accepts your key: "
            f"`ssh-add -l` lists the loaded keys, `ssh -v{port} {dest}` shows the one offered "
            "(IdentityFile in ~/.ssh/config or core.sshCommand picks it)",
        )
    if _HTTP_AUTH.search(output):
        return RemoteRefused(
            f"{said}: {reason(output)}",
            "store credentials with access (a credential helper or token); tandem never prompts",
        )
    if _MISSING.search(output):  # the server answered; a private repository looks missing
        return RemoteRefused(
            f"{said}: {reason(output)}",
            "check the remote URL (`git remote -v`) and that your credentials can see it",
        )
    if _DENIED.search(output):
        return RemoteRefused(
            f"{said}: {reason(output)}", "ask for access to the repository, or fix the remote URL"
        )
    return None


def push_error(remote: str, branch: str, url: str | None, exc: proc.ProcessError) -> GitError:
    """A failed push: the remote moved, a hook or permission said no, or ``remote_error``."""
    refs = [line for line in exc.stdout.decode(errors="replace").splitlines() if line[:1] == "!"]
    summary = refs[0].rsplit("\t", 1)[-1] if refs else ""
    # Two pushes at once: the loser's ref update finds the ref moved (or locked) on the
    # remote side. That is the remote moving too, not a refusal.
    if summary.startswith("[rejected]") or _RACED.search(summary):
        why = summary.split("]", 1)[-1].strip()
        return PushRejected(
            f"push to {remote}/{branch} was rejected: the remote moved {why}",
            "fetch and rebase, then push again",
        )
    if summary.startswith("[remote rejected]"):
        why = summary[len("[remote rejected]") :].strip()
        said = remote_lines(exc.stderr.decode(errors="replace"))
        quoted = f": {said}" if said else ""
        return RemoteRefused(
            f"push to {remote}/{branch} refused by the remote {why}{quoted}",
            "do what the remote says (or ask its admin), then rerun; the commits are kept here",
        )
    return remote_error(remote, url, exc.argv[1:], exc)


def remote_lines(stderr: str) -> str:
    """What the remote's hooks printed (``remote: …`` lines), joined with `` / ``."""
    said = []
    for line in re.split(r"[\r\n]+", stderr):
        if line.startswith("remote:"):
            text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line[len("remote:") :]).strip()
            if text and not _progress(text):
                said.append(text)
    return " / ".join(said)


def _ssh_port(url: str | None) -> str:
    """`` -p 2222`` for an ``ssh://`` URL with a port other than 22, else ``""``."""
    if url is None or not url.startswith("ssh://"):
        return ""
    hostport = url[len("ssh://") :].split("/", 1)[0].rpartition("@")[2]
    port = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    digits = port.rpartition(":")[2] if ":" in port else ""
    return f" -p {digits}" if digits.isdigit() and digits != "22" else ""


def _ssh_user_host(url: str | None) -> tuple[str | None, str]:
    """The user and host of an ssh remote URL; (None, "the server") when it is not one."""
    if url is None or ("://" in url and not url.startswith("ssh://")):
        return None, "the server"
    match = _SSH_URL.match(url)
    if match is None:
        return None, "the server"
    return match.group("user"), match.group("host").strip("[]")

"""What git's failure messages mean, for the servers a test cannot start (GitHub, https).

The outputs are git's own words, as git 2.39 prints them; the local cases run real git
in test_git.py and test_git_network.py.
"""

from __future__ import annotations

import pytest

from tandem import proc
from tandem.errors import GitError, PushRejected, RemoteRefused, RemoteUnreachable
from tandem.git_errors import command, push_error, reason, remote_error

URL = "https://github.com/o/r.git"


def failed(argv: tuple[str, ...], stderr: str, stdout: str = "") -> proc.ProcessError:
    return proc.ProcessError(("git", *argv), 128, stdout.encode(), stderr.encode())


@pytest.mark.parametrize(
    ("stderr", "kind", "what"),
    [
        (
            f"fatal: unable to access '{URL}/': The requested URL returned error: 403\n",
            RemoteRefused,
            f"remote 'origin' refused (git fetch): unable to access '{URL}/': The requested "
            "URL returned error: 403",
        ),
        (
            "fatal: could not read Username for 'https://github.com': terminal prompts disabled\n",
            RemoteRefused,
            "remote 'origin' refused (git fetch): could not read Username for "
            "'https://github.com': terminal prompts disabled",
        ),
        (
            "fatal: remote error: access denied or repository not exported: /r.git\n",
            RemoteRefused,
            "remote 'origin' refused (git fetch): remote error: access denied or repository "
            "not exported: /r.git",
        ),
        (
            f"remote: Repository not found.\nfatal: repository '{URL}/' not found\n",
            RemoteRefused,
            f"remote 'origin' refused (git fetch): repository '{URL}/' not found",
        ),
        (
            f"fatal: unable to access '{URL}/': Could not resolve host: github.com\n",
            RemoteUnreachable,
            f"remote 'origin' unreachable: unable to access '{URL}/': Could not resolve "
            "host: github.com (git fetch)",
        ),
        (
            "ssh: connect to host github.com port 22: Connection reset by peer\n"
            "fatal: Could not read from remote repository.\n\n"
            "Please make sure you have the correct access rights\n"
            "and the repository exists.\n",
            RemoteUnreachable,
            "remote 'origin' unreachable: ssh: connect to host github.com port 22: "
            "Connection reset by peer (git fetch)",
        ),
        (
            "fatal: early EOF\nfatal: fetch-pack: invalid index-pack output\n",
            RemoteUnreachable,
            "remote 'origin' unreachable: early EOF (git fetch)",
        ),
        (
            "fatal: bad object 1234\n",
            GitError,
            "git fetch failed (remote 'origin'): bad object 1234",
        ),
    ],
)
def test_fetch_failures(stderr: str, kind: type[GitError], what: str) -> None:
    error = remote_error("origin", URL, ("fetch", "origin"), failed(("fetch",), stderr))
    assert type(error) is kind
    assert error.what == what


def test_a_protected_branch_is_refused_quoting_the_server() -> None:
    stdout = (
        f"To {URL}\n!\tHEAD:refs/heads/main\t[remote rejected] (protected branch hook declined)\n"
        "Done\n"
    )
    stderr = (
        "remote: error: GH006: Protected branch update failed for refs/heads/main.\x1b[K\n"
        "remote: error: Changes must be made through a pull request.        \n"
        f"error: failed to push some refs to '{URL}'\n"
    )
    error = push_error("origin", "main", URL, failed(("push",), stderr, stdout))
    assert type(error) is RemoteRefused
    assert error.what == (
        "push to origin/main refused by the remote (protected branch hook declined): "
        "error: GH006: Protected branch update failed for refs/heads/main. / "
        "error: Changes must be made through a pull request."
    )


@pytest.mark.parametrize(
    "summary",
    [
        "[rejected] (non-fast-forward)",
        "[rejected] (fetch first)",
        "[remote rejected] (failed to update ref)",
        "[remote rejected] (cannot lock ref 'refs/heads/main': is at 1 but expected 2)",
    ],
)
def test_a_push_that_lost_a_race_is_rejected_as_moved(summary: str) -> None:
    stdout = f"To /r.git\n!\tHEAD:refs/heads/main\t{summary}\nDone\n"
    error = push_error("origin", "main", "/r.git", failed(("push",), "", stdout))
    assert type(error) is PushRejected
    assert error.what.startswith("push to origin/main was rejected: the remote moved (")


def test_the_command_is_named_without_options_or_urls() -> None:
    assert command(("-c", "fetch.unpackLimit=1", "fetch", "--progress", URL)) == "git fetch"
    assert command(("--literal-pathspecs", "add")) == "git add"


def test_the_reason_skips_hints_and_progress() -> None:
    output = "Counting objects: 100% (1/1)\rhint: try this\nerror: it broke\n"
    assert reason(output) == "it broke"
    assert reason("") == "no message"

"""Notifications (SPEC §16): a real command gets each event as JSON on stdin, Apprise's
``json://`` reaches a real HTTP server on 127.0.0.1, and nothing ever fails or holds up
the caller."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from e2e.e2e_support import pid_alive
from tandem.errors import ConfigError
from tandem.notify import EVENTS, Notifier, event
from tandem.redaction import Redactor

SECRET = "tok-5f1e0c2a9b"  # noqa: S105  # a fake, to see it masked
BOUND = 15.0  # generous: the machine may be busy


class Warnings(list[str]):
    """What the notifier warned about (called from its thread)."""

    def __call__(self, message: str) -> None:
        self.append(message)


def python(code: str, *args: str) -> list[str]:
    """A command running ``code`` with ``args`` (sys.argv[1:])."""
    return [sys.executable, "-c", code, *args]


RECORD = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())"


def notifier(warn: Warnings, **kwargs: Any) -> Notifier:
    return Notifier(redactor=Redactor({"MY_TOKEN": SECRET}), warn=warn, **kwargs)


def received(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_command_gets_each_event_as_one_json_object(tmp_path: Path) -> None:
    out, warn = tmp_path / "got.jsonl", Warnings()
    sender = notifier(warn, command=python(RECORD, str(out)))
    for kind in EVENTS:
        sender.send(event(kind, f"{kind} happened", actor="galph", iteration=3))
    assert sender.close(BOUND)
    got = received(out)
    assert [item["event"] for item in got] == list(EVENTS)
    for item in got:
        assert item["message"] == f"{item['event']} happened"
        assert (item["actor"], item["iteration"]) == ("galph", 3)
        assert item["time"].endswith("Z")
        assert item["host"]
    assert warn == []


def test_only_the_listed_events_are_sent(tmp_path: Path) -> None:
    out, warn = tmp_path / "got.jsonl", Warnings()
    sender = notifier(warn, on=["failure", "done"], command=python(RECORD, str(out)))
    for kind in EVENTS:
        sender.send(event(kind, kind))
    sender.send({"event": "turn_end", "message": "not a notification"})
    assert sender.close(BOUND)
    assert [item["event"] for item in received(out)] == ["failure", "done"]


def test_secrets_in_an_event_are_masked(tmp_path: Path) -> None:
    out, warn = tmp_path / "got.jsonl", Warnings()
    sender = notifier(warn, command=python(RECORD, str(out)))
    sender.send(event("failure", f"HTTP 401 for key {SECRET}", reason={"said": SECRET}))
    assert sender.close(BOUND)
    assert SECRET not in out.read_text(encoding="utf-8")
    assert received(out)[0]["message"] == "HTTP 401 for key ***"


def test_a_failing_command_is_a_warning_and_later_events_still_go_out(tmp_path: Path) -> None:
    out, warn = tmp_path / "got.jsonl", Warnings()
    hook = "https://hooks.example/abc123secret"
    fails_once = (
        "import sys, os\n"
        "if not os.path.exists(sys.argv[1] + '.seen'):\n"
        "    open(sys.argv[1] + '.seen', 'w').close()\n"
        "    sys.exit(f'cannot post to {sys.argv[2]}')\n"
        "open(sys.argv[1], 'a').write(sys.stdin.read())\n"
    )
    sender = notifier(warn, command=python(fails_once, str(out), hook))
    sender.send(event("failure", "one"))
    sender.send(event("stop", "two"))
    assert sender.close(BOUND)
    assert [item["event"] for item in received(out)] == ["stop"]
    assert warn == ["notify.command exited with 1 on the failure event: cannot post to ***"]


def test_a_missing_program_is_a_warning(tmp_path: Path) -> None:
    warn = Warnings()
    sender = notifier(warn, command=[str(tmp_path / "no-such-notifier")])
    sender.send(event("done", "finished"))
    assert sender.close(BOUND)
    assert len(warn) == 1
    assert warn[0].startswith("notify.command exited with 127 on the done event")


def test_a_hanging_command_never_holds_up_the_caller(tmp_path: Path) -> None:
    pidfile, warn = tmp_path / "hang.pid", Warnings()
    hang = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    sender = notifier(warn, command=python(hang, str(pidfile)), command_timeout=1)
    started = time.monotonic()
    kinds = ("pause", "failure", "stop")
    for kind in kinds:
        sender.send(event(kind, kind))
    assert time.monotonic() - started < 0.5, "send waited for the command"
    deadline = time.monotonic() + BOUND
    while not (pidfile.exists() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.02)
    assert sender.close(len(kinds) + BOUND)
    assert time.monotonic() - started < len(kinds) + BOUND
    assert warn == [f"notify.command timed out after 1s on the {kind} event" for kind in kinds]
    assert not pid_alive(int(pidfile.read_text()))


def test_close_gives_up_on_a_stuck_command_after_its_timeout(tmp_path: Path) -> None:
    warn = Warnings()
    sender = notifier(warn, command=python("import time; time.sleep(600)"), command_timeout=60)
    sender.send(event("done", "finished"))
    started = time.monotonic()
    assert sender.close(0.5) is False
    assert time.monotonic() - started < 5


def test_nothing_configured_sends_nothing() -> None:
    sender = notifier(Warnings())
    assert not sender.active
    sender.send(event("failure", "x"))
    assert sender.close(0.1)


def test_an_unknown_event_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"notify.on: unknown event boom; use some of failure"):
        notifier(Warnings(), on=["failure", "boom"], command=["true"])


# -- Apprise ------------------------------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    """Records each POST body on the server; answers 200."""

    server: HookServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class HookServer(ThreadingHTTPServer):
    bodies: list[dict[str, Any]]


@pytest.fixture
def hook() -> Iterator[HookServer]:
    """An HTTP server on 127.0.0.1 that stops at teardown."""
    server = HookServer(("127.0.0.1", 0), Hook)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_json_url_gets_the_one_line_message(hook: HookServer) -> None:
    warn = Warnings()
    port = hook.server_address[1]
    sender = notifier(warn, urls=[f"json://127.0.0.1:{port}/hook"])
    message = (
        "paused: claude usage limit (five_hour) until 20:40Z (in 2h59m);\nthe turn reruns then"
    )
    sender.send(event("pause", message))
    assert sender.close(BOUND)
    assert warn == []
    assert len(hook.bodies) == 1
    assert hook.bodies[0]["title"] == "tandem: pause"
    assert hook.bodies[0]["message"] == " ".join(message.split())


def test_an_unreachable_url_is_a_warning_that_does_not_show_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    warn = Warnings()
    url = f"json://user:{SECRET}@127.0.0.1:{port}/hook"
    sender = notifier(warn, urls=[url])
    sender.send(event("failure", "galph failed"))
    assert sender.close(BOUND)
    assert warn == ["notify.urls: the failure event did not reach every URL"]
    shown = capfd.readouterr()
    assert SECRET not in shown.out + shown.err


def test_a_url_apprise_cannot_use_is_a_config_error_that_hides_it() -> None:
    with pytest.raises(ConfigError) as raised:
        notifier(Warnings(), urls=["json://127.0.0.1:1/", f"nosuch://{SECRET}@host"])
    assert str(raised.value) == (
        "notify.urls[1] (nosuch://) is not a URL Apprise can use; "
        "check it against https://github.com/caronc/apprise/wiki"
    )


def test_urls_without_apprise_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # makes `import apprise` fail
    with pytest.raises(ConfigError) as raised:
        notifier(Warnings(), urls=["json://127.0.0.1:1/"])
    assert str(raised.value) == (
        "notify.urls needs the Apprise library, which is not installed; "
        "run pip install 'tandem[notify]'"
    )

"""Telling someone what an unattended loop did (SPEC §16), without ever holding it up.

``Notifier(on=..., command=..., urls=..., redactor=..., warn=...)`` is built once at
start (``notify:`` in the config). ``send(event)`` takes an event made by ``event(kind,
message, **fields)``, where ``kind`` is one of ``failure``, ``pause``, ``budget``,
``stop``, ``done``; a kind not in ``on`` is dropped. Each sent event is handed to one
background thread, which, in order:

* runs ``command`` (an argv list, never a shell) with the event as one JSON object on
  stdin, for at most 30 s;
* sends the one-line message to each of ``urls`` through Apprise (``ntfy://``,
  ``slack://``, ``json://`` ...; the optional extra ``tandem[notify]``).

``send`` returns at once. A command that fails or hangs, or a URL that cannot be
reached, becomes one warning through ``warn``; nothing here raises into the loop.
``close(timeout)`` at exit waits a bounded time for what is still queued, so the last
``stop`` or ``done`` is delivered. Commands and URLs hold tokens, so warnings name them
as ``notify.command`` and ``notify.urls[N]`` only, and mask their values in any output
quoted. A missing Apprise or a URL it cannot use is a ``ConfigError`` at construction.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tandem import proc
from tandem.errors import ConfigError
from tandem.redaction import MASK, Redactor
from tandem.times import format_time, utcnow

EVENTS = ("failure", "pause", "budget", "stop", "done")
COMMAND_TIMEOUT_SECS = 30.0
URL_TIMEOUT_SECS = 30.0
QUEUE_SIZE = 100  # events are rare; more than this waiting means the notifier is stuck
_STOP = None  # the queue item that ends the worker
INSTALL_HINT = "pip install 'tandem[notify]'"
_MIN_MASKED = 4  # shorter argv elements (-H, -d) are not worth masking


def event(kind: str, message: str, /, **fields: Any) -> dict[str, Any]:
    """A notification: ``{"event": kind, "message": ..., "time": ..., "host": ...,
    **fields}`` (actor, iteration, reason, until... as the kind has them)."""
    now = format_time(utcnow())
    return {"event": kind, "message": message, "time": now, "host": socket.gethostname(), **fields}


class Notifier:
    """Delivers events to a command and to Apprise URLs from one background thread."""

    def __init__(
        self,
        *,
        on: Sequence[str] = EVENTS,
        command: Sequence[str] | None = None,
        urls: Sequence[str] = (),
        redactor: Redactor,
        warn: Callable[[str], None],
        env: Mapping[str, str] | None = None,
        command_timeout: float = COMMAND_TIMEOUT_SECS,
    ) -> None:
        unknown = sorted(set(on) - set(EVENTS))
        if unknown:
            raise ConfigError(
                f"notify.on: unknown event {', '.join(unknown)}", f"use some of {', '.join(EVENTS)}"
            )
        self._on = frozenset(on)
        self._command = tuple(command or ())
        self._apprise = _apprise(urls) if urls else None
        self._redactor = redactor
        self._warn = warn
        self._env = env
        self._timeout = command_timeout
        self._secrets = [a for a in self._command[1:] if len(a) >= _MIN_MASKED] + list(urls)
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._worker: threading.Thread | None = None
        self._starting = threading.Lock()  # the heartbeat may send from its own thread

    @property
    def active(self) -> bool:
        """True if anything is configured to receive events."""
        return bool(self._on) and (bool(self._command) or self._apprise is not None)

    def send(self, notification: Mapping[str, Any]) -> None:
        """Queue ``notification`` for delivery if its kind is listed in ``on``; never
        blocks, never raises."""
        if not self.active or notification.get("event") not in self._on:
            return
        masked = self._redactor.json(dict(notification))
        try:
            self._queue.put_nowait(masked)
        except queue.Full:
            self._warn(f"notify: {QUEUE_SIZE} events are waiting; {masked['event']} dropped")
            return
        with self._starting:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._deliver_all, name="notify", daemon=True
                )
                self._worker.start()

    def close(self, timeout: float = COMMAND_TIMEOUT_SECS + 5) -> bool:
        """Wait at most ``timeout`` seconds for queued events; True if all were handled.

        The worker is a daemon thread: whatever still hangs after that ends with tandem.
        """
        with self._starting:
            worker, self._worker = self._worker, None
        if worker is None:
            return True
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return False
        worker.join(timeout)
        return not worker.is_alive()

    def _deliver_all(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._deliver(item)
            except Exception as exc:  # a notifier must never end the loop
                self._warn(f"notify: could not deliver {item.get('event')}: {self._mask(str(exc))}")

    def _deliver(self, item: dict[str, Any]) -> None:
        if self._command:
            self._run_command(item)
        if self._apprise is not None:
            self._notify_urls(item)

    def _run_command(self, item: dict[str, Any]) -> None:
        data = (json.dumps(item, ensure_ascii=False, default=str) + "\n").encode()
        what = f"the {item['event']} event"
        try:
            proc.run(self._command, input=data, env=self._env, timeout=self._timeout)
        except proc.ProcessError as exc:
            if exc.returncode == -1:  # proc.run's timeout
                self._warn(f"notify.command timed out after {self._timeout:g}s on {what}")
                return
            said = exc.output.strip().splitlines()
            detail = f": {self._mask(said[-1])}" if said else ""
            self._warn(f"notify.command exited with {exc.returncode} on {what}{detail}")

    def _notify_urls(self, item: dict[str, Any]) -> None:
        assert self._apprise is not None
        body = str(item.get("message") or item["event"])
        title = f"tandem: {item['event']}"
        sent = self._apprise.notify(
            body=" ".join(body.split()), title=title, timeout=URL_TIMEOUT_SECS
        )
        if not sent:
            self._warn(f"notify.urls: the {item['event']} event did not reach every URL")

    def _mask(self, text: str) -> str:
        """``text`` without the command's arguments, the URLs or any known secret."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return self._redactor.text(text)


def _apprise(urls: Sequence[str]) -> Any:
    """An ``apprise.Apprise`` holding ``urls``; a ConfigError naming the problem if not."""
    try:
        import apprise
    except ImportError:
        raise ConfigError(
            "notify.urls needs the Apprise library, which is not installed", f"run {INSTALL_HINT}"
        ) from None
    sender = apprise.Apprise()
    for n, url in enumerate(urls):
        if not sender.add(url):
            scheme = url.split("://", 1)[0] + "://" if "://" in url else "no scheme"
            raise ConfigError(
                f"notify.urls[{n}] ({scheme}) is not a URL Apprise can use",
                "check it against https://github.com/caronc/apprise/wiki",
            )
    return sender

"""The fault proxy of the network test rig (``netrig`` documents its API)."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, TypeVar

LOCAL = "127.0.0.1"
_CHUNK = 1 << 16
_MAX_QUEUED = 1 << 22  # per direction: stop reading when this much waits to be sent
Mode = Literal["pass", "blackhole", "reset", "refuse"]


@dataclass
class _Flow:
    """One direction of a proxied connection."""

    src: socket.socket
    dst: socket.socket
    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    queued: int = 0
    next_free: float = 0.0  # with a throttle: when the next chunk may go out
    eof: bool = False
    shut: bool = False


@dataclass
class _Pair:
    """A client connection and its connection to the server (None until connected)."""

    client: socket.socket
    upstream: socket.socket | None = None
    flows: list[_Flow] = field(default_factory=list)


_S = TypeVar("_S", bound="Stoppable")


class Stoppable:
    """A context manager that stops what it started (the proxy, netrig's servers)."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """End what was started."""
        raise NotImplementedError


class Proxy(Stoppable):
    """A TCP proxy to ``127.0.0.1:<target>`` whose faults the test switches."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.accepted = 0
        self.downstream = 0
        self._mode: Mode = "pass"
        self._delay = 0.0
        self._rate: float | None = None
        self._freeze_at: int | None = None
        self._lock = threading.Lock()
        self._applied = threading.Condition(self._lock)  # the thread took the last _set
        self._asked = self._done = 0
        self._pairs: list[_Pair] = []
        self._listener: socket.socket | None = None
        self._stopping = False
        self.failure: BaseException | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self.port = self._listen(0)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    # -- control, from the test --------------------------------------------------------
    def url(self, url: str) -> str:
        """``url`` (of a server on 127.0.0.1) with its port replaced by the proxy's."""
        scheme, _, rest = url.partition("://")
        _, _, path = rest.partition("/")
        return f"{scheme}://{LOCAL}:{self.port}/{path}"

    def passing(self) -> None:
        """Forward everything."""
        self._set("pass")

    def delay(self, ms: float) -> None:
        """Forward everything ``ms`` milliseconds late."""
        self._set("pass", delay=ms / 1000, rate=self._rate)

    def throttle(self, bytes_per_sec: float) -> None:
        """Forward each direction at most ``bytes_per_sec`` fast."""
        self._set("pass", delay=self._delay, rate=bytes_per_sec)

    def blackhole(self) -> None:
        """Accept, then never answer; freeze established connections."""
        self._set("blackhole")

    def freeze_after(self, nbytes: int) -> None:
        """Pass until ``nbytes`` more went to the clients, then become a blackhole."""
        with self._lock:
            self._freeze_at = self.downstream + nbytes
        self._set("pass")

    def reset(self) -> None:
        """Reset every connection, open or new."""
        self._set("reset")

    def refuse(self) -> None:
        """Stop listening: connections are refused."""
        self._set("refuse")

    def heal(self) -> None:
        """End any fault: forward everything again."""
        self._set("pass")

    def stop(self) -> None:
        """Stop the proxy thread and close every socket."""
        with self._lock:
            self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(timeout=10)
        for pair in self._pairs:
            self._close(pair, rst=False)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self.failure is not None:
            raise RuntimeError("the proxy thread failed") from self.failure

    def _set(self, mode: Mode, delay: float = 0.0, rate: float | None = None) -> None:
        """Switch the mode, and return once the proxy thread has applied it: a test that
        refuses and then connects must find the listener already closed."""
        with self._lock:
            self._mode = mode
            self._delay = delay
            self._rate = rate
            if mode != "pass":
                self._freeze_at = None
            self._asked += 1
            asked = self._asked
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        with self._applied:
            self._applied.wait_for(
                lambda: self._done >= asked or self._stopping or self.failure is not None,
                timeout=10,
            )

    # -- the loop, in the proxy thread -------------------------------------------------
    def _listen(self, port: int) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOCAL, port))
        listener.listen(64)
        self._listener = listener
        return int(listener.getsockname()[1])

    def _loop(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # the test sees it at stop(), not as a silent hang
            self.failure = exc
            with self._applied:
                self._applied.notify_all()

    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                mode, delay, rate = self._mode, self._delay, self._rate
                asked = self._asked
            self._apply(mode)
            with self._applied:
                self._done = asked
                self._applied.notify_all()
            readers, writers, timeout = self._interest(mode)
            ready_r, ready_w, _ = select.select(readers, writers, [], timeout)
            for sock in ready_r:
                self._readable(sock, mode, delay, rate)
            for sock in ready_w:
                self._writable(sock)
            self._reap()

    def _apply(self, mode: Mode) -> None:
        """Make the listener and open connections match the mode."""
        if mode == "refuse" and self._listener is not None:
            self._listener.close()
            self._listener = None
        elif mode != "refuse" and self._listener is None:
            self._listen(self.port)
        if mode == "reset":
            for pair in self._pairs:
                self._close(pair, rst=True)
            self._pairs.clear()
        if mode == "pass":
            for pair in list(self._pairs):
                if pair.upstream is None:
                    self._connect(pair)

    def _interest(self, mode: Mode) -> tuple[list[socket.socket], list[socket.socket], float]:
        readers: list[socket.socket] = [self._wake_r]
        writers: list[socket.socket] = []
        if self._listener is not None:
            readers.append(self._listener)
        timeout = 0.5
        if mode != "pass":
            return readers, writers, timeout
        now = time.monotonic()
        for pair in self._pairs:
            for flow in pair.flows:
                if not flow.eof and flow.queued < _MAX_QUEUED:
                    readers.append(flow.src)
                if flow.queue:
                    due = flow.queue[0][0] - now
                    if due <= 0:
                        writers.append(flow.dst)
                    timeout = min(timeout, max(due, 0.0))
        return readers, writers, timeout

    def _readable(self, sock: socket.socket, mode: Mode, delay: float, rate: float | None) -> None:
        if sock is self._wake_r:
            sock.recv(_CHUNK)
        elif sock is self._listener:
            self._accept(mode)
        elif mode == "pass":
            for pair in self._pairs:
                for flow in pair.flows:
                    if flow.src is sock:
                        self._pull(flow, delay, rate)

    def _accept(self, mode: Mode) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        self.accepted += 1
        pair = _Pair(client)
        if mode == "reset":
            self._close(pair, rst=True)
            return
        self._pairs.append(pair)
        if mode == "pass":
            self._connect(pair)

    def _connect(self, pair: _Pair) -> None:
        try:
            upstream = socket.create_connection((LOCAL, self.target), timeout=5)
        except OSError:
            self._close(pair, rst=True)
            self._pairs.remove(pair)
            return
        pair.upstream = upstream
        pair.flows = [_Flow(pair.client, upstream), _Flow(upstream, pair.client)]
        for sock in (pair.client, upstream):
            sock.setblocking(False)

    def _pull(self, flow: _Flow, delay: float, rate: float | None) -> None:
        try:
            data = flow.src.recv(_CHUNK if rate is None else max(1, min(_CHUNK, int(rate / 20))))
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            flow.eof = True
            return
        due = time.monotonic() + delay
        if rate is not None:  # pace the chunks: each leaves when the last one's time is up
            due = max(due, flow.next_free)
            flow.next_free = due + len(data) / rate
        flow.queue.append((due, data))
        flow.queued += len(data)

    def _writable(self, sock: socket.socket) -> None:
        now = time.monotonic()
        for pair in self._pairs:
            for flow in pair.flows:
                while flow.dst is sock and flow.queue and flow.queue[0][0] <= now:
                    if not self._push(pair, flow):
                        break

    def _push(self, pair: _Pair, flow: _Flow) -> bool:
        """Send the head of ``flow``'s queue; False when the socket is full."""
        due, data = flow.queue[0]
        if flow.src is not pair.client:  # server → client: the bytes that can freeze
            data = self._until_freeze(data)
            if not data:
                return False
        try:
            sent = flow.dst.send(data)
        except BlockingIOError:
            return False
        except OSError:
            flow.queue.clear()
            flow.eof = True
            return False
        if flow.src is not pair.client:
            self.downstream += sent
        rest = flow.queue[0][1][sent:]
        flow.queued -= sent
        if rest:
            flow.queue[0] = (due, rest)
        else:
            flow.queue.popleft()
        return True

    def _until_freeze(self, data: bytes) -> bytes:
        with self._lock:
            if self._freeze_at is None:
                return data
            left = self._freeze_at - self.downstream
            if left <= 0:
                self._mode = "blackhole"
                self._freeze_at = None
                return b""
        return data[:left]

    def _reap(self) -> None:
        """Pass on half-closes once their data went out; drop connections done both ways."""
        for pair in list(self._pairs):
            for flow in pair.flows:
                if flow.eof and not flow.queue and not flow.shut:
                    with contextlib.suppress(OSError):
                        flow.dst.shutdown(socket.SHUT_WR)
                    flow.shut = True
            if pair.flows and all(flow.shut for flow in pair.flows):
                self._close(pair, rst=False)
                self._pairs.remove(pair)

    @staticmethod
    def _close(pair: _Pair, *, rst: bool) -> None:
        for sock in (pair.client, pair.upstream):
            if sock is None:
                continue
            if rst:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

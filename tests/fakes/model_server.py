"""A fake model API for driving the real agent CLIs in tests (standard library only).

Usage::

    python tests/fakes/model_server.py --api anthropic|openai|gemini --script SCRIPT.json \
        --log REQUESTS.jsonl [--port 0] [--idle-exit SECS] [--parent-pid PID]

It binds 127.0.0.1 only, prints ``LISTENING http://127.0.0.1:PORT`` once ready, logs each
request as one JSON line (method, path, headers with auth values redacted, body) and exits
by itself after ``--idle-exit`` seconds without a request (default 120) or when its parent
process (``--parent-pid``, default the process that started it) is gone.

APIs spoken: ``anthropic`` is the Messages API (``POST /v1/messages``, SSE; ``HEAD /`` and
``HEAD /api/hello`` answer 200). ``openai`` is the Responses API (``POST /v1/responses``)
and Chat Completions (``POST /v1/chat/completions``), both SSE. ``gemini`` is
``:generateContent`` (a requested JSON schema is filled with plausible values) and
``:streamGenerateContent?alt=sse``.

The script is a JSON list of steps. A request is answered by step N, where N is the number
of tool results already in it, so the server keeps no state and a retried request gets the
same answer. Steps:

* ``{"shell": "echo hi > hi.txt"}``: a call of whichever shell tool the request offers
  (claude ``Bash``, codex ``exec_command``/``shell_command``/``shell``, gemini
  ``run_shell_command``, chat ``bash``);
* ``"say": "Let me look first."`` added to a ``shell`` step: text the model writes before
  the call;
* ``{"text": "Done"}``: a final text answer;
* ``{"error": {"status": 500, "message": "boom"}}``: that HTTP error in the API's shape;
  ``"type"`` and ``"fields"`` change its error object, ``"headers"`` are sent with it
  (a value ``"@now+N"`` is the Unix time N seconds after the request);
* ``{"stream_error": {"message": ..., "type": ..., "code": ...}}``: a 200 stream whose one
  chunk is ``{"error": {...}}``, as OpenAI-style APIs report a failure after the headers
  (Chat Completions and Responses; other APIs answer it as an HTTP 500);
* ``"times": N`` added to a step (an error, say a 5xx burst): it answers the first N
  requests that reach it, then is left out of the script (the one count the server keeps);
* ``"lifts_at": UNIX_SECS`` added to a step (an error, say a usage limit): from that time
  on the step is left out of the script, as a limit that has reset;
* ``"delay": SECS`` added to a step waits that long before the first byte;
* ``"stall": SECS`` added to a step sends the headers and the first event, then pauses.

Past the end of the script the answer is the text "script exhausted". A request that
offers no tools (opencode's title, gemini's routing classifier) is a side call: it gets a
short text, or the JSON its schema asks for, whatever the script says.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

Json = dict[str, Any]
SHELL_TOOLS = ("Bash", "exec_command", "shell_command", "shell", "run_shell_command", "bash")
REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"})
SIDE_CALL_TEXT = "Fake title"
USAGE_IN, USAGE_OUT = 10, 5


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, content type, body, and a pause after its first event."""

    status: int
    content_type: str
    body: bytes
    stall: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


def sse(events: Iterable[Json], named: bool = False, done: bool = False) -> bytes:
    """Server-sent events, one per ``data:`` line (named by their ``type`` when asked)."""
    out = []
    for event in events:
        name = f"event: {event['type']}\n" if named else ""
        out.append(f"{name}data: {json.dumps(event)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def json_reply(value: Json, status: int = 200) -> Reply:
    """A JSON body."""
    return Reply(status, "application/json", json.dumps(value).encode())


def shell_arguments(tool: str, command: str) -> Json:
    """The arguments each known shell tool takes for ``command``."""
    if tool == "exec_command":
        return {"cmd": command}
    if tool == "shell":
        return {"command": ["bash", "-lc", command]}
    if tool == "bash":
        # opencode's bash tool requires a description of the command.
        return {"command": command, "description": "Run a shell command"}
    return {"command": command}


class Dialect(Protocol):
    """One wire API: how tool results are counted and how steps are rendered."""

    def tool_names(self, body: Json) -> list[str]:
        """The names of the tools the request offers."""
        ...

    def tool_results(self, body: Json) -> int:
        """How many tool results the request carries (the script position)."""
        ...

    def tool_call(self, tool: str, arguments: Json, index: int, body: Json, say: str) -> Reply:
        """A reply that calls ``tool``, after the text ``say`` if it is not empty."""
        ...

    def text(self, text: str, index: int, body: Json) -> Reply:
        """A reply that answers ``text`` and ends the turn."""
        ...

    def error(self, status: int, message: str) -> Reply:
        """An HTTP error in this API's shape."""
        ...


class Anthropic:
    """The Messages API, streamed as documented (``event:`` names plus ``data:``)."""

    def tool_names(self, body: Json) -> list[str]:
        """``tools[].name``."""
        return [tool.get("name", "") for tool in body.get("tools") or []]

    def tool_results(self, body: Json) -> int:
        """``tool_result`` blocks in the messages."""
        return sum(
            1
            for message in body.get("messages") or []
            if isinstance(message.get("content"), list)
            for block in message["content"]
            if block.get("type") == "tool_result"
        )

    def tool_call(self, tool: str, arguments: Json, index: int, body: Json, say: str) -> Reply:
        """A ``tool_use`` block whose input arrives as one JSON delta (a text block first)."""
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": tool, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
        blocks = [self._text_block(say)] if say else []
        return self._message(index, body, [*blocks, (block, delta)], "tool_use")

    def text(self, text: str, index: int, body: Json) -> Reply:
        """A text block."""
        return self._message(index, body, [self._text_block(text)], "end_turn")

    @staticmethod
    def _text_block(text: str) -> tuple[Json, Json]:
        return {"type": "text", "text": ""}, {"type": "text_delta", "text": text}

    def error(self, status: int, message: str) -> Reply:
        """``{"type": "error", "error": {...}}``."""
        kind = "api_error" if status >= 500 else "invalid_request_error"
        return json_reply({"type": "error", "error": {"type": kind, "message": message}}, status)

    def _message(self, index: int, body: Json, blocks: list[tuple[Json, Json]], stop: str) -> Reply:
        message = {
            "id": f"msg_{index}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": 1},
        }
        events: list[Json] = [
            {"type": "message_start", "message": message},
            *(
                event
                for n, (block, delta) in enumerate(blocks)
                for event in (
                    {"type": "content_block_start", "index": n, "content_block": block},
                    {"type": "content_block_delta", "index": n, "delta": delta},
                    {"type": "content_block_stop", "index": n},
                )
            ),
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": USAGE_OUT},
            },
            {"type": "message_stop"},
        ]
        return Reply(200, "text/event-stream", sse(events, named=True))


def openai_error(status: int, message: str) -> Reply:
    """``{"error": {...}}`` as both OpenAI APIs send it."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json_reply({"error": error}, status)


class Responses:
    """The OpenAI Responses API (codex)."""

    def tool_names(self, body: Json) -> list[str]:
        """``tools[].name``."""
        return [tool.get("name", "") for tool in body.get("tools") or []]

    def tool_results(self, body: Json) -> int:
        """``function_call_output`` and ``custom_tool_call_output`` items."""
        kinds = {"function_call_output", "custom_tool_call_output"}
        return sum(1 for item in body.get("input") or [] if item.get("type") in kinds)

    def tool_call(self, tool: str, arguments: Json, index: int, body: Json, say: str) -> Reply:
        """A ``function_call`` output item (after a ``message`` item)."""
        item = {
            "type": "function_call",
            "id": f"fc_{index}",
            "call_id": f"call_{index}",
            "name": tool,
            "arguments": json.dumps(arguments),
            "status": "completed",
        }
        return self._response(index, [*([self._message(say, index)] if say else []), item], [])

    def text(self, text: str, index: int, body: Json) -> Reply:
        """A ``message`` output item, with its text delta first."""
        item = self._message(text, index)
        delta = {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": text,
        }
        return self._response(index, [item], [delta])

    @staticmethod
    def _message(text: str, index: int) -> Json:
        return {
            "type": "message",
            "id": f"msg_{index}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def error(self, status: int, message: str) -> Reply:
        """OpenAI's error shape."""
        return openai_error(status, message)

    def _response(self, index: int, items: list[Json], deltas: list[Json]) -> Reply:
        response = {"id": f"resp_{index}", "status": "in_progress", "output": []}
        usage = {
            "input_tokens": USAGE_IN,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": USAGE_OUT,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": USAGE_IN + USAGE_OUT,
        }
        done = {**response, "status": "completed", "output": items, "usage": usage}
        added = [
            {"type": "response.output_item.added", "output_index": n, "item": item}
            for n, item in enumerate(items)
        ]
        events: list[Json] = [
            {"type": "response.created", "response": response},
            *added,
            *deltas,
            *(
                {"type": "response.output_item.done", "output_index": n, "item": item}
                for n, item in enumerate(items)
            ),
            {"type": "response.completed", "response": done},
        ]
        return Reply(200, "text/event-stream", sse(events, named=True))


class Chat:
    """OpenAI Chat Completions (opencode through the openai-compatible provider)."""

    def tool_names(self, body: Json) -> list[str]:
        """``tools[].function.name``."""
        return [(tool.get("function") or {}).get("name", "") for tool in body.get("tools") or []]

    def tool_results(self, body: Json) -> int:
        """Messages of role ``tool``."""
        return sum(1 for message in body.get("messages") or [] if message.get("role") == "tool")

    def tool_call(self, tool: str, arguments: Json, index: int, body: Json, say: str) -> Reply:
        """One chunk with the text and the whole call, then ``finish_reason: tool_calls``."""
        call = {
            "index": 0,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": tool, "arguments": json.dumps(arguments)},
        }
        delta = {"role": "assistant", "tool_calls": [call], **({"content": say} if say else {})}
        return self._chunks(index, body, delta, "tool_calls")

    def text(self, text: str, index: int, body: Json) -> Reply:
        """One content chunk, then ``finish_reason: stop``."""
        return self._chunks(index, body, {"role": "assistant", "content": text}, "stop")

    def error(self, status: int, message: str) -> Reply:
        """OpenAI's error shape."""
        return openai_error(status, message)

    def _chunks(self, index: int, body: Json, delta: Json, finish: str) -> Reply:
        def chunk(choices: list[Json], **extra: Any) -> Json:
            return {
                "id": f"chatcmpl-{index}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": choices,
                **extra,
            }

        usage = {
            "prompt_tokens": USAGE_IN,
            "completion_tokens": USAGE_OUT,
            "total_tokens": USAGE_IN + USAGE_OUT,
        }
        events = [
            chunk([{"index": 0, "delta": delta, "finish_reason": None}]),
            chunk([{"index": 0, "delta": {}, "finish_reason": finish}]),
            chunk([], usage=usage),
        ]
        return Reply(200, "text/event-stream", sse(events, done=True))


class Gemini:
    """Gemini ``generateContent`` and ``streamGenerateContent?alt=sse``."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    def tool_names(self, body: Json) -> list[str]:
        """``tools[].functionDeclarations[].name``."""
        return [
            declaration.get("name", "")
            for tool in body.get("tools") or []
            for declaration in tool.get("functionDeclarations") or []
        ]

    def tool_results(self, body: Json) -> int:
        """``functionResponse`` parts in the contents."""
        return sum(
            1
            for content in body.get("contents") or []
            for part in content.get("parts") or []
            if "functionResponse" in part
        )

    def tool_call(self, tool: str, arguments: Json, index: int, body: Json, say: str) -> Reply:
        """A ``functionCall`` part (after a ``text`` part)."""
        call = {"functionCall": {"name": tool, "args": arguments}}
        return self._candidate(*([{"text": say}] if say else []), call)

    def text(self, text: str, index: int, body: Json) -> Reply:
        """A ``text`` part."""
        return self._candidate({"text": text})

    def error(self, status: int, message: str) -> Reply:
        """Google's error shape."""
        name = "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
        return json_reply({"error": {"code": status, "message": message, "status": name}}, status)

    def _candidate(self, *parts: Json) -> Reply:
        chunk = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": list(parts)},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": USAGE_IN,
                "candidatesTokenCount": USAGE_OUT,
                "totalTokenCount": USAGE_IN + USAGE_OUT,
            },
        }
        if self.stream:
            return Reply(200, "text/event-stream", sse([chunk]))
        return json_reply(chunk)


def fill_schema(schema: Any) -> Any:
    """A plausible value matching a JSON schema (or Gemini's upper-case variant)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return fill_schema(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    fillers: dict[str, Callable[[], Any]] = {
        "object": lambda: {k: fill_schema(v) for k, v in (schema.get("properties") or {}).items()},
        "array": lambda: [fill_schema(schema.get("items"))],
        "string": lambda: "fake",
        "integer": lambda: int(schema.get("minimum", 1)),
        "number": lambda: float(schema.get("minimum", 1)),
        "boolean": lambda: True,
    }
    filler = fillers.get(str(kind).lower())
    return filler() if filler else None


def requested_schema(body: Json) -> Any:
    """The JSON schema a Gemini request asks the answer to follow, if any."""
    config = body.get("generationConfig") or {}
    return config.get("responseJsonSchema") or config.get("responseSchema")


def dialect_for(api: str, path: str) -> Dialect | None:
    """Which dialect serves ``POST path`` for ``api``; None for an unknown path."""
    route = path.split("?", 1)[0].rstrip("/")
    if api == "anthropic" and route == "/v1/messages":
        return Anthropic()
    if api == "openai" and route == "/v1/responses":
        return Responses()
    if api == "openai" and route == "/v1/chat/completions":
        return Chat()
    if api == "gemini" and route.endswith((":generateContent", ":streamGenerateContent")):
        return Gemini(stream=route.endswith(":streamGenerateContent"))
    return None


def answer(
    dialect: Dialect, script: list[Json], body: Json, served: dict[int, int] | None = None
) -> tuple[Json, Reply]:
    """The step this request is at, and the reply it gets; ``served`` counts the answers
    of each step with ``times`` (by its place in the script), and is updated."""
    schema = requested_schema(body)
    if isinstance(dialect, Gemini) and schema:
        text = json.dumps(fill_schema(schema))
        return {}, dialect.text(text, 0, body)
    tools = dialect.tool_names(body)
    if not tools:
        return {}, dialect.text(SIDE_CALL_TEXT, 0, body)
    index = dialect.tool_results(body)
    now, served = time.time(), served if served is not None else {}
    live = [
        (place, step)
        for place, step in enumerate(script)
        if not now >= step.get("lifts_at", now + 1)
        and served.get(place, 0) < step.get("times", float("inf"))
    ]
    if index >= len(live):
        step: Json = {"text": "script exhausted"}
        return step, render(dialect, step, index, body, tools)
    place, step = live[index]
    if "times" in step:
        served[place] = served.get(place, 0) + 1
    return step, render(dialect, step, index, body, tools)


def render(dialect: Dialect, step: Json, index: int, body: Json, tools: list[str]) -> Reply:
    """The reply for one script step."""
    if "error" in step:
        return error_reply(dialect, step["error"])
    if "stream_error" in step:
        if isinstance(dialect, (Chat, Responses)):
            return Reply(200, "text/event-stream", sse([{"error": step["stream_error"]}]))
        return dialect.error(500, str(step["stream_error"].get("message", "error")))
    if "shell" in step:
        tool = next((name for name in SHELL_TOOLS if name in tools), None)
        if tool is None:
            return dialect.error(400, f"fake server: no shell tool among {tools}")
        arguments = shell_arguments(tool, step["shell"])
        return dialect.tool_call(tool, arguments, index, body, str(step.get("say", "")))
    return dialect.text(str(step.get("text", "")), index, body)


def error_reply(dialect: Dialect, error: Json) -> Reply:
    """An HTTP error: the API's shape, with ``type``/``fields`` merged into its error object
    and ``headers`` sent; a value ``"@now+N"`` becomes the Unix time N seconds ahead."""
    reply = dialect.error(int(error.get("status", 500)), str(error.get("message", "error")))
    extra = {**({"type": error["type"]} if "type" in error else {}), **error.get("fields", {})}
    if extra:
        body = json.loads(reply.body)
        target = body[0] if isinstance(body, list) else body
        target["error"].update({key: _timed(value) for key, value in extra.items()})
        reply = replace(reply, body=json.dumps(body).encode())
    headers = tuple((name, str(_timed(value))) for name, value in error.get("headers", {}).items())
    return replace(reply, headers=headers)


def _timed(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("@now+"):
        return int(time.time() + float(value[len("@now+") :]))
    return value


def redact_path(path: str) -> str:
    """The path with a ``key=`` query value hidden."""
    return re.sub(r"([?&]key=)[^&]*", r"\1<redacted>", path)


class Server(ThreadingHTTPServer):
    """The HTTP server plus what the handlers share: script, log, last activity."""

    daemon_threads = True

    def __init__(self, port: int, api: str, script: list[Json], log: Path) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.api = api
        self.script = script
        self.log_file = log.open("a", encoding="utf-8")
        self.lock = threading.Lock()
        self.busy = 0
        self.last_activity = time.monotonic()
        self.served: dict[int, int] = {}  # answers given by each step with "times"

    def record(self, entry: Json) -> None:
        """Append one request to the log, whole, and flush it."""
        with self.lock:
            self.log_file.write(json.dumps(entry) + "\n")
            self.log_file.flush()

    def activity(self, delta: int) -> None:
        """Count a request starting (+1) or ending (-1)."""
        with self.lock:
            self.busy += delta
            self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last request ended, 0 while one is being answered."""
        with self.lock:
            return 0.0 if self.busy else time.monotonic() - self.last_activity


class Handler(BaseHTTPRequestHandler):
    """Logs each request and answers it from the script."""

    protocol_version = "HTTP/1.1"
    server: Server

    def do_HEAD(self) -> None:
        """Connectivity probes (claude sends ``HEAD /api/hello``)."""
        self._handle(lambda body: Reply(200, "text/plain", b""))

    def do_GET(self) -> None:
        """Nothing is served by GET."""
        self._handle(lambda body: self._not_found())

    def do_POST(self) -> None:
        """A model request."""
        self._handle(self._model_reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the JSONL log is the record."""

    def _handle(self, reply_for: Callable[[Any], Reply]) -> None:
        self.server.activity(+1)
        try:
            body = self._read_body()
            self.server.record(self._entry(body))
            reply = reply_for(body)
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client gave up (its timeout); nothing left to answer.
        finally:
            self.server.activity(-1)

    def _model_reply(self, body: Any) -> Reply:
        dialect = dialect_for(self.server.api, self.path)
        if dialect is None:
            return self._not_found()
        with self.server.lock:
            step, reply = answer(
                dialect, self.server.script, body if isinstance(body, dict) else {},
                self.server.served,
            )  # fmt: skip
        time.sleep(float(step.get("delay", 0)))
        return replace(reply, stall=float(step.get("stall", 0)))

    def _not_found(self) -> Reply:
        return json_reply({"error": {"message": f"fake server: no route for {self.path}"}}, 404)

    def _read_body(self) -> Any:
        # Every CLI measured sends a Content-Length (none sends chunked bodies).
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        text = raw.decode(errors="replace")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return text

    def _entry(self, body: Any) -> Json:
        headers = {
            name: "<redacted>" if name.lower() in REDACTED_HEADERS else value
            for name, value in self.headers.items()
        }
        path = redact_path(self.path)
        return {
            "time": time.time(),
            "method": self.command,
            "path": path,
            "headers": headers,
            "body": body,
        }

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        first = reply.body.find(b"\n\n") + 2 if reply.stall else len(reply.body)
        self.wfile.write(reply.body[:first])
        self.wfile.flush()
        time.sleep(reply.stall)
        self.wfile.write(reply.body[first:])
        self.wfile.flush()


def watch(server: Server, idle_exit: float, parent: int) -> None:
    """Shut the server down when it has been idle too long or its parent died."""
    while os.getppid() == parent and server.idle_for() < idle_exit:
        time.sleep(0.2)
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    """Serve until idle or orphaned."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--api", required=True, choices=("anthropic", "openai", "gemini"))
    parser.add_argument("--script", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--idle-exit", type=float, default=120.0)
    # Given by the starter, so that a parent dying before this process looks is noticed.
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    options = parser.parse_args(argv)
    script = json.loads(options.script.read_text(encoding="utf-8"))
    server = Server(options.port, options.api, script, options.log)
    watcher = threading.Thread(
        target=watch, args=(server, options.idle_exit, options.parent_pid), daemon=True
    )
    watcher.start()
    sys.stdout.write(f"LISTENING http://127.0.0.1:{server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        server.log_file.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

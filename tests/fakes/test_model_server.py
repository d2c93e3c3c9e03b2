"""The fake model server: its wire shapes over HTTP, and the real CLIs driven against it."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from fakes.servers import (
    CLAUDE_BIN,
    CODEX_BIN,
    SERVER_SCRIPT,
    FakeServer,
    cli_env,
    codex_args,
    start_model_server,
)

Serve = Callable[[str, list[dict[str, Any]]], FakeServer]
TOOL_CALL_THEN_TEXT = [{"shell": "echo hello | tee hello.txt"}, {"text": "Done"}]
BASH_TOOL = [{"name": "Bash", "input_schema": {}}]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start fake servers for one test; every one is stopped afterwards."""
    servers: list[FakeServer] = []

    def start(api: str, script: list[dict[str, Any]]) -> FakeServer:
        servers.append(start_model_server(api, script, tmp_path))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def connect(server: FakeServer) -> http.client.HTTPConnection:
    """A connection to the server (127.0.0.1 only)."""
    return http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)


def post(server: FakeServer, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST JSON with an API key; the status and the raw body, errors included."""
    connection = connect(server)
    try:
        headers = {"Content-Type": "application/json", "x-api-key": "sk-secret"}
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def sse_data(body: bytes) -> list[dict[str, Any]]:
    """The JSON of each ``data:`` line of an SSE body."""
    lines = body.decode().splitlines()
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def anthropic_request(tool_results: int) -> dict[str, Any]:
    """A Messages request that already carries ``tool_results`` results."""
    results = [
        {"type": "tool_result", "tool_use_id": f"t{i}", "content": "ok"}
        for i in range(tool_results)
    ]
    messages = [{"role": "user", "content": "go"}, {"role": "user", "content": results}]
    return {"model": "m", "stream": True, "tools": BASH_TOOL, "messages": messages}


def test_anthropic_step_follows_the_number_of_tool_results(serve: Serve) -> None:
    server = serve("anthropic", TOOL_CALL_THEN_TEXT)
    status, body = post(server, "/v1/messages?beta=true", anthropic_request(0))
    assert status == 200
    events = sse_data(body)
    assert events[0]["type"] == "message_start"
    assert events[1]["content_block"]["name"] == "Bash"
    assert json.loads(events[2]["delta"]["partial_json"]) == {
        "command": "echo hello | tee hello.txt"
    }
    _, body = post(server, "/v1/messages", anthropic_request(1))
    assert sse_data(body)[2]["delta"] == {"type": "text_delta", "text": "Done"}


def test_anthropic_retry_gets_the_same_answer_and_past_the_end_a_text(serve: Serve) -> None:
    server = serve("anthropic", TOOL_CALL_THEN_TEXT)
    assert post(server, "/v1/messages", anthropic_request(0)) == post(
        server, "/v1/messages", anthropic_request(0)
    )
    _, body = post(server, "/v1/messages", anthropic_request(2))
    assert sse_data(body)[2]["delta"]["text"] == "script exhausted"


def test_a_step_with_times_answers_that_many_requests_then_is_left_out(serve: Serve) -> None:
    burst = {"error": {"status": 503, "message": "overloaded"}, "times": 2}
    server = serve("anthropic", [burst, *TOOL_CALL_THEN_TEXT])
    statuses = [post(server, "/v1/messages", anthropic_request(0))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    _, body = post(server, "/v1/messages", anthropic_request(0))
    assert sse_data(body)[1]["content_block"]["name"] == "Bash"  # the burst stays over
    _, body = post(server, "/v1/messages", anthropic_request(1))
    assert sse_data(body)[2]["delta"]["text"] == "Done"


def test_probes_answer_and_requests_are_logged_without_keys(serve: Serve) -> None:
    server = serve("anthropic", TOOL_CALL_THEN_TEXT)
    connection = connect(server)
    connection.request("HEAD", "/api/hello")
    assert connection.getresponse().status == 200
    connection.close()
    post(server, "/v1/messages", anthropic_request(0))
    logged = server.requests()
    assert [(r["method"], r["path"]) for r in logged] == [
        ("HEAD", "/api/hello"),
        ("POST", "/v1/messages"),
    ]
    headers = {name.lower(): value for name, value in logged[1]["headers"].items()}
    assert headers["x-api-key"] == "<redacted>"
    assert logged[1]["body"]["model"] == "m"
    assert "sk-secret" not in server.log.read_text()


ERROR_SHAPES = {
    "anthropic": {"type": "error", "error": {"type": "api_error", "message": "boom"}},
    "openai": {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}},
    "gemini": {"error": {"code": 503, "message": "boom", "status": "INTERNAL"}},
}
ENDPOINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": ("/v1/messages", {"tools": BASH_TOOL}),
    "openai": ("/v1/responses", {"tools": [{"name": "shell"}]}),
    "gemini": (
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        {"tools": [{"functionDeclarations": [{"name": "x"}]}]},
    ),
}


@pytest.mark.parametrize("api", sorted(ERROR_SHAPES))
def test_error_steps_use_each_apis_shape(serve: Serve, api: str) -> None:
    server = serve(api, [{"error": {"status": 503, "message": "boom"}}])
    path, body = ENDPOINTS[api]
    status, answer = post(server, path, body)
    assert status == 503
    assert json.loads(answer) == ERROR_SHAPES[api]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("exec_command", {"cmd": "ls"}),
        ("shell_command", {"command": "ls"}),
        ("shell", {"command": ["bash", "-lc", "ls"]}),
    ],
)
def test_responses_calls_whichever_shell_tool_is_offered(
    serve: Serve, tool: str, arguments: dict[str, Any]
) -> None:
    server = serve("openai", [{"shell": "ls"}])
    tools = [{"type": "function", "name": "view_image"}, {"type": "function", "name": tool}]
    _, body = post(server, "/v1/responses", {"tools": tools, "input": []})
    done = [e for e in sse_data(body) if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["name"] == tool
    assert json.loads(done[0]["item"]["arguments"]) == arguments


def test_responses_counts_function_call_outputs(serve: Serve) -> None:
    server = serve("openai", TOOL_CALL_THEN_TEXT)
    body = {
        "tools": [{"name": "exec_command"}],
        "input": [{"type": "function_call_output", "output": "x"}],
    }
    _, answer = post(server, "/v1/responses", body)
    events = sse_data(answer)
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "Done"


def test_chat_completions_tool_call_then_done(serve: Serve) -> None:
    server = serve("openai", TOOL_CALL_THEN_TEXT)
    tools = [{"type": "function", "function": {"name": "bash"}}]
    _, body = post(server, "/v1/chat/completions", {"tools": tools, "messages": []})
    assert body.endswith(b"data: [DONE]\n\n")
    call = sse_data(body)[0]["choices"][0]["delta"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"])["command"] == "echo hello | tee hello.txt"
    messages = [{"role": "tool", "content": "hello"}]
    _, body = post(server, "/v1/chat/completions", {"tools": tools, "messages": messages})
    assert sse_data(body)[0]["choices"][0]["delta"]["content"] == "Done"


def test_a_request_without_tools_is_a_side_call(serve: Serve) -> None:
    server = serve("openai", [{"error": {"status": 500, "message": "boom"}}])
    status, body = post(
        server, "/v1/chat/completions", {"messages": [{"role": "user", "content": "title?"}]}
    )
    assert status == 200
    assert sse_data(body)[0]["choices"][0]["delta"]["content"] == "Fake title"


def test_gemini_fills_the_requested_schema(serve: Serve) -> None:
    server = serve("gemini", TOOL_CALL_THEN_TEXT)
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "score": {"type": "integer", "minimum": 1, "maximum": 100},
            "kind": {"enum": ["simple", "complex"]},
            "tags": {"type": "array", "items": {"type": "boolean"}},
        },
    }
    body = {"contents": [], "generationConfig": {"responseJsonSchema": schema}}
    status, answer = post(server, "/v1beta/models/flash:generateContent", body)
    assert status == 200
    part = json.loads(answer)["candidates"][0]["content"]["parts"][0]
    assert json.loads(part["text"]) == {
        "reasoning": "fake",
        "score": 1,
        "kind": "simple",
        "tags": [True],
    }


def test_gemini_stream_calls_run_shell_command(serve: Serve) -> None:
    server = serve("gemini", TOOL_CALL_THEN_TEXT)
    tools = [{"functionDeclarations": [{"name": "read_file"}, {"name": "run_shell_command"}]}]
    _, body = post(
        server, "/v1beta/models/pro:streamGenerateContent?alt=sse", {"tools": tools, "contents": []}
    )
    call = sse_data(body)[0]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "run_shell_command", "args": {"command": "echo hello | tee hello.txt"}}


def test_delay_holds_the_first_byte(serve: Serve) -> None:
    server = serve("anthropic", [{"text": "slow", "delay": 0.6}])
    start = time.monotonic()
    status, _ = post(server, "/v1/messages", anthropic_request(0))
    assert status == 200
    assert time.monotonic() - start >= 0.6


def test_stall_sends_the_first_event_then_pauses(serve: Serve) -> None:
    server = serve("anthropic", [{"text": "late", "stall": 0.8}])
    connection = connect(server)
    start = time.monotonic()
    connection.request("POST", "/v1/messages", json.dumps(anthropic_request(0)))
    response = connection.getresponse()
    first = response.readline()
    first_at = time.monotonic() - start
    rest = response.read()
    connection.close()
    assert first == b"event: message_start\n"
    assert first_at < 0.6
    assert time.monotonic() - start >= 0.8
    assert b'"text": "late"' in rest


def test_server_exits_when_idle(tmp_path: Path) -> None:
    server = start_model_server("openai", [], tmp_path, idle_exit=0.5)
    try:
        assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()


def test_server_exits_when_its_parent_dies(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text("[]")
    # The parent starts the server, prints its pid and exits at once.
    launcher = (
        "import os, subprocess, sys\n"
        "quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}\n"
        "argv = [sys.executable, *sys.argv[1:], '--parent-pid', str(os.getpid())]\n"
        "child = subprocess.Popen(argv, **quiet)\n"
        "print(child.pid)\n"
    )
    argv = [sys.executable, "-c", launcher, str(SERVER_SCRIPT), "--api", "gemini"]
    argv += ["--script", str(script), "--log", str(tmp_path / "log.jsonl"), "--idle-exit", "20"]
    pid = int(subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout)
    with contextlib.suppress(psutil.NoSuchProcess):  # already gone
        psutil.Process(pid).wait(timeout=10)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def run_cli(
    argv: list[str], env: dict[str, str], workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Run a real CLI the way tandem must: stdin closed, its own work dir, a time limit."""
    workdir.mkdir()
    return subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.skipif(not CLAUDE_BIN.exists(), reason="claude is not installed in tools/agent-clis")
def test_real_claude_runs_the_scripted_tool_call(serve: Serve, tmp_path: Path) -> None:
    server = serve("anthropic", TOOL_CALL_THEN_TEXT)
    argv = [str(CLAUDE_BIN), "-p", "--output-format", "stream-json", "--verbose"]
    argv += ["--dangerously-skip-permissions", "Create hello.txt"]
    completed = run_cli(argv, cli_env("anthropic", server, tmp_path), tmp_path / "ws")
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "ws" / "hello.txt").read_text() == "hello\n"
    assert [r["path"] for r in server.model_requests()] == ["/v1/messages?beta=true"] * 2
    assert json.loads(completed.stdout.splitlines()[-1])["result"] == "Done"
    server.stop()
    assert server.process.returncode is not None
    assert not psutil.pid_exists(server.pid)


@pytest.mark.e2e
@pytest.mark.skipif(not CODEX_BIN.exists(), reason="codex is not installed in tools/agent-clis")
def test_real_codex_runs_the_scripted_tool_call(serve: Serve, tmp_path: Path) -> None:
    server = serve("openai", TOOL_CALL_THEN_TEXT)
    argv = [str(CODEX_BIN), "exec", "--json", "--dangerously-bypass-approvals-and-sandbox"]
    argv += [*codex_args(server), "Create hello.txt"]
    completed = run_cli(argv, cli_env("openai", server, tmp_path), tmp_path / "ws")
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "ws" / "hello.txt").read_text() == "hello\n"
    assert [r["path"] for r in server.model_requests()] == ["/v1/responses"] * 2
    assert '"text":"Done"' in completed.stdout
    server.stop()
    assert server.process.returncode is not None
    assert not psutil.pid_exists(server.pid)


def test_an_error_step_can_set_its_type_fields_and_headers(serve: Serve) -> None:
    error = {
        "status": 429,
        "message": "limited",
        "type": "rate_limit_error",
        "fields": {"resets_at": "@now+60"},
        "headers": {"retry-after": "60", "x-reset": "@now+60"},
    }
    server = serve("anthropic", [{"error": error}])
    connection = connect(server)
    try:
        connection.request("POST", "/v1/messages", json.dumps(anthropic_request(0)))
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 429
    assert response.getheader("retry-after") == "60"
    assert abs(int(response.getheader("x-reset") or 0) - time.time() - 60) < 30
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"] == "limited"
    assert abs(body["error"]["resets_at"] - time.time() - 60) < 30

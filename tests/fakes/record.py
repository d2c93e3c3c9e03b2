"""Record the real stdout of the real agent CLIs run against the fake model server.

Rerun from the repository root (claude and codex come from tools/agent-clis; gemini and
opencode from ``--extra-bin-dir``, e.g. after
``npm install --prefix /tmp/extra-clis @google/gemini-cli@0.61.0 opencode-ai@1.18.33``)::

    PYTHONPATH=src:tests .venv/bin/python tests/fakes/record.py [RECORDING ...]

Each run writes ``tests/data/recordings/<agent>-<scenario>.jsonl`` and prints its exit
code, wall time and number of model requests. The argv is the agent's own
``invocation`` with its default permissions, so the recordings show what tandem reads.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakes.servers import (
    CLAUDE_BIN,
    CODEX_BIN,
    REPO_ROOT,
    FakeServer,
    cli_env,
    codex_args,
    start_model_server,
)
from tandem.agents import BUILTINS

RECORDINGS = REPO_ROOT / "tests" / "data" / "recordings"
PROMPT = "Create hello.txt containing hello, then say Done."
TOOL_CALL = [{"shell": "echo hello | tee hello.txt"}, {"text": "Done: created hello.txt"}]
FAILING_COMMAND = [{"shell": "echo oops >&2; exit 3"}, {"text": "The command failed"}]
HTTP_500 = [{"error": {"status": 500, "message": "boom"}}]
# opencode retries a 500 forever (with backoff), so its error recording uses a 400.
HTTP_400 = [{"error": {"status": 400, "message": "bad request boom"}}]
API = {"claude": "anthropic", "codex": "openai", "gemini": "gemini", "opencode": "openai"}
# Anthropic's subscription limit, as AGENT-CLIS.md §7 measured it: a 429 with the unified
# rate-limit headers; claude reports it as a usage limit only when signed in by OAuth.
CLAUDE_LIMIT_HEADERS = {
    "anthropic-ratelimit-unified-status": "rejected",
    "anthropic-ratelimit-unified-reset": "@now+3600",
    "anthropic-ratelimit-unified-representative-claim": "five_hour",
    "anthropic-ratelimit-unified-5h-status": "rejected",
    "anthropic-ratelimit-unified-5h-reset": "@now+3600",
    "anthropic-ratelimit-unified-overage-status": "rejected",
    "retry-after": "3600",
}
RATE_LIMITED = "This request would exceed your account's rate limit. Please try again later."
CLAUDE_429 = [
    {
        "error": {
            "status": 429,
            "type": "rate_limit_error",
            "message": RATE_LIMITED,
            "headers": CLAUDE_LIMIT_HEADERS,
        }
    }
]
CLAUDE_OAUTH = {"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-fake-0000", "ANTHROPIC_API_KEY": None}
# codex-rs maps a 429 whose error type is usage_limit_reached to its usage-limit error
# (codex-rs/core/src/client.rs; the fields are those of api-client/src/error.rs).
CODEX_USAGE_LIMIT = [
    {
        "error": {
            "status": 429,
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "fields": {"plan_type": "plus", "resets_at": "@now+3600"},
        }
    }
]
CODEX_429 = [{"error": {"status": 429, "message": "Rate limit reached. Please try again in 2s."}}]
# Google's quota errors as gemini-cli classifies them (packages/core/src/utils/
# googleQuotaErrors.ts): a per-minute quota with a RetryInfo delay is retryable, a per-day
# QuotaFailure is terminal.
GEMINI_PER_MINUTE = [
    {
        "error": {
            "status": 429,
            "message": "Resource has been exhausted (e.g. check quota). Please retry in 2s.",
            "fields": {"status": "RESOURCE_EXHAUSTED"},
        }
    }
]
GEMINI_PER_DAY = [
    {
        "error": {
            "status": 429,
            "message": "Quota exceeded for metric: generate_content_requests, limit: 0",
            "fields": {
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}
                        ],
                    }
                ],
            },
        }
    }
]
HTTP_401 = [{"error": {"status": 401, "message": "Incorrect API key provided"}}]
# OpenAI's answer for an account out of quota, sent as an error chunk after the stream
# began: opencode does not retry it (its provider/error.ts parseStreamError marks
# insufficient_quota isRetryable false; session/retry.ts retries nothing that is not
# retryable), so it fails at once, where it retries an HTTP 429 or 5xx without end.
OPENCODE_NO_QUOTA = [
    {
        "stream_error": {
            "message": "You exceeded your current quota, please check your plan and billing "
            "details.",
            "type": "insufficient_quota",
            "code": "insufficient_quota",
        }
    }
]


@dataclass(frozen=True)
class Scenario:
    """One recording: which agent, which script."""

    agent: str
    name: str
    script: list[dict[str, Any]]
    env: dict[str, str | None] = field(default_factory=dict)  # None unsets

    @property
    def path(self) -> Path:
        """Where the recording goes."""
        return RECORDINGS / f"{self.agent}-{self.name}.jsonl"


SCENARIOS = [
    Scenario("claude", "tool-call", TOOL_CALL),
    Scenario("claude", "failing-command", FAILING_COMMAND),
    Scenario("claude", "http-500", HTTP_500),
    Scenario("claude", "usage-limit", CLAUDE_429, CLAUDE_OAUTH),
    Scenario("claude", "http-429", CLAUDE_429),
    Scenario("claude", "http-401", HTTP_401),
    Scenario("claude", "api-retry", HTTP_500, {"CLAUDE_CODE_MAX_RETRIES": "2"}),
    Scenario("codex", "tool-call", TOOL_CALL),
    Scenario("codex", "failing-command", FAILING_COMMAND),
    Scenario("codex", "http-500", HTTP_500),
    Scenario("codex", "usage-limit", CODEX_USAGE_LIMIT),
    Scenario("codex", "http-429", CODEX_429),
    Scenario("codex", "http-401", HTTP_401),
    Scenario("gemini", "tool-call", TOOL_CALL),
    Scenario("gemini", "failing-command", FAILING_COMMAND),
    Scenario("gemini", "http-500", HTTP_500),
    Scenario("gemini", "http-429", GEMINI_PER_MINUTE),
    Scenario("gemini", "usage-limit", GEMINI_PER_DAY),
    Scenario("opencode", "tool-call", TOOL_CALL),
    Scenario("opencode", "failing-command", FAILING_COMMAND),
    Scenario("opencode", "http-400", HTTP_400),
    Scenario("opencode", "insufficient-quota", OPENCODE_NO_QUOTA),
]


def record(scenario: Scenario, executable: Path) -> str:
    """Run one scenario, write its stdout, and return a summary line."""
    with tempfile.TemporaryDirectory(prefix=f"record-{scenario.agent}-") as tmp:
        tmp_path = Path(tmp)
        server = start_model_server(API[scenario.agent], scenario.script, tmp_path)
        try:
            returncode, wall, stdout = run(scenario, executable, server, tmp_path)
            requests = len(server.model_requests())
        finally:
            server.stop()
    scenario.path.write_text(stdout, encoding="utf-8")
    return f"{scenario.path.name}: exit {returncode}, {wall:.2f} s, {requests} model requests"


def run(
    scenario: Scenario, executable: Path, server: FakeServer, tmp_path: Path
) -> tuple[int, float, str]:
    """Run the agent as tandem would, in a fresh work dir; exit code, wall time, stdout."""
    agent = scenario.agent
    env = cli_env(API[agent], server, tmp_path)
    for name, value in scenario.env.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    args = tuple(codex_args(server)) if agent == "codex" else ()
    builtin = BUILTINS[agent]
    invocation = builtin.invocation(
        str(executable), prompt_text=PROMPT, permissions=builtin.default_permissions, args=args
    )
    workdir = tmp_path / "ws"
    workdir.mkdir()
    prompt_file = tmp_path / "prompt.md"
    prompt_file.write_text(PROMPT, encoding="utf-8")
    start = time.monotonic()
    with prompt_file.open("rb") as prompt:
        stdin = prompt if invocation.prompt_on_stdin else subprocess.DEVNULL
        completed = subprocess.run(
            invocation.argv,
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=workdir,
            env=env,
            timeout=120,
            check=False,
        )
    return completed.returncode, time.monotonic() - start, completed.stdout


def main() -> int:
    """Record the named recordings (default: all)."""
    parser = argparse.ArgumentParser(description="Record agent CLI output.")
    parser.add_argument("recordings", nargs="*", help="e.g. codex-tool-call; default: all")
    parser.add_argument(
        "--extra-bin-dir", type=Path, default=Path("/tmp/extra-clis/node_modules/.bin")
    )
    options = parser.parse_args()
    binaries = {
        "claude": CLAUDE_BIN,
        "codex": CODEX_BIN,
        "gemini": options.extra_bin_dir / "gemini",
        "opencode": options.extra_bin_dir / "opencode",
    }
    chosen = [s for s in SCENARIOS if not options.recordings or s.path.stem in options.recordings]
    for scenario in chosen:
        print(record(scenario, binaries[scenario.agent]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""A fake agent CLI for tests: reads the prompt on stdin, acts out a plan, logs the call.

``FAKE_AGENT_LOG``: JSONL file; each run appends {actor, iteration, prompt, purpose, cwd}.
``FAKE_AGENT_PLAN``: JSON file: {"<key>": action, ...} where the key is tried in this
order: "<actor>:<iteration>:<prompt>", "<actor>:<iteration>", "<prompt>", "<actor>",
"router" (for router runs), "default". An action is a dict with any of:
  write {path: text}, append {path: text}, delete [paths], stdout "text", stderr "text",
  answer "text" (printed alone, for router runs), exit N, sleep SECS, stop "reason"
  (sets exit/exit_reason in the state file), commit "message" (the agent's own commit of
  what it wrote), spawn SECS (start a detached grandchild that sleeps; its pid is
  appended to FAKE_AGENT_PIDS),
  hold_pipe SECS (a detached grandchild keeps stdout open), kill_parent true (SIGKILL
  the tandem process that started it, to simulate a crash mid-turn), write_after_sleep
  {path: text} (written last), git [[args...], ...] (git commands the agent runs, after
  its commit), state {field: value} (fields it sets in the state file, after "stop").
Each record also holds the agent's pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def main() -> int:
    prompt = sys.stdin.read()
    env = os.environ
    record = {
        "actor": env.get("TANDEM_ACTOR"),
        "iteration": int(env.get("TANDEM_ITERATION", "0")),
        "prompt": env.get("TANDEM_PROMPT"),
        "purpose": env.get("TANDEM_PURPOSE"),
        "cwd": os.getcwd(),
        "prompt_text": prompt[:200],
        "argv": sys.argv[1:],
        "pid": os.getpid(),
    }
    if env.get("FAKE_AGENT_LOG"):
        with open(env["FAKE_AGENT_LOG"], "a") as handle:
            handle.write(json.dumps(record) + "\n")
    action = _action(record)
    return _act(action, env)


def _action(record: dict[str, Any]) -> dict[str, Any]:
    plan_path = os.environ.get("FAKE_AGENT_PLAN")
    plan: dict[str, Any] = {}
    if plan_path and Path(plan_path).exists():
        plan = json.loads(Path(plan_path).read_text())
    actor, iteration, prompt = record["actor"], record["iteration"], record["prompt"]
    keys = [f"{actor}:{iteration}:{prompt}", f"{actor}:{iteration}", str(prompt), str(actor)]
    if record["purpose"] == "router":
        keys.insert(0, "router")
    for key in [*keys, "default"]:
        if key in plan:
            found: dict[str, Any] = plan[key]
            return found
    return {}


def _act(action: dict[str, Any], env: Mapping[str, str]) -> int:
    _print(action)
    _files(action)
    if "commit" in action:
        subprocess.run(["git", "add", "--all"], check=True)
        subprocess.run(["git", "commit", "-q", "-m", action["commit"]], check=True)
    for args in action.get("git", []):
        subprocess.run(["git", *args], check=True)
    if "stop" in action:
        _update_state(env, {"exit": True, "exit_reason": action["stop"]})
    if "state" in action:
        _update_state(env, action["state"])
    _children(action, env)
    if action.get("kill_parent"):
        os.kill(os.getppid(), signal.SIGKILL)
    if "sleep" in action:
        time.sleep(action["sleep"])
    for path, text in action.get("write_after_sleep", {}).items():
        Path(path).write_text(text)
    return int(action.get("exit", 0))


def _update_state(env: Mapping[str, str], fields: Mapping[str, Any]) -> None:
    state_path = Path(env["TANDEM_STATE_FILE"])
    state = json.loads(state_path.read_text())
    state.update(fields)
    state_path.write_text(json.dumps(state, indent=2) + "\n")


def _print(action: dict[str, Any]) -> None:
    if "answer" in action:
        print(action["answer"])
    if "stdout" in action:
        sys.stdout.write(action["stdout"])
        sys.stdout.flush()
    if "stderr" in action:
        sys.stderr.write(action["stderr"])
        sys.stderr.flush()


def _files(action: dict[str, Any]) -> None:
    for path, text in action.get("write", {}).items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    for path, text in action.get("append", {}).items():
        with open(path, "a") as handle:
            handle.write(text)
    for path in action.get("delete", []):
        Path(path).unlink()


def _children(action: dict[str, Any], env: Mapping[str, str]) -> None:
    """Detached grandchildren: one that sleeps, one that keeps stdout open."""
    for key, output in (("spawn", subprocess.DEVNULL), ("hold_pipe", None)):
        if key not in action:
            continue
        child = subprocess.Popen(
            [sys.executable, "-c", f"import time; time.sleep({action[key]})"],
            start_new_session=True,
            stdout=output,
            stderr=output,
        )
        with open(env["FAKE_AGENT_PIDS"], "a") as handle:
            handle.write(f"{child.pid}\n")


if __name__ == "__main__":
    raise SystemExit(main())

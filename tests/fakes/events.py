"""Test helpers for the agent parsers: recorded CLI output, and fuzzed event lines."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tandem.agents.base import Parser

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "recordings"

# Every field name the parsers read, so that fuzzed events reach their deeper branches.
FIELDS = (
    "type", "subtype", "message", "content", "text", "name", "input", "is_error", "result",
    "usage", "input_tokens", "output_tokens", "cache_read_input_tokens", "total_cost_usd",
    "num_turns", "duration_ms", "session_id", "item", "thread_id", "command", "exit_code",
    "status", "aggregated_output", "changes", "path", "server", "tool", "arguments", "query",
    "error", "role", "delta", "tool_name", "parameters", "output", "stats", "severity",
    "part", "sessionID", "state", "metadata", "exit", "reason", "tokens", "cache", "cost",
    "data", "file_path", "filePath",
)  # fmt: skip
WORDS = (
    "assistant", "user", "result", "text", "tool_use", "tool_result", "thinking", "success",
    "error", "failed", "completed", "agent_message", "command_execution", "file_change",
    "mcp_tool_call", "web_search", "Bash", "Write", "bash", "run_shell_command", "tool-calls",
    "stop", "Exit code 3\nboom", "/bin/bash -lc 'echo hi'", "/bin/bash -lc 'unbalanced",
)  # fmt: skip


def recording(name: str) -> list[str]:
    """The stdout lines of ``tests/data/recordings/<name>.jsonl``."""
    return (RECORDINGS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()


def recorded_events(name: str) -> list[dict[str, Any]]:
    """The events of a recording, decoded."""
    return [json.loads(line) for line in recording(name)]


def agent_templates(agent: str) -> list[dict[str, Any]]:
    """Every event recorded for ``agent``, as templates for fuzzing."""
    return [
        event
        for path in sorted(RECORDINGS.glob(f"{agent}-*.jsonl"))
        for event in recorded_events(path.stem)
    ]


def render(parser: Parser, lines: Iterable[str]) -> list[str]:
    """Every console line ``parser`` renders for ``lines``."""
    return [shown for line in lines for shown in parser.feed(line)]


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value, biased towards the field names and words the parsers look for."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and infinities too: Python's json reads them
        st.text(max_size=20),
        st.sampled_from(WORDS),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=6),
        ),
        max_leaves=15,
    )


def event_lines(templates: Sequence[dict[str, Any]]) -> st.SearchStrategy[str]:
    """Stdout lines: arbitrary text, arbitrary JSON, or mutants of the template events."""
    return st.one_of(
        st.text(),
        json_values().map(json.dumps),
        st.one_of([mutants(template) for template in templates]).map(json.dumps),
    )


def mutants(template: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``template`` with one to three fields, at any depth, dropped or replaced by any JSON."""
    change = st.tuples(st.sampled_from(_paths(template)), json_values() | st.just(_DROPPED))
    return st.lists(change, min_size=1, max_size=3).map(
        lambda changes: _changed(copy.deepcopy(template), changes)
    )


FieldPath = tuple[str | int, ...]


def _paths(value: Any, prefix: FieldPath = ()) -> list[FieldPath]:
    """The path of every field and array element inside ``value``."""
    if isinstance(value, dict):
        children: Iterable[tuple[str | int, Any]] = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return []
    paths = []
    for key, child in children:
        paths += [(*prefix, key), *_paths(child, (*prefix, key))]
    return paths


def _changed(event: dict[str, Any], changes: list[tuple[FieldPath, Any]]) -> dict[str, Any]:
    """``event`` with each change applied where its path still leads somewhere."""
    for path, new in changes:
        parent: Any = event
        for key in path[:-1]:
            parent = _child(parent, key)
        last = path[-1]
        if _child(parent, last) is _DROPPED:
            continue
        if new is _DROPPED:
            del parent[last]
        else:
            parent[last] = new
    return event


def _child(parent: Any, key: str | int) -> Any:
    if isinstance(parent, dict) and isinstance(key, str):
        return parent.get(key, _DROPPED)
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        return parent[key]
    return _DROPPED


_DROPPED = object()

"""``tandem status``: whose turn, the lease, the last failure, the last turns (SPEC §10)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem.commands.common import quiet_host, sync_overrides
from tandem.host import Host
from tandem.logs import human_duration, read_events
from tandem.state import State, parse_time


def status(
    *,
    cwd: Path,
    as_json: bool,
    turns: int,
    fetch: bool,
    remote: str | None,
    branch: str | None,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Print the state (local, and the remote's view when there is a remote) and history."""
    host = quiet_host(cwd, config_path, {**overrides, **sync_overrides(remote, branch)})
    local = host.read_state() if host.state_file.exists() else None
    remote_view = _remote_view(host) if fetch else None
    events = list(read_events(host.log.events_path))
    report = {
        "state_file": host.state_path,
        "local": _describe(local, host) if local else None,
        "remote": remote_view,
        "last_turns": [_turn(e) for e in events if e.get("event") == "turn_end"][-turns:],
        "agents": agent_totals(events),
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_lines(report)))
    return 0


def _remote_view(host: Host) -> dict[str, Any] | None:
    """The state as the remote has it, when this host syncs through one."""
    from tandem.session import remote_view

    found = remote_view(host)
    if found is None:
        return None
    where, state = found
    return {"ref": where, **_describe(state, host)}


def _describe(state: State, host: Host) -> dict[str, Any]:
    now = host.clock()
    held = None
    if state.status.startswith("running-") and state.last_update:
        held = human_duration((now - parse_time(state.last_update)).total_seconds())
    return {
        "iteration": state.iteration,
        "expected_actor": state.expected_actor,
        "status": state.status,
        "lease_owner": state.lease_owner,
        "lease_expires_at": state.lease_expires_at,
        "lease_expired": _expired(state.lease_expires_at, now),
        "running_for": held,
        "failure": state.failure.to_json() if state.failure else None,
        "stop_requested": state.exit_reason if state.exit else None,
        "last_update": state.last_update,
    }


def _expired(expires: str | None, now: datetime) -> bool | None:
    return None if expires is None else parse_time(expires) <= now


def _turn(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "iteration": event.get("iteration"),
        "actor": event.get("actor"),
        "prompt": event.get("prompt"),
        "agent": event.get("agent"),
        "status": event.get("status"),
        "duration_secs": event.get("duration_secs"),
        "failure": event.get("failure"),
        "log": event.get("log"),
    }


def agent_totals(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per agent: turns, failures, cost and tokens summed from ``turn_end`` events."""
    totals: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("event") != "turn_end" or not isinstance(event.get("agent"), str):
            continue
        entry = totals.setdefault(
            event["agent"], {"turns": 0, "failed": 0, "cost_usd": 0.0, "tokens": {}}
        )
        entry["turns"] += 1
        entry["failed"] += event.get("status") != "ok"
        result = event.get("result") if isinstance(event.get("result"), dict) else None
        if result is None:
            continue
        cost = result.get("cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            entry["cost_usd"] = round(entry["cost_usd"] + cost, 6)
        usage = result.get("usage")
        for name, count in usage.items() if isinstance(usage, dict) else ():
            if isinstance(count, int) and not isinstance(count, bool):
                entry["tokens"][name] = entry["tokens"].get(name, 0) + count
    return totals


def _lines(report: Mapping[str, Any]) -> list[str]:
    lines = []
    for label in ("local", "remote"):
        view = report[label]
        if view is None:
            continue
        where = f" ({view['ref']})" if label == "remote" else f" ({report['state_file']})"
        lines.append(
            f"{label}{where}: iteration {view['iteration']}, "
            f"{view['expected_actor']}'s turn, {view['status']}"
        )
        if view["lease_owner"]:
            expired = " (expired)" if view["lease_expired"] else ""
            held = f", running for {view['running_for']}" if view["running_for"] else ""
            lines.append(
                f"  lease: {view['lease_owner']} until {view['lease_expires_at']}{expired}{held}"
            )
        if view["failure"]:
            f = view["failure"]
            lines.append(
                f"  last failure: {f['actor']} at iteration {f['iteration']} "
                f"({f['prompt']}): {f['reason']}; log: {f['log']}"
            )
        if view["stop_requested"]:
            lines.append(f"  stop requested: {view['stop_requested']}")
    if report["local"] is None and report["remote"] is None:
        lines.append(f"no state yet ({report['state_file']} does not exist)")
    if report["last_turns"]:
        lines.append("last turns:")
        for t in report["last_turns"]:
            secs = t["duration_secs"]
            took = human_duration(secs) if isinstance(secs, (int, float)) else "?"
            lines.append(
                f"  i{t['iteration']} {t['actor']} {t['prompt'] or '-'} "
                f"{t['agent'] or '-'} {took} {t['status']}  {t['log'] or ''}".rstrip()
            )
    for name, total in report["agents"].items():
        tokens = ", ".join(f"{k} {v:,}" for k, v in total["tokens"].items())
        cost = f", ${total['cost_usd']:.4f}" if total["cost_usd"] else ""
        lines.append(
            f"agent {name}: {total['turns']} turns ({total['failed']} failed){cost}"
            + (f", tokens: {tokens}" if tokens else "")
        )
    return lines

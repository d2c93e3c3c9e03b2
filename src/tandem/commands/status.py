"""``tandem status``: whose turn, the lease, the last failure, the last turns (SPEC §10)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem import ledger, workflow
from tandem.commands.common import quiet_host, sync_overrides
from tandem.host import Host
from tandem.logs import last_events
from tandem.renewal import SKEW_WARN_SECS, ago, extended, liveness
from tandem.state import State
from tandem.times import format_time, human_duration, parse_time
from tandem.view import pause_words


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
    history = history_totals(host, remote_view["ref"] if remote_view else "HEAD")
    report = {
        "state_file": host.state_path,
        "local": _describe(local, host) if local else None,
        "remote": remote_view,
        "last_turns": [_turn(e) for e in last_events(host.log.events_path, "turn_end", turns)],
        **history,
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_lines(report, host.clock())))
    return 0


def _remote_view(host: Host) -> dict[str, Any] | None:
    """The state as the remote has it, when this host syncs through one."""
    from tandem.session import remote_view

    found = remote_view(host)
    if found is None:
        return None
    where, state, renewal = found
    now = host.clock()
    if renewal is not None and (renewal.renewed_at - now).total_seconds() > SKEW_WARN_SECS:
        host.console.warn(
            f"the lease owner's clock is {ago(now, renewal.renewed_at)} ahead of this one's "
            "(its last renewal is in this machine's future); fix the clocks with NTP"
        )
    return {
        "ref": where,
        **_describe(state, host),
        "lease_expires_at": extended(state, renewal).lease_expires_at,
        "lease_expired": _expired(extended(state, renewal).lease_expires_at, now),
        "liveness": liveness(state, renewal, now, host.config.sync.renew_secs),
        "renewed_at": format_time(renewal.renewed_at) if renewal is not None else None,
    }


def history_totals(host: Host, ref: str) -> dict[str, Any]:
    """Totals per actor and per agent from the receipts in ``ref``'s history (SPEC §15).

    With a remote the remote's history is read, so both machines print the same numbers.
    """
    if host.repo is None:
        return {"totals_from": None, "actors": {}, "agents": {}, "malformed_receipts": []}
    summary = ledger.summarize(host.repo, ref, host.log.folder / "receipts-cache.json")
    return {
        "totals_from": ref,
        "actors": {k: v.to_json() for k, v in summary.actors.items()},
        "agents": {k: v.to_json() for k, v in summary.agents.items()},
        "malformed_receipts": list(summary.malformed),
    }


def _describe(state: State, host: Host) -> dict[str, Any]:
    now = host.clock()
    held = None
    if state.status.startswith("running-") and state.last_update:
        held = ago(parse_time(state.last_update), now)
    return {
        "iteration": state.iteration,
        "expected_actor": state.expected_actor,
        "status": state.status,
        "step": workflow.resolve(host.config).where(state),
        "lease_owner": state.lease_owner,
        "lease_expires_at": state.lease_expires_at,
        "lease_expired": _expired(state.lease_expires_at, now),
        "running_for": held,
        "failure": state.failure.to_json() if state.failure else None,
        "stop_requested": state.exit_reason if state.exit else None,
        "last_update": state.last_update,
        # read from the file's object, whichever way the model holds them (SPEC §3.1)
        "pause": _pause(state.to_json().get("pause"), now) if state.status == "paused" else None,
        "spent": state.to_json().get("spent"),
    }


def _pause(pause: Any, now: datetime) -> dict[str, Any] | None:
    """The pause object with the time left, when the state says ``paused``."""
    if not isinstance(pause, dict):
        return None
    left = None
    with contextlib.suppress(TypeError, ValueError):
        left = max(0.0, (parse_time(pause["until"]) - now).total_seconds())
    return {**pause, "secs_left": left}


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


def _lease_lines(view: Mapping[str, Any]) -> list[str]:
    """The owner's liveness (remote view) and the lease."""
    lines = [f"  owner: {view['liveness']}"] if view.get("liveness") else []
    if view["lease_owner"]:
        expired = " (expired)" if view["lease_expired"] else ""
        held = f", running for {view['running_for']}" if view["running_for"] else ""
        lines.append(
            f"  lease: {view['lease_owner']} until {view['lease_expires_at']}{expired}{held}"
        )
    return lines


def _lines(report: Mapping[str, Any], now: datetime) -> list[str]:
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
        lines.append(f"  {view['step']}")
        lines += _view_lines(view, now)
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
    if report["actors"]:
        lines.append(f"totals from the receipts in {report['totals_from']}:")
    for group in ("actors", "agents"):
        lines += [_total_line(name, total) for name, total in report[group].items()]
    if report["malformed_receipts"]:
        lines.append(
            f"  {len(report['malformed_receipts'])} receipts could not be read "
            f"(first: {report['malformed_receipts'][0]})"
        )
    return lines


def _view_lines(view: Mapping[str, Any], now: datetime) -> list[str]:
    """The lease, failure, stop request, pause and spending of one view of the state."""
    lines = _lease_lines(view)
    if view["failure"]:
        f = view["failure"]
        lines.append(
            f"  last failure: {f['actor']} at iteration {f['iteration']} "
            f"({f['prompt']}): {f['reason']}; log: {f['log']}"
        )
    if view["stop_requested"]:
        lines.append(f"  stop requested: {view['stop_requested']}")
    if view["pause"]:
        pause = view["pause"]
        reason = f": {pause['reason']}" if pause.get("reason") else ""
        lines.append("  " + pause_words(pause, now)[1] + reason)
    if view["spent"]:
        lines.append("  " + _spent_line(view["spent"]))
    return lines


def _spent_line(spent: Mapping[str, Any]) -> str:
    """``spent: $1.20, 3,400 tokens, 3 turns`` (the loop's totals kept in the state, §14.4)."""
    cost, tokens, turns = spent.get("cost_usd", 0), spent.get("tokens", 0), spent.get("turns", 0)
    return f"spent: ${cost:,.2f}, {tokens:,} tokens, {turns} turns"


def _total_line(name: str, total: Mapping[str, Any]) -> str:
    tokens = total["tokens"]
    parts = [f"{total['turns']} turns ({total['failed']} failed, {total['paused']} paused)"]
    if total["unpriced_turns"] < total["turns"]:
        parts.append(f"${total['cost_usd']:.4f}")
    parts.append(f"tokens in {tokens['in']:,} out {tokens['out']:,} cached {tokens['cached']:,}")
    parts.append(human_duration(total["duration_secs"]))
    if total["unpriced_turns"] == total["turns"]:
        parts.append(f"{name} reports no cost")
    elif total["unpriced_turns"]:
        parts.append(f"{total['unpriced_turns']} turns without a cost")
    return f"  {name}: " + ", ".join(parts)

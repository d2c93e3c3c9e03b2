"""``tandem report``: one self-contained HTML page from the receipts and events (SPEC §17).

The receipts in git are what every clone agrees on: the totals and the failures table
come from them. This machine's event log adds what never reached a commit (turns without
a receipt, pause deadlines, retried attempts, run errors; see ``report_events``). The
charts are SVG drawn by matplotlib at build time (``report_charts``) and the page is a
Jinja2 template: no script, no network, nothing to download when it opens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tandem import report_events
from tandem.errors import TandemError
from tandem.ledger import Total, totals
from tandem.receipts import History, Receipt
from tandem.report_charts import INSTALL, Bar, Series, per_iteration, timeline

TEMPLATE = "report.html.j2"
MAX_PROBLEMS = 500  # rows of the failures table: more makes the page slow to open


@dataclass(frozen=True)
class Page:
    """What the template needs: the title, the numbers, the charts and the table rows."""

    title: str
    built_at: str
    since: str | None
    charts: dict[str, str]  # inline <svg> by chart name
    by_actor: dict[str, Total]
    by_agent: dict[str, Total]
    by_prompt: dict[str, Total]
    problems: list[dict[str, Any]]  # failed and paused turns, the latest MAX_PROBLEMS
    problems_total: int
    malformed: list[str]
    overall: Total
    here: dict[str, Any]  # what this machine's events add: rows and counts


def page(
    history: History,
    seen: report_events.Seen,
    *,
    root: Path,
    title: str,
    since: str | None,
) -> Page:
    """Shape ``history`` and ``seen`` for the page; log links only for logs under ``root``."""
    turns = history.receipts
    overall = Total()
    for receipt in turns:
        overall.add(receipt)
    problems = [_problem(r, root) for r in turns if r.outcome != "ok"]
    problems += [_problem_here(t, root) for t in seen.turns if t.result != "ok"]
    problems.sort(key=lambda p: p["at"])
    return Page(
        title=title,
        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        since=since,
        charts=charts(turns, seen, root),
        by_actor=totals(turns, "actor"),
        by_agent=totals(turns, "agent"),
        by_prompt=totals(turns, "prompt"),
        problems=problems[-MAX_PROBLEMS:],
        problems_total=len(problems),
        malformed=history.malformed,
        overall=overall,
        here=_here(seen),
    )


def charts(turns: Sequence[Receipt], seen: report_events.Seen, root: Path) -> dict[str, str]:
    """The three charts as inline SVG: the timeline, durations and costs per iteration."""
    bars = [_bar(n, r, root) for n, r in enumerate(turns)]
    bars += [_bar_here(n, t, root) for n, t in enumerate(seen.turns)]
    bars += [_span(n, p) for n, p in enumerate(seen.pauses)]
    marks = [(f"{m.what}:{m.actor}", m.at, _mark_title(m)) for m in seen.marks]
    return {
        "timeline": timeline(bars, marks),
        "durations": per_iteration(_series(turns, "duration"), "seconds", "durations"),
        "costs": per_iteration(_series(turns, "cost_usd"), "USD", "costs"),
    }


def _series(turns: Iterable[Receipt], name: str) -> list[Series]:
    found = []
    for actor in ("galph", "ralph"):
        mine = [r for r in turns if r.actor == actor]
        values = [getattr(r, name) for r in mine]
        failed = [r.outcome == "fail" for r in mine]
        found.append(Series(actor, [r.iteration for r in mine], values, failed))
    return found


def _bar(n: int, r: Receipt, root: Path) -> Bar:
    seconds = r.duration or 0.0
    cost = "" if r.cost_usd is None else f", ${r.cost_usd:.4f}"
    lines = [
        f"i{r.iteration} {r.actor} {r.prompt or '-'} ({r.agent or '-'})",
        f"{r.result}, {seconds:.1f} s{cost}",
        *([r.reason] if r.reason else []),
        f"committed {_when(r.time)} {r.commit[:12]}",
    ]
    link = log_link(r.log, root)
    return Bar(r.actor, r.time - seconds, seconds, r.outcome, "\n".join(lines), f"turn-{n}", link)


def _bar_here(n: int, t: report_events.Turn, root: Path) -> Bar:
    lines = [
        f"i{t.iteration} {t.actor} {t.prompt or '-'} ({t.agent or '-'})",
        f"{t.result}, {t.duration:.1f} s, ended {_when(t.start + t.duration)}",
        *([t.reason] if t.reason else []),
        "no receipt in git: seen in this machine's events only",
    ]
    outcome = t.result.split(":", 1)[0]
    link = log_link(t.log, root)
    title = "\n".join(lines)
    return Bar(t.actor, t.start, t.duration, outcome, title, f"here-{n}", link, here_only=True)


def _span(n: int, p: report_events.Pause) -> Bar:
    title = f"{p.actor} paused ({p.kind}) until {_when(p.until)}: {p.reason}"
    return Bar(p.actor, p.since, p.until - p.since, "span", title, f"pause-{n}")


def _mark_title(m: report_events.Mark) -> str:
    what = "retried" if m.what == "retry" else "run error"
    where = f" i{m.iteration}" if m.iteration else ""
    return f"{what}{where} {m.actor or ''} at {_when(m.at)}: {m.reason}"


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _here(seen: report_events.Seen) -> dict[str, Any]:
    """The events' own table rows (pauses, retries, errors) and counts for the page."""
    pauses = [
        _row(p.since, p.actor, p.iteration, f"pause:{p.kind}", f"until {_when(p.until)}", p.reason)
        for p in seen.pauses
    ]
    marks = [_row(m.at, m.actor, m.iteration, m.what, "", m.reason) for m in seen.marks]
    rows = sorted(pauses + marks, key=lambda row: row["at"])
    return {"rows": rows[-MAX_PROBLEMS:], "total": len(rows), "turns": len(seen.turns),
            "malformed": seen.malformed}  # fmt: skip


def log_link(log: str | None, root: Path) -> str | None:
    """A ``file://`` link to a turn log that exists on this machine, else None.

    String paths, not ``Path.resolve``: this runs for every turn of a long history.
    """
    if not log:
        return None
    path = os.path.join(root, log)  # an absolute ``log`` stays as it is
    return Path(os.path.abspath(path)).as_uri() if os.path.isfile(path) else None


def _row(
    at: float, actor: str | None, iteration: int | None, what: str, detail: str, reason: str
) -> dict[str, Any]:
    return {"at": at, "when": _when(at), "actor": actor or "-", "iteration": iteration,
            "what": what, "detail": detail, "reason": reason}  # fmt: skip


def _problem(receipt: Receipt, root: Path) -> dict[str, Any]:
    """A failed or paused turn, from its receipt."""
    return _problem_row(
        receipt.iteration, receipt.actor, receipt.result, receipt.prompt, receipt.agent,
        receipt.reason or "", receipt.time, receipt.log, receipt.commit[:12], root,
    )  # fmt: skip


def _problem_here(turn: report_events.Turn, root: Path) -> dict[str, Any]:
    """A failed or paused turn with no receipt: seen in this machine's events only."""
    reason = (turn.reason or "") + " (no receipt: this machine's events only)"
    return _problem_row(
        turn.iteration, turn.actor, turn.result, turn.prompt, turn.agent, reason,
        turn.start + turn.duration, turn.log, None, root,
    )  # fmt: skip


def _problem_row(
    iteration: int | None, actor: str, result: str, prompt: str | None, agent: str | None,
    reason: str, at: float, log: str | None, commit: str | None, root: Path,
) -> dict[str, Any]:  # fmt: skip
    """One row of the failures table, whichever source it came from."""
    return {
        "iteration": iteration,
        "actor": actor,
        "result": result,
        "prompt": prompt or "-",
        "agent": agent or "-",
        "reason": reason,
        "at": at,
        "when": datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%MZ"),
        "log": log,
        "link": log_link(log, root),
        "commit": commit,
    }


def render(content: Page) -> str:
    """The HTML page: the template filled with ``content`` (its charts already SVG)."""
    try:
        import jinja2
    except ImportError:
        raise TandemError("tandem report needs Jinja2, which is not installed", INSTALL) from None
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tandem", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["money"] = _money
    return environment.get_template(TEMPLATE).render(page=content)


def _money(total: Total) -> str:
    """``$1.2345``, ``$0.50 (+3 turns without a cost)``, or ``no cost reported``."""
    if total.unpriced == total.turns:
        return "no cost reported"
    note = f" (+{total.unpriced} turns without a cost)" if total.unpriced else ""
    return f"${total.cost_usd:.4f}{note}"

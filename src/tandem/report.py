"""``tandem report``: one self-contained HTML page built from the receipts (SPEC §17).

The page carries its data as one JSON block and plotly.js (the bundle that ships inside
the plotly package) inline, so it opens with no network. The Python side only shapes the
data and fills a Jinja2 template; the charts are drawn in the browser, so 10,000 turns
cost the page a few megabytes of JSON, not a Python figure object per bar.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tandem.errors import TandemError
from tandem.ledger import Total, totals
from tandem.receipts import History, Receipt

TEMPLATE = "report.html.j2"
MAX_PROBLEMS = 500  # rows of the failures table: more makes the page slow to open
INSTALL = "install it with: pip install 'tandem[report]' (Jinja2 and plotly)"


@dataclass(frozen=True)
class Page:
    """What the template needs: the title, the numbers, and the rows of each table."""

    title: str
    built_at: str
    since: str | None
    turns: dict[str, list[Any]]  # columns, one entry per turn, for the charts
    by_actor: dict[str, Total]
    by_agent: dict[str, Total]
    by_prompt: dict[str, Total]
    problems: list[dict[str, Any]]  # failed and paused turns, the latest MAX_PROBLEMS
    problems_total: int
    malformed: list[str]
    overall: Total


def page(history: History, *, root: Path, title: str, since: str | None) -> Page:
    """Shape ``history`` for the page; log links only for logs that exist under ``root``."""
    turns = history.receipts
    overall = Total()
    for receipt in turns:
        overall.add(receipt)
    problems = [r for r in turns if r.outcome != "ok"]
    return Page(
        title=title,
        built_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        since=since,
        turns=columns(turns, root),
        by_actor=totals(turns, "actor"),
        by_agent=totals(turns, "agent"),
        by_prompt=totals(turns, "prompt"),
        problems=[_problem(r, root) for r in problems[-MAX_PROBLEMS:]],
        problems_total=len(problems),
        malformed=history.malformed,
        overall=overall,
    )


def columns(turns: Iterable[Receipt], root: Path) -> dict[str, list[Any]]:
    """One list per field, one entry per turn: compact JSON for thousands of turns."""
    found: dict[str, list[Any]] = {
        key: []
        for key in (
            "actor",
            "iteration",
            "outcome",
            "result",
            "prompt",
            "agent",
            "start",
            "ms",
            "cost",
            "tokens",
            "log",
            "commit",
        )
    }
    for r in turns:
        ms = round((r.duration or 0.0) * 1000)
        start = datetime.fromtimestamp(r.time - ms / 1000, timezone.utc)
        row = {
            "actor": r.actor,
            "iteration": r.iteration,
            "outcome": r.outcome,
            "result": r.result,
            "prompt": r.prompt or "-",
            "agent": r.agent or "-",
            "start": start.strftime("%Y-%m-%d %H:%M:%S"),
            "ms": ms,
            "cost": r.cost_usd,
            "tokens": r.tokens.total if r.tokens else None,
            "log": log_link(r.log, root),
            "commit": r.commit[:12],
        }
        for key, value in row.items():
            found[key].append(value)
    return found


def log_link(log: str | None, root: Path) -> str | None:
    """A ``file://`` link to a turn log that exists on this machine, else None."""
    if not log:
        return None
    path = Path(log) if Path(log).is_absolute() else root / log
    return path.resolve().as_uri() if path.is_file() else None


def _problem(receipt: Receipt, root: Path) -> dict[str, Any]:
    return {
        "iteration": receipt.iteration,
        "actor": receipt.actor,
        "result": receipt.result,
        "prompt": receipt.prompt or "-",
        "agent": receipt.agent or "-",
        "reason": receipt.reason or "",
        "when": datetime.fromtimestamp(receipt.time, timezone.utc).strftime("%Y-%m-%d %H:%MZ"),
        "log": receipt.log,
        "link": log_link(receipt.log, root),
        "commit": receipt.commit[:12],
    }


def render(content: Page) -> str:
    """The HTML page: the template filled with ``content`` and plotly.js inline."""
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
    template = environment.get_template(TEMPLATE)
    return template.render(page=content, plotly_js=plotly_bundle())


def plotly_bundle() -> str:
    """plotly.min.js as the plotly package ships it (read as a file, not imported)."""
    try:
        bundle = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
        return bundle.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        raise TandemError(
            "tandem report needs plotly's bundled plotly.js, which is not installed", INSTALL
        ) from None


def _money(total: Total) -> str:
    """``$1.2345``, ``$0.50 (+3 turns without a cost)``, or ``no cost reported``."""
    if total.unpriced == total.turns:
        return "no cost reported"
    note = f" (+{total.unpriced} turns without a cost)" if total.unpriced else ""
    return f"${total.cost_usd:.4f}{note}"

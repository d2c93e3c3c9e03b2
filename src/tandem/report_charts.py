"""The report's charts: drawn once by matplotlib's SVG backend, inlined as ``<svg>``.

The page carries no JavaScript: a browser only lays the SVG out, so a page of 10,000
turns opens in about a second, where plotly.js needed 1.5 s just to parse itself.
matplotlib draws the axes, dates, ticks and the bars (one collection per kind, one
element per turn); each element is given a placeholder link, which ``_label`` then turns
into an element with an id, a class and a ``<title>`` (the hover text, no script needed),
and a real link where the turn's log is on this machine.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from tandem.errors import TandemError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

INSTALL = "install it with: pip install 'tandem[report]' (Jinja2 and matplotlib)"
COLOURS = {"ok": "#2e9d55", "fail": "#d93025", "pause": "#f29900"}
LANES = {"galph": 1.0, "ralph": 0.0}
DPI = 72  # the SVG backend's unit is the point; at 72 dpi one point is one CSS pixel
WIDTH, PX_PER_TURN, MAX_WIDTH = 1150, 2.5, 24_000  # the timeline widens, then scrolls
_PLACEHOLDER = re.compile(r'<a xlink:href="#m(\d+)" target="_blank">(.*?)</a>', re.S)
_SIZE = re.compile(r'(<svg[^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"')


class Bar(NamedTuple):
    """One element of the timeline: a turn, or a pause span (a tuple: one per turn)."""

    actor: str
    start: float  # Unix seconds
    seconds: float
    outcome: str  # ok | fail | pause | span (a pause's wait)
    title: str  # the hover text
    element_id: str
    link: str | None = None  # a file:// link to the turn's log, when it is here
    here_only: bool = False  # known from this machine's events only, no receipt


@dataclass(frozen=True)
class Series:
    """One actor's value per iteration (None: not reported), for a line chart."""

    actor: str
    iterations: Sequence[int]
    values: Sequence[float | None]
    failed: Sequence[bool]


def timeline(bars: Sequence[Bar], marks: Sequence[tuple[str, float, str]]) -> str:
    """Turns per actor over time: colour = result, failures and pauses drawn taller,
    pause waits shaded, retries and run errors marked with an x; one element per bar."""
    figure, axes = _figure(_timeline_width(bars), 210)
    turns = [b for b in bars if b.outcome != "span"]
    labels: list[tuple[str, str, str, str | None]] = []
    if bars or marks:
        day = 86_400.0
        low = min([b.start for b in bars] + [at for _, at, _ in marks]) / day
        high = max([b.start + b.seconds for b in bars] + [at for _, at, _ in marks]) / day
        span = max(high - low, 1 / 1440)
        least = span * 2 / _timeline_width(bars)  # every bar at least two pixels wide
        groups: dict[tuple[str, bool], list[Bar]] = {}
        for bar in bars:
            groups.setdefault((bar.outcome, bar.here_only), []).append(bar)
        for (outcome, here_only), members in groups.items():
            _bars(axes, members, outcome, here_only, least, labels)
        axes.set_xlim(low - span * 0.01, high + span * 0.01)  # the marks are in view too
    if marks:  # one collection for all of them, one element (and title) each
        lanes = [LANES.get(what.split(":", 1)[-1], 0.5) + 0.42 for what, _, _ in marks]
        dots = axes.scatter([at / 86_400.0 for _, at, _ in marks], lanes, marker="x", s=30)
        dots.set_color("#5f2120")
        dots.set_urls([f"#m{len(labels) + n}" for n in range(len(marks))])
        labels += [("mark", f"mark-{n}", title, None) for n, (_, _, title) in enumerate(marks)]
    axes.set_yticks(list(LANES.values()), list(LANES))
    axes.set_ylim(-0.6, 1.6)
    if bars or marks:
        _dates(axes)
    else:
        axes.set_xticks([])  # no time to show: no made-up 1970 dates
    axes.set_xlabel("time (UTC)")
    axes.grid(axis="x", color="#eee")
    if not turns:
        axes.text(0.5, 0.5, "no turns", transform=axes.transAxes, ha="center", color="#888")
    return _label(_svg(figure), labels)


def per_iteration(series: Sequence[Series], unit: str, chart_id: str) -> str:
    """One line per actor over the iterations; failed turns as red dots on their line."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(WIDTH, 300)
    colours = {"galph": "#1f5fbf", "ralph": "#8e44ad"}
    drawn = False
    for s in series:
        shown = [(i, v, f) for i, v, f in zip(s.iterations, s.values, s.failed, strict=True)]
        if all(v is None for _, v, _ in shown):
            continue  # this actor's agent reports no such number
        values = [float("nan") if v is None else v for _, v, _ in shown]  # nan: a gap
        (line,) = axes.plot(s.iterations, values, color=colours[s.actor], lw=1, label=s.actor)
        line.set_gid(f"{chart_id}-{s.actor}")
        bad = [(i, v) for i, v, f in shown if f and v is not None]
        if bad:
            axes.scatter([i for i, _ in bad], [v for _, v in bad], s=12, color=COLOURS["fail"])
        drawn = True
    if drawn:
        axes.legend(loc="upper right", frameon=False)
    else:
        axes.text(0.5, 0.5, "nothing reported", transform=axes.transAxes, ha="center")
        axes.set_xticks([])
        axes.set_yticks([])
    axes.set_xlabel("iteration")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(unit)
    axes.grid(color="#eee")
    return _svg(figure)


def _bars(
    axes: Axes,
    bars: Sequence[Bar],
    outcome: str,
    here_only: bool,
    least: float,
    labels: list[tuple[str, str, str, str | None]],
) -> None:
    """One collection: a rectangle per bar, each with a placeholder link for ``_label``."""
    import numpy
    from matplotlib.collections import PolyCollection

    half = {"ok": 0.22, "span": 0.3}.get(outcome, 0.38)  # failures and pauses stand out
    first = len(labels)
    kind = ("pause-span" if outcome == "span" else f"turn {outcome}") + (
        " here-only" if here_only else ""
    )
    labels += [(kind, bar.element_id, bar.title, bar.link) for bar in bars]
    urls = [f"#m{n}" for n in range(first, len(labels))]
    starts = numpy.array([bar.start for bar in bars]) / 86_400.0
    ends = starts + numpy.maximum(numpy.array([bar.seconds for bar in bars]) / 86_400.0, least)
    lanes = numpy.array([LANES[bar.actor] for bar in bars])
    boxes = numpy.empty((len(bars), 4, 2))  # one array: matplotlib builds the paths at once
    boxes[:, :, 0] = numpy.stack([starts, ends, ends, starts], axis=1)
    boxes[:, :, 1] = numpy.stack([lanes - half, lanes - half, lanes + half, lanes + half], axis=1)
    colour = "#f6c26b" if outcome == "span" else COLOURS[outcome]
    drawn = PolyCollection(
        cast(Any, boxes),  # an (N, 4, 2) array is accepted, and the fast path; the stubs say list
        facecolors=colour,
        edgecolors="#333" if here_only else "none",
        linewidths=0.6 if here_only else 0,
        alpha=0.45 if outcome == "span" else 1.0,
        hatch="///" if here_only else None,
        zorder=1 if outcome == "span" else 2,
    )
    drawn.set_urls(urls)
    axes.add_collection(drawn)


def _dates(axes: Axes) -> None:
    """Dates on the x axis, labelled as briefly as the span allows (``03:10``, ``Dec 02``)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    most = max(8, int(axes.bbox.width / 90))
    locator = AutoDateLocator(minticks=4, maxticks=most)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _timeline_width(bars: Sequence[Bar]) -> int:
    return int(min(max(WIDTH, PX_PER_TURN * len(bars)), MAX_WIDTH))


def _figure(width: int, height: int) -> tuple[Any, Axes]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise TandemError(
            "tandem report needs matplotlib, which is not installed", INSTALL
        ) from None
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    figure.subplots_adjust(
        left=70 / width, right=1 - 20 / width, bottom=45 / height, top=1 - 12 / height
    )
    return figure, figure.add_subplot()


def _svg(figure: Any) -> str:
    """The figure as an ``<svg>`` element sized in CSS pixels, its text kept as text."""
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tandem", "font.size": 11}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    text = text[text.index("<svg") :]  # the element, without the XML prolog and doctype
    return _SIZE.sub(r'\1 class="chart-svg" width="\2px" height="\3px"', text, count=1)


def _label(svg: str, labels: Sequence[tuple[str, str, str, str | None]]) -> str:
    """Each placeholder link becomes the element it stands for: an id, a class, a title."""

    def element(found: re.Match[str]) -> str:
        kind, element_id, title, link = labels[int(found[1])]
        head = f'class="{kind}" id="{escape(element_id)}"><title>{escape(title)}</title>'
        if link:
            return f'<a href="{escape(link)}" {head}{found[2]}</a>'
        return f"<g {head}{found[2]}</g>"

    labelled, count = _PLACEHOLDER.subn(element, svg)
    if count != len(labels):  # matplotlib wrote its links differently: say so, loudly
        raise RuntimeError(f"{count} of {len(labels)} chart elements found in matplotlib's SVG")
    return labelled

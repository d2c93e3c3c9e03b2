"""Open a page in headless Chromium with no network, as a person's browser would show it."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

_CONSOLE = re.compile(r":CONSOLE[:(]\S*\]? ?(.*)")


@dataclass(frozen=True)
class Rendered:
    """The DOM after the page's scripts ran, and what the page said on its console."""

    dom: str
    console: list[str]


def chromium() -> str:
    """The Chromium binary (Debian's ``chromium`` package)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is needed: apt-get install chromium chromium-driver"
    return found


def render(page: Path, budget_ms: int = 20000) -> Rendered:
    """``page`` after its scripts ran (virtual time), with every request to the network refused."""
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--proxy-server=127.0.0.1:9",  # nothing listens there: any fetch would fail
            "--proxy-bypass-list=<-loopback>",
            f"--virtual-time-budget={budget_ms}",
            "--window-size=1280,2000",
            f"--user-data-dir={page.parent / '.chromium-profile'}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for m in map(_CONSOLE.search, done.stderr.splitlines()) if m]
    return Rendered(done.stdout, console)


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})


class _Counter(HTMLParser):
    """Counts elements with class ``wanted`` inside ``#within`` (and inside class ``layer``)."""

    def __init__(self, within: str, wanted: str, layer: str) -> None:
        super().__init__()
        self.within, self.wanted, self.layer = within, wanted, layer
        self.count = 0
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, inside #within, inside layer)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        parent = self._stack[-1] if self._stack else ("", False, False)
        inside = parent[1] or found.get("id") == self.within
        in_layer = parent[2] or (inside and (not self.layer or self.layer in classes))
        if inside and in_layer and self.wanted in classes:
            self.count += 1
        if tag not in _VOID:
            self._stack.append((tag, inside, in_layer))

    def handle_endtag(self, tag: str) -> None:
        if any(entry[0] == tag for entry in self._stack):
            while self._stack.pop()[0] != tag:
                pass


def count(dom: str, within: str, wanted: str, layer: str = "") -> int:
    """Elements of class ``wanted`` under ``#within`` (and under class ``layer`` there)."""
    counter = _Counter(within, wanted, layer)
    counter.feed(dom)
    return counter.count

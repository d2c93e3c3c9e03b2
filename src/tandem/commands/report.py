"""``tandem report``: write the HTML report of the loop's receipts (SPEC §17)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tandem import receipts, report_events
from tandem.commands.common import quiet_host
from tandem.errors import TandemError
from tandem.files import atomic_write
from tandem.report import page, render


def report(
    *,
    cwd: Path,
    output: str | None,
    since: str | None,
    config_path: str | None,
    overrides: Mapping[str, Any],
) -> int:
    """Read the receipts (after ``since`` when given) and this machine's events since then,
    write one HTML file, print its path.

    The default path is under the logs folder, which git ignores, so writing the report
    never leaves a dirty tree for the next turn to trip over.
    """
    host = quiet_host(cwd, config_path, overrides)
    repo = host.repo
    if repo is None:
        raise TandemError(
            f"{host.config.root} is not a git work tree, and the report reads git history",
            "run tandem report inside the host repository",
        )
    if since is not None and repo.rev_parse(since) is None:
        raise TandemError(
            f"--since {since}: no such commit here",
            "give a commit, tag or branch that exists (see git log --oneline)",
        )
    history = receipts.read(repo, f"{since}..HEAD" if since else "HEAD")
    root = host.config.root
    after = float(repo.git("log", "-1", "--format=%ct", since).text.strip()) if since else 0.0
    # a turn whose receipt is before --since is known, not this machine's alone
    known = receipts.read(repo, "HEAD").receipts if since else history.receipts
    seen = report_events.read(host.log.events_path, known, root=root, after=after)
    title = f"tandem report: {root.name}" + (f" ({host.branch})" if host.branch else "")
    content = page(history, seen, root=root, title=title, since=since)
    html = render(content)
    target = (cwd / output) if output else host.config.logs_dir / "report.html"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, html.encode("utf-8"))
    except OSError as exc:
        raise TandemError(
            f"cannot write {target}: {exc.strerror}", "pick another -o PATH"
        ) from None
    overall = content.overall
    skipped = f", {len(history.malformed)} unreadable receipts skipped" if history.malformed else ""
    if seen.malformed:
        skipped += f", {seen.malformed} unreadable event lines skipped"
    print(
        f"tandem: report: {target.resolve()} ({overall.turns} turns, {overall.failed} failed, "
        f"{overall.paused} paused{skipped})"
    )
    return 0

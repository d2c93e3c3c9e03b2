"""``tandem`` command line: argparse and dispatch, inside the one error handler.

This module only parses and dispatches; each subcommand is a function in ``commands/``
that takes keyword arguments and returns an exit code. Heavy modules load lazily so
``tandem --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from tandem import __version__, readers
from tandem.error_handler import handled
from tandem.errors import UsageError
from tandem.options import add_flags, argparse_type

_DESCRIPTION = """\
Run a supervisor agent (galph) and an engineer agent (ralph) in turns over one git
repository. Whose turn is next lives in sync/state.json; each turn feeds one prompt file
to an agent CLI (claude, codex, gemini, opencode, dry-run, or any command)."""

_EPILOG = """\
exit codes: 0 done (or stopped on request), 1 a turn failed or a user error,
2 usage error, 130 interrupted, 3 internal error (a crash log is written).
Start with `tandem demo` (offline, spends nothing) or `tandem init` in your project."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) and did-you-mean for flags."""

    def error(self, message: str) -> NoReturn:
        import re

        # "argument --agent-role: takes ..." reads better as "--agent-role takes ..."
        message = re.sub(r"^argument (--[\w-]+): (?!invalid|expected)", r"\1 ", message)
        if message.startswith("unrecognized arguments:"):
            message += _flag_hint(self, message.split(":", 1)[1].split())
        raise UsageError(message, f"see `{self.prog} --help`")


def _flag_hint(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    import difflib

    known = [opt for action in parser._actions for opt in action.option_strings]
    for sub in parser._actions:
        if isinstance(sub, argparse._SubParsersAction):
            for child in sub.choices.values():
                known += [o for a in child._actions for o in a.option_strings]
    for word in unknown:
        close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.7)
        if close:
            return f" (did you mean {close[0]}?)"
    return ""


# A count or an iteration number, read as the option table reads --iterations.
_count = argparse_type(readers.iterations)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="orchestration.yaml to use")
    add_flags(parser, only=("state_file", "logs_dir"))


def _add_run_flags(parser: argparse.ArgumentParser, *, with_mode: bool) -> None:
    """The flags of run/supervisor/loop (``tandem.options``); each beats its config key."""
    parser.add_argument("--config", metavar="PATH", help="orchestration.yaml to use")
    add_flags(parser, with_mode=with_mode)
    parser.epilog = (
        "The flags and environment variables of the earlier orchestration scripts work too "
        "(README: Coming from the orchestration scripts); `tandem config --explain` shows "
        "what a run would use and where each value came from."
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(
        prog="tandem",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tandem {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subs.required = True

    run = subs.add_parser("run", help="run turns (combined mode, or one role with --mode role)")
    _add_run_flags(run, with_mode=True)
    for name, actor in (("supervisor", "galph"), ("loop", "ralph")):
        role = subs.add_parser(name, help=f"role mode as {actor}")
        _add_run_flags(role, with_mode=False)
        role.set_defaults(mode="role", role=actor)

    route = subs.add_parser("route", help="print the prompt the next turn would run")
    route.add_argument("--actor", help="ask for this actor (default: whose turn it is)")
    route.add_argument("--explain", action="store_true", help="add the reason")
    route.add_argument("--json", action="store_true", help="print the decision object")
    _add_common(route)

    status = subs.add_parser("status", help="whose turn, lease, last failure, last turns")
    status.add_argument("--json", action="store_true")
    status.add_argument("-n", type=_count, default=5, metavar="N", help="turns to show")
    status.add_argument("--no-fetch", action="store_true", help="do not ask the remote")
    status.add_argument("--remote", help="remote to ask (default: origin)")
    status.add_argument("--branch", help="branch to ask about (default: current)")
    _add_common(status)

    logs = subs.add_parser("logs", help="the last iterations' turn logs")
    logs.add_argument(
        "branch", nargs="?", help="whose logs (logs/<branch>; default: the current branch)"
    )
    logs.add_argument("-n", "--count", type=_count, default=1, metavar="N", help="iterations")
    logs.add_argument("--actor", help="only this actor's logs")
    logs.add_argument("--roles", metavar="A,B", help="only these actors' logs (galph,ralph)")
    logs.add_argument("--min-iter", type=_count, metavar="N", help="from iteration N")
    logs.add_argument("--max-iter", type=_count, metavar="N", help="up to iteration N")
    logs.add_argument("--format", choices=("text", "xml"), default="text")
    logs.add_argument(
        "--source",
        choices=("logs", "summaries"),
        default="logs",
        help="turn logs, or the iter-*-summary.md files of <actor>-summaries/",
    )
    listing = logs.add_mutually_exclusive_group()
    listing.add_argument(
        "--ls-paths",
        metavar="A,B",
        help="with --format xml: list the files under these folders at each log's commit",
    )
    listing.add_argument("--no-ls", action="store_true", help="no file listings (the default)")
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="the running turn's log as it grows, then the next",
    )
    _add_common(logs)

    stamp = subs.add_parser("stamp", help="record a turn's result by hand (recover or skip)")
    stamp.add_argument("actor", help="galph|ralph")
    stamp.add_argument("result", choices=("ok", "fail"))
    stamp.add_argument("--reason", default=None, help="failure reason (with fail)")
    stamp.add_argument("--force", action="store_true", help="even when it is not that turn")
    stamp.add_argument("--sync-via-git", action="store_true", help="pull first and push after")
    stamp.add_argument("--no-pull", action="store_true", help="with --sync-via-git: no fetch")
    stamp.add_argument("--no-push", action="store_true", help="with --sync-via-git: no push")
    stamp.add_argument("--allow-dirty", action="store_true", help="stamp with a dirty tree")
    stamp.add_argument("--remote", help="remote (default: origin)")
    stamp.add_argument("--branch", help="branch (default: current)")
    _add_common(stamp)

    stop = subs.add_parser("stop", help="ask a running loop to stop at its next check point")
    stop.add_argument("--reason", default="stop requested with tandem stop")
    stop.add_argument("--sync-via-git", action="store_true", help="commit and push the request")
    stop.add_argument("--remote", help="remote (default: origin)")
    stop.add_argument("--branch", help="branch (default: current)")
    _add_common(stop)

    watch = subs.add_parser("watch", help="a live view of the loop (q quits)")
    watch.add_argument(
        "--remote",
        action="store_true",
        help="watch the remote branch (from another clone)",
    )
    watch.add_argument("--remote-name", metavar="NAME", help="remote to watch (default: origin)")
    watch.add_argument("--branch", help="branch to watch (default: current)")
    watch.add_argument(
        "--interval",
        type=argparse_type(readers.seconds),
        default=1.0,
        metavar="SECS",
        help="refresh period",
    )
    _add_common(watch)

    report = subs.add_parser("report", help="write an HTML report of the turns (receipts in git)")
    report.add_argument("-o", "--output", metavar="PATH", help="file (default: logs/report.html)")
    report.add_argument("--since", metavar="REV", help="only turns after this commit")
    _add_common(report)

    init = subs.add_parser("init", help="create the config, prompts and state (never overwrites)")
    init.add_argument("--agent", default=None, help="agent.default to write into the config")
    init.add_argument(
        "--shim",
        action="store_true",
        help="write scripts/orchestration/ so the earlier scripts' commands run tandem",
    )

    explain = subs.add_parser("config", help="the effective configuration and its sources")
    explain.add_argument("--explain", action="store_true", help="the source of every value")
    _add_run_flags(explain, with_mode=True)

    demo = subs.add_parser("demo", help="make a demo host repo and run a real loop, offline")
    demo.add_argument("path", nargs="?", default=None, help="where (default: a new temp dir)")
    demo.add_argument("--iterations", type=_count, default=3, metavar="N")
    demo.add_argument("--quiet", action="store_true", help="less output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, dispatch, and map every outcome to an exit code."""
    cwd = Path.cwd()
    with handled(cwd) as outcome:
        args = build_parser().parse_args(argv)
        outcome.append(_dispatch(args, cwd))
    return outcome[-1]


def _dispatch(args: argparse.Namespace, cwd: Path) -> int:
    command = args.command
    if command in ("run", "supervisor", "loop"):
        from tandem.commands.run import run, run_options

        return run(cwd=cwd, options=run_options(args, cwd, os.environ))
    if command == "config":
        from tandem.commands.config import explain
        from tandem.commands.run import run_options

        return explain(cwd=cwd, options=run_options(args, cwd, os.environ), sources=args.explain)
    if command == "route":
        from tandem.commands.route import route

        return route(
            cwd=cwd, actor=args.actor, explain=args.explain, as_json=args.json, **_paths(args, cwd)
        )
    if command == "status":
        from tandem.commands.status import status

        return status(
            cwd=cwd,
            as_json=args.json,
            turns=args.n,
            fetch=not args.no_fetch,
            remote=args.remote,
            branch=args.branch,
            **_paths(args, cwd),
        )
    if command == "logs":
        from tandem.commands.logs import Pick, logs

        return logs(
            cwd=cwd,
            iterations=args.count,
            actor=args.actor,
            fmt=args.format,
            follow=args.follow,
            pick=Pick(
                branch=args.branch,
                roles=args.roles,
                min_iter=args.min_iter,
                max_iter=args.max_iter,
                source=args.source,
                ls_paths=None if args.no_ls else args.ls_paths,
            ),
            **_paths(args, cwd),
        )
    if command == "stamp":
        from tandem.commands.stamp import stamp

        return stamp(
            cwd=cwd,
            actor=args.actor,
            ok=args.result == "ok",
            reason=args.reason,
            force=args.force,
            sync=args.sync_via_git,
            pull=not args.no_pull,
            push=not args.no_push,
            allow_dirty=args.allow_dirty,
            remote=args.remote,
            branch=args.branch,
            **_paths(args, cwd),
        )
    if command == "stop":
        from tandem.commands.stop import stop

        return stop(
            cwd=cwd,
            reason=args.reason,
            sync=args.sync_via_git,
            remote=args.remote,
            branch=args.branch,
            **_paths(args, cwd),
        )
    if command == "watch":
        from tandem.commands.watch import watch

        return watch(
            cwd=cwd,
            remote=args.remote,
            remote_name=args.remote_name,
            branch=args.branch,
            interval=max(args.interval, 0.1),
            **_paths(args, cwd),
        )
    if command == "report":
        from tandem.commands.report import report

        return report(cwd=cwd, output=args.output, since=args.since, **_paths(args, cwd))
    if command == "init":
        from tandem.commands.init import init

        return init(cwd=cwd, agent=args.agent, shim=args.shim)
    from tandem.commands.demo import demo

    return demo(cwd=cwd, path=args.path, iterations=args.iterations, quiet=args.quiet)


def _paths(args: argparse.Namespace, cwd: Path) -> dict[str, Any]:
    from tandem.commands.common import path_overrides

    return {
        "config_path": args.config,
        "overrides": path_overrides(args.state_file, args.logdir, cwd),
    }

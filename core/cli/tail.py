"""``mltop tail RUN|FILE``: a run's logs (or one log file) printed, or followed with ``-f``.

The printing and following are mltop.core.logs.logtail's; this module finds the files a RUN means.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from rich.text import Text

from mltop.core.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    Parser,
    UsageError,
    candidates,
    open_store_for,
    print_problems,
    resolve_root,
    stderr_console,
)
from mltop.core.cli.sources import ingest_with_progress

_TAIL_DESCRIPTION = """\
Print a run's console and log files, or one log file, highlighted as in the Logs screen.

RUN is a run name or id prefix (its logs: output.log, *.log, *.out, *.err of the run), or the path
of a log file. Colours only on a terminal and never with NO_COLOR set; escape sequences from the
log are neutralised either way. With --follow, new lines print as they are written (Ctrl-C stops)
across log rotation and truncation."""


def cmd_tail(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    from mltop.core.logs.logmodel import LineMatcher, PatternError
    from mltop.core.logs.logtail import TailOptions, tail_files, use_colour

    parser = Parser(
        prog="mltop tail",
        description=_TAIL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN|FILE", help="run name, id prefix, or log file")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    parser.add_argument("--grep", "-g", metavar="REGEX", help="only lines matching REGEX")
    parser.add_argument("--invert-match", "-v", action="store_true", help="only lines not matching")
    parser.add_argument(
        "--lines",
        "-n",
        type=int,
        metavar="N",
        help="start at the last N lines (default: all; with --follow, the last 10, as tail -f)",
    )
    parser.add_argument("--no-timestamps", action="store_true", help="hide leading timestamps")
    parser.add_argument("--root", "-C", default=".", help="folder with the runs (default: .)")
    parser.add_argument("--store", help="store file (default: ROOT/.mltop/store.duckdb)")
    args = parser.parse_args(argv)
    matcher = None
    if args.grep is not None:
        try:
            matcher = LineMatcher(args.grep, invert=args.invert_match)
        except PatternError as exc:
            raise UsageError(f"mltop tail: --grep: {exc}") from exc
    err = stderr_console()
    target = Path(args.run).expanduser()
    if target.is_file():
        paths = [target]
    else:
        root = resolve_root(args.root)
        with open_store_for(root, args.store, err) as store:
            report = ingest_with_progress(root, store, err, show_progress=err.is_terminal)
            found = store.find_runs(args.run) if args.run.strip() else []
            if len(found) != 1:
                what = "no run named" if not found else f"{len(found)} runs match"
                hint = f": {candidates(found)}" if found else " (and no such log file)"
                raise UsageError(f"mltop tail: {what} {' '.join(args.run.split())!r}{hint}")
            run = found[0]
            paths = [Path(log.path) for log in store.logs(run.id)]
        print_problems(report, err)
        if not paths:
            err.print(Text(f"mltop tail: run {run.name!r} ({run.id[:8]}) has no log files"))
            return EXIT_PROBLEMS
    out = out_file or sys.stdout
    options = TailOptions(
        follow=args.follow,
        last=args.lines if args.lines is not None else (10 if args.follow else None),
        matcher=matcher,
        hide_timestamps=args.no_timestamps,
        colour=use_colour(out),
    )
    try:
        problems = tail_files(paths, out, sys.stderr, options)
    except KeyboardInterrupt:
        return EXIT_OK  # the way to stop following
    return EXIT_PROBLEMS if problems else EXIT_OK

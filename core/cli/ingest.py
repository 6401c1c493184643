"""``mltop ingest [PATH]``: import the runs under PATH (and of MLflow servers) into the store.

It prints what each kind of source added and the store's totals, so a scheduled import leaves a
one-screen record; unreadable files are problem lines on stderr and exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from mltop.core.cli.output import (
    Parser,
    open_store_for,
    problems_exit,
    resolve_root,
    stderr_console,
    stdout_console,
)
from mltop.core.cli.sources import (
    add_source_options,
    file_scope,
    import_sources,
    mlflow_urls,
)
from mltop.core.common.sanitize import inert


def cmd_ingest(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="mltop ingest",
        description="Import the runs found under PATH (and of MLflow tracking servers, with "
        "their full metric histories).",
    )
    parser.add_argument("path", nargs="?", default=".")
    add_source_options(parser)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    err = stderr_console()
    out = stdout_console()
    root, _ = file_scope(root, err)
    with open_store_for(root, args.store, err) as store:
        report = import_sources(
            root, store, err, urls, timeout=args.timeout, histories=True,
            show_progress=err.is_terminal,
        )  # fmt: skip
        counts = store.table_counts()
    table = Table(box=None, pad_edge=False, show_edge=False)
    table.add_column("source")
    table.add_column("runs added", justify="right")
    table.add_column("points added", justify="right")
    for kind, count in sorted(report.counts.items()):
        table.add_row(Text(inert(kind)), f"{count.runs:,}", f"{count.points:,}")
    if report.counts:
        out.print(table)
    out.print(
        f"{report.sources_seen:,} sources, {counts['runs']:,} runs, "
        f"{counts['metrics']:,} points in the store"
        + (f", {report.removed_runs} runs removed" if report.removed_runs else "")
        + (f", {len(report.problems)} problem files" if report.problems else "")
    )
    return problems_exit(report, err)

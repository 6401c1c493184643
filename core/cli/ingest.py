"""``mltop ingest [PATH]``: import the runs under PATH (and of MLflow servers) into the store.

It prints what each kind of source added and the store's totals, so a scheduled import leaves a
one-screen record; unreadable files are problem lines on stderr and exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from mltop.core.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    Parser,
    open_store_for,
    print_problems,
    resolve_root,
    stderr_console,
    stdout_console,
    store_root,
)
from mltop.core.cli.sources import (
    MLFLOW_HELP,
    TIMEOUT_HELP,
    file_scope,
    ingest_with_progress,
    mlflow_urls,
    sync_servers,
    timeout_seconds,
)
from mltop.core.common.sanitize import inert


def cmd_ingest(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="mltop ingest",
        description="Import the runs found under PATH (and of MLflow tracking servers, with "
        "their full metric histories).",
    )
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--store", help="store file (default: PATH/.mltop/store.duckdb)")
    parser.add_argument("--mlflow", action="append", metavar="URL", help=MLFLOW_HELP)
    parser.add_argument("--timeout", type=timeout_seconds, metavar="SECONDS", help=TIMEOUT_HELP)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    err = stderr_console()
    out = stdout_console()
    root, _ = file_scope(root, err)
    with open_store_for(store_root(root), args.store, err) as store:
        report = ingest_with_progress(root, store, err, show_progress=err.is_terminal)
        sync_servers(
            urls, store, report, err, histories=True, show_progress=err.is_terminal,
            timeout=args.timeout,
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
    print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK

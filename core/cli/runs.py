"""``mltop runs [PATH]``: the runs table (or JSON) for shells, pipes and CI.

It imports what changed first, so the listing is never staler than the files (unless the app
or its watcher did so seconds ago: see :func:`~mltop.core.cli.sources.scan_wanted`); filters
and sort keys are the TUI's, and a piped table keeps every column whole. Runs are read from the
store a batch at a time: JSON goes out as they come, the table once its widths are known.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from mltop.core.cli.output import (
    EXIT_OK,
    EXIT_PROBLEMS,
    Parser,
    UsageError,
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
    add_scan_option,
    file_scope,
    ingest_with_progress,
    mlflow_urls,
    scan_wanted,
    sync_servers,
    timeout_seconds,
)
from mltop.core.common.formatting import fmt_iso
from mltop.core.common.sanitize import inert, inert_json_indented
from mltop.core.compare.diff_format import json_number
from mltop.core.entities import ImportReport, Run
from mltop.core.runs.runs_listing import ColumnError, build_listing, left_out_note
from mltop.core.store import RunQuery, Store


def _compile_filter(text: str | None) -> RunQuery:
    if not text or not text.strip():
        return RunQuery()
    from mltop.core.runs import query

    try:
        return query.compile_query(text)
    except query.QueryError as exc:
        raise UsageError(f"mltop: bad filter\n{query.format_error(text, exc)}") from exc


def _parse_sort(sort: str | None) -> tuple[str, bool]:
    if not sort:
        return "start", True
    if sort.startswith("-"):
        return sort[1:], True
    if sort.startswith("+"):
        return sort[1:], False
    # Attributes read naturally ascending except time; metrics and params ascending.
    return sort, sort in ("start", "end", "duration")


def run_json(run: Run, params: dict[str, str], metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "experiment": run.experiment,
        "source": run.source_kind,
        "location": run.location,
        "start": fmt_iso(run.start_time),
        "end": fmt_iso(run.end_time),
        "duration": run.duration,
        "parent_id": run.parent_id,
        "git_commit": run.git_commit,
        "lifecycle": run.lifecycle,
        "params": params,
        "metrics": {k: json_number(s.last) for k, s in metrics.items()},
    }


def cmd_runs(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = Parser(prog="mltop runs", description="Print the runs found under PATH.")
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--filter", "-f", dest="filter", help="filter expression")
    parser.add_argument(
        "--sort",
        help="name, start, duration, status, metrics.KEY, params.KEY (--sort=-KEY: descending)",
    )
    parser.add_argument("--desc", action="store_true", help="sort descending")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--columns",
        help="comma-separated table columns: name, status, experiment, source, start, duration, "
        "params.KEY, metrics.KEY (default: in a terminal, the ones that fit; piped, all)",
    )
    parser.add_argument("--limit", type=int, help="at most this many runs")
    parser.add_argument("--store", help="store file (default: PATH/.mltop/store.duckdb)")
    parser.add_argument(
        "--mlflow",
        action="append",
        metavar="URL",
        help=MLFLOW_HELP + "; only latest metric values are fetched (`mltop ingest --mlflow` "
        "fetches full histories)",
    )
    parser.add_argument("--timeout", type=timeout_seconds, metavar="SECONDS", help=TIMEOUT_HELP)
    add_scan_option(parser)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    query = _compile_filter(args.filter)
    order, descending = _parse_sort(args.sort)
    descending = descending or args.desc
    err = stderr_console()
    root, scope = file_scope(root, err)
    query = scope.and_(query)
    with open_store_for(store_root(root), args.store, err) as store:
        show_progress = err.is_terminal and not args.json
        if scan_wanted(root, store, args.scan, err):
            report = ingest_with_progress(root, store, err, show_progress=show_progress)
        else:
            report = ImportReport()
        sync_servers(
            urls, store, report, err, histories=False, show_progress=show_progress,
            timeout=args.timeout,
        )  # fmt: skip
        batches = store.runs_in_batches(query, order=order, descending=descending, limit=args.limit)
        try:
            first = next(batches, [])
        except ValueError as exc:
            raise UsageError(f"mltop: {exc}") from exc
        from mltop.core.runs.query import unknown_metric_warnings

        for line in unknown_metric_warnings(args.filter, args.sort, store.metric_keys()):
            err.print(Text(f"mltop: {inert(line)}"))
        stream = out_file or sys.stdout
        if args.json:
            _write_json(stream, store, itertools.chain([first], batches))
        else:
            _write_table(stream, out_file, store, itertools.chain([first], batches), args, err)
    print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK


def _write_json(stream: TextIO, store: Store, batches: Iterable[list[Run]]) -> None:
    """The JSON list a batch of runs at a time: the same text as dumping the whole list with
    ``indent=2``, without holding fifty thousand runs' objects to build it."""
    opened = False
    for runs in batches:
        if not runs:
            continue
        ids = [r.id for r in runs]
        params, metrics = store.params_for(ids), store.summaries(ids)
        items = [inert_json_indented(run_json(r, params[r.id], metrics[r.id]), "  ") for r in runs]
        stream.write(("[\n  " if not opened else ",\n  ") + ",\n  ".join(items))
        opened = True
    stream.write("\n]\n" if opened else "[]\n")


def _write_table(
    stream: TextIO,
    out_file: TextIO | None,
    store: Store,
    batches: Iterable[list[Run]],
    args: argparse.Namespace,
    err: Console,
) -> None:
    """The table: every row is needed for the columns' widths, then lines are written as
    text (a rich ``Table`` of fifty thousand rows costs seconds)."""
    runs: list[Run] = []
    params: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for batch in batches:
        ids = [r.id for r in batch]
        runs += batch
        params.update(store.params_for(ids))
        metrics.update(store.summaries(ids))
    out = stdout_console(out_file)
    chosen = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    terminal = out.is_terminal and chosen is None
    try:
        listing = build_listing(
            runs, params, metrics, width=out.width if terminal else None, chosen=chosen
        )
    except ColumnError as exc:
        raise UsageError(f"mltop: {exc}") from exc
    if out.is_terminal:
        out.print(Text(listing.header_line(), style="bold"), soft_wrap=True)
    else:
        stream.write(listing.header_line() + "\n")
    for line in listing.lines():
        stream.write(line + "\n")
    stream.write(f"{len(runs)} runs\n")
    if listing.left_out:
        err.print(Text(left_out_note(listing, out.width), style="dim"))

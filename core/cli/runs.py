"""``mltop runs [PATH]``: the runs table (or JSON) for shells, pipes and CI.

It imports what changed first, so the listing is never staler than the files (unless the app
or its watcher did so seconds ago: see :func:`~mltop.core.cli.sources.scan_wanted`); filters
and sort keys are the TUI's, and a piped table keeps every column whole. Runs stream out of the
store as Arrow batches and are written as they come: the table's widths are chosen up front
(core/runs/runs_listing.py), so fifty thousand rows start printing at once.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TextIO

import pyarrow as pa
from rich.console import Console
from rich.text import Text

from mltop.core.cli.output import (
    Parser,
    UsageError,
    open_store_for,
    problems_exit,
    resolve_root,
    stderr_console,
    stdout_console,
    store_root,
)
from mltop.core.cli.sources import (
    MLFLOW_HELP,
    add_scan_option,
    add_source_options,
    file_scope,
    import_sources,
    mlflow_urls,
    scan_wanted,
)
from mltop.core.common.formatting import MAX_TIME, MIN_TIME, fmt_iso
from mltop.core.common.sanitize import inert, inert_json_indented
from mltop.core.compare.diff_format import json_number
from mltop.core.runs.runs_listing import (
    ATTRIBUTE_SOURCES,
    ColumnError,
    build_listing,
    day_and_year,
    left_out_note,
    listing_query,
)
from mltop.core.store import RunQuery, RunsSelection, Store, parse_order

#: Run attributes the table may print (name comes with every row).
TABLE_ATTRIBUTES = list(ATTRIBUTE_SOURCES.values())


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


#: Run attributes ``--json`` writes (besides id, name and parent_id, always there).
JSON_ATTRIBUTES = [
    "status", "experiment", "source_kind", "location", "start_time", "end_time",
    "run_duration", "git_commit", "lifecycle",
]  # fmt: skip


def _json_items(batch: pa.RecordBatch) -> list[str]:
    """Each run of ``batch`` as its indented JSON object (the text of ``inert_json(indent=2)``)."""
    col = {name: batch.column(name).to_pylist() for name in batch.schema.names}
    items = []
    for i, run_id in enumerate(col["id"]):
        params = dict(zip(col["param_keys"][i] or (), col["param_values"][i] or (), strict=True))
        metrics = zip(col["metric_keys"][i] or (), col["metric_lasts"][i] or (), strict=True)
        run = {
            "id": run_id,
            "name": col["name"][i],
            "status": col["status"][i],
            "experiment": col["experiment"][i],
            "source": col["source_kind"][i],
            "location": col["location"][i],
            "start": fmt_iso(col["start_time"][i]),
            "end": fmt_iso(col["end_time"][i]),
            "duration": col["run_duration"][i],
            "parent_id": col["parent_id"][i],
            "git_commit": col["git_commit"][i],
            "lifecycle": col["lifecycle"][i],
            "params": params,
            "metrics": {k: json_number(v) for k, v in metrics},
        }
        items.append(inert_json_indented(run, "  "))
    return items


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
    add_source_options(
        parser,
        mlflow_help=MLFLOW_HELP + "; only latest metric values are fetched (`mltop ingest "
        "--mlflow` fetches full histories)",
    )
    add_scan_option(parser)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    query = _compile_filter(args.filter)
    order_text, descending = _parse_sort(args.sort)
    descending = descending or args.desc
    err = stderr_console()
    root, scope = file_scope(root, err)
    query = scope.and_(query)
    with open_store_for(store_root(root), args.store, err) as store:
        show_progress = err.is_terminal and not args.json
        report = import_sources(
            root, store, err, urls, timeout=args.timeout, histories=False,
            show_progress=show_progress, scan=scan_wanted(root, store, args.scan, err),
        )  # fmt: skip
        from mltop.core.runs.query import unknown_metric_warnings

        try:
            order = parse_order(order_text)
        except ValueError as exc:
            raise UsageError(f"mltop: {exc}") from exc
        for line in unknown_metric_warnings(args.filter, args.sort, store.metric_keys()):
            err.print(Text(f"mltop: {inert(line)}"))
        stream = out_file or sys.stdout
        selection = RunsSelection(
            query, order=order, descending=descending, limit=args.limit,
            valid_times=(MIN_TIME, MAX_TIME),
        )  # fmt: skip
        if args.json:
            json_rows = replace(selection, attributes=JSON_ATTRIBUTES, every_value=True)
            _write_json(stream, store.runs_table_batches(json_rows))
        else:
            _write_table(stream, out_file, store, selection, args, err)
    return problems_exit(report, err)


def _write_json(stream: TextIO, batches: Iterable[pa.RecordBatch]) -> None:
    """The JSON list a batch of runs at a time: the same text as dumping the whole list with
    ``indent=2``, without holding fifty thousand runs' objects to build it."""
    opened = False
    for batch in batches:
        if not batch.num_rows:
            continue
        stream.write(("[\n  " if not opened else ",\n  ") + ",\n  ".join(_json_items(batch)))
        opened = True
    stream.write("\n]\n" if opened else "[]\n")


def _write_table(
    stream: TextIO,
    out_file: TextIO | None,
    store: Store,
    selection: RunsSelection,
    args: argparse.Namespace,
    err: Console,
) -> None:
    """The table, printed as the rows stream out of the store: the columns are chosen and
    sized from the store's statistics of the listed runs and the first batch of them."""
    now = time.time()
    day, year = day_and_year(now)
    stats = store.listing_stats(selection, day=day, year=year)
    out = stdout_console(out_file)
    chosen = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    terminal = out.is_terminal and chosen is None
    try:
        params, metrics = listing_query(stats, chosen)
    except ColumnError as exc:
        raise UsageError(f"mltop: {exc}") from exc
    columns = replace(selection, attributes=TABLE_ATTRIBUTES, params=params,
                   metrics=[(k, "last") for k in metrics])  # fmt: skip
    batches = store.runs_table_batches(columns)
    first = next(batches)
    listing = build_listing(stats, first, now=now, width=out.width if terminal else None,
                            chosen=chosen)  # fmt: skip
    if out.is_terminal:
        out.print(Text(listing.header_line(), style="bold"), soft_wrap=True)
    else:
        stream.write(listing.header_line() + "\n")
    rows = 0
    for batch in itertools.chain([first], batches):
        if batch.num_rows:
            stream.write("\n".join(listing.lines(batch)) + "\n")
            rows += batch.num_rows
    stream.write(f"{rows} runs\n")
    if listing.left_out:
        err.print(Text(left_out_note(listing, out.width), style="dim"))

"""``mltop runs [PATH]``: the runs table (or JSON) for shells, pipes and CI.

It imports what changed first, so the listing is never staler than the files; filters and sort
keys are the TUI's, and a piped table keeps every column whole.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
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
    file_scope,
    ingest_with_progress,
    mlflow_urls,
    sync_servers,
    timeout_seconds,
)
from mltop.core.common.formatting import fmt_iso
from mltop.core.common.sanitize import inert, inert_json
from mltop.core.compare.diff_format import json_number
from mltop.core.entities import Run
from mltop.core.runs.runs_listing import ColumnError, build_listing, left_out_note
from mltop.core.store import RunQuery


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
        report = ingest_with_progress(root, store, err, show_progress=show_progress)
        sync_servers(
            urls, store, report, err, histories=False, show_progress=show_progress,
            timeout=args.timeout,
        )  # fmt: skip
        try:
            runs = store.runs(query, order=order, descending=descending, limit=args.limit)
        except ValueError as exc:
            raise UsageError(f"mltop: {exc}") from exc
        ids = [r.id for r in runs]
        params = store.params_for(ids)
        metrics = store.summaries(ids)
        known_metrics = store.metric_keys()
    from mltop.core.runs.query import unknown_metric_warnings

    for line in unknown_metric_warnings(args.filter, args.sort, known_metrics):
        err.print(Text(f"mltop: {inert(line)}"))
    out = stdout_console(out_file)
    if args.json:
        data = [run_json(r, params[r.id], metrics[r.id]) for r in runs]
        (out_file or sys.stdout).write(inert_json(data, indent=2, allow_nan=False) + "\n")
    else:
        chosen = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
        terminal = out.is_terminal and chosen is None
        try:
            listing = build_listing(
                runs, params, metrics, width=out.width if terminal else None, chosen=chosen
            )
        except ColumnError as exc:
            raise UsageError(f"mltop: {exc}") from exc
        if listing.width > out.width and not terminal:
            # Every column whole, however wide: never let the console squeeze a number.
            out = Console(file=out_file, highlight=False, soft_wrap=False, width=listing.width)
        out.print(listing.table())
        out.print(f"{len(runs)} runs")
        if listing.left_out:
            err.print(Text(left_out_note(listing, out.width), style="dim"))
    print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK

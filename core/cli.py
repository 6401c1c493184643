"""The ``mltop`` command line.

``mltop [PATH]`` opens the TUI; the subcommands print tables or JSON for shells, pipes and CI.
Exit codes: 0 ok, 1 problems found (unreadable files, a failed gate), 2 usage errors.
The TUI is imported only by the commands that open it, so scripted use never loads Textual.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mltop.core import __version__
from mltop.core.diff import GATE_HELP, GateError, check_gates, compare_runs, parse_gates
from mltop.core.diff_format import render_json, render_markdown, render_table
from mltop.core.directions import load_directions
from mltop.core.discovery import discover, ingest
from mltop.core.entities import ImportReport, Run
from mltop.core.formatting import fmt_iso
from mltop.core.malloc import limit_malloc_arenas
from mltop.core.runs_listing import ColumnError, build_listing, left_out_note
from mltop.core.sanitize import inert, inert_json
from mltop.core.store import RunQuery, Store, StoreError, open_store

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

USAGE = """\
usage: mltop [PATH] [--store FILE] [--mlflow URL] [--github OWNER/REPO]
                                            open the TUI on PATH (default: .)
       mltop ingest [PATH] [--mlflow URL]   import the runs under PATH (and of an MLflow
                                            tracking server) into the store
       mltop runs [PATH] [--filter EXPR] [--sort KEY] [--json] [--mlflow URL]
                                            print the runs table
       mltop diff RUN RUN [RUN ...] [-C PATH] [--baseline RUN] [--only-changed]
                  [--metrics REGEX] [--format table|json|md] [--fail-on THRESHOLDS]
                                            compare runs' params and metrics against a
                                            baseline; --fail-on gates CI on regressions
       mltop tail RUN|FILE [-f] [--grep REGEX] [-n N] [-C PATH]
                                            print a run's logs (or a log file); -f follows
       mltop pipelines [PATH] [--format table|json|md] [--dag FILE] [--github OWNER/REPO]
                                            CI and ML pipelines side by side by lifecycle
                                            phase, coverage and MLOps maturity
       mltop demo [--live]                  train the sample project in a temporary folder
                                            and open mltop on it (--live: and follow a run
                                            training in the background)

Run `mltop COMMAND --help` for a command's options.
Sources read: mltop run folders, MLflow (mlflow.db, mlruns/), DVC and dvclive, TensorBoard,
Lightning and Keras CSV loggers, Hugging Face trainer_state.json, W&B offline runs, trackio,
and plain JSONL/CSV metric logs. --mlflow URL (or MLFLOW_TRACKING_URI=http(s)://...) also reads
an MLflow tracking server, with MLflow's MLFLOW_TRACKING_TOKEN / _USERNAME / _PASSWORD auth.
"""


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error exits 2 the same way."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout(file: TextIO | None = None) -> Console:
    console = Console(file=file, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or redirected: no terminal width to fit, so never truncate cells.
        console = Console(file=file, highlight=False, soft_wrap=False, width=1000)
    return console


def _open(path: Path, store_arg: str | None, err: Console) -> Store:
    store = open_store(path, Path(store_arg).expanduser() if store_arg else None)
    if store.note:
        err.print(Text(f"mltop: {inert(store.note)}", style="yellow"))
    return store


def _resolve_root(arg: str | None) -> Path:
    root = Path(arg or ".").expanduser()
    if not root.exists():
        raise UsageError(f"mltop: {root}: no such file or folder")
    return root.resolve()


def _store_root(root: Path) -> Path:
    return root if root.is_dir() else root.parent


def _progress_text(what: str) -> str:
    """A progress label as Rich's ``TextColumn`` shows it: it parses markup, so escape it too."""
    return escape(inert(what))


def _file_scope(root: Path, err: Console) -> tuple[Path, RunQuery]:
    """What ``mltop runs FILE`` / ``mltop ingest FILE`` read, and which runs they show.

    A file some importer reads (a Keras CSV, ``mlflow.db``, a run folder's ``metrics.jsonl``)
    means the runs read from it; any other file (``params.yaml``, a README) means its folder,
    said in one line so the folder's runs are not taken for the file's.
    """
    if not root.is_file():
        return root, RunQuery()
    refs = discover(root).refs
    if refs:
        return root, RunQuery.sources([str(ref.location) for ref in refs])
    err.print(
        Text(f"mltop: {inert(root)} holds no runs by itself; using its folder {inert(root.parent)}")
    )
    return root.parent, RunQuery()


def _ingest(root: Path, store: Store, err: Console, show_progress: bool) -> ImportReport:
    if not show_progress:
        return ingest(root, store)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} sources"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = None

    def update(what: str, done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task("importing", total=total or 1)
        description = f"importing {_progress_text(what)}"
        progress.update(task, completed=done, total=total or 1, description=description)

    with progress:
        return ingest(root, store, progress=update)


_MLFLOW_HELP = (
    "also import the runs of this MLflow tracking server (repeatable; MLFLOW_TRACKING_URI is "
    "read too when it is an http(s) URL)"
)


def _mlflow_urls(given: Sequence[str] | None) -> list[str]:
    """Servers to read: each --mlflow, then MLFLOW_TRACKING_URI when it names an http(s) server.

    A bad URL is a usage error, said before any work starts.
    """
    from mltop.core.httpclient import RemoteError
    from mltop.core.importers import mlflow_rest

    urls: list[str] = []
    seen: set[str] = set()
    for url in [*(given or ()), *mlflow_rest.urls_from_env()]:
        try:
            canonical = mlflow_rest.normalize_url(url)[0]
        except RemoteError as exc:
            raise UsageError(f"mltop: --mlflow: {exc}") from exc
        if canonical not in seen:
            seen.add(canonical)
            urls.append(url)
    return urls


_TIMEOUT_HELP = (
    "seconds one request to an MLflow server may take, retries included (default 30, or "
    "MLFLOW_HTTP_REQUEST_TIMEOUT)"
)


def _timeout(text: str) -> float:
    """``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _sync_servers(
    urls: Sequence[str], store: Store, report: ImportReport, err: Console, *, histories: bool,
    show_progress: bool, timeout: float | None = None,
) -> None:  # fmt: skip
    """Import MLflow tracking servers into ``store``; failures land in ``report`` as one line."""
    if not urls:
        return
    from mltop.core.importers import mlflow_rest

    if not show_progress:
        for url in urls:
            mlflow_rest.sync_server(store, url, report, histories=histories, timeout=timeout)
        return
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = progress.add_task(_progress_text(what), total=total or None)
        progress.update(tasks[what], completed=done, total=total or None)

    with progress:
        for url in urls:
            tasks.clear()
            mlflow_rest.sync_server(
                store, url, report, histories=histories, progress=update, timeout=timeout
            )


def _print_problems(report: ImportReport, err: Console) -> None:
    for problem in report.problems:
        err.print(Text(str(problem)))  # one inert line, whatever the file name holds


# -- ingest --


def cmd_ingest(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="mltop ingest",
        description="Import the runs found under PATH (and of MLflow tracking servers, with "
        "their full metric histories).",
    )
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--store", help="store file (default: PATH/.mltop/store.duckdb)")
    parser.add_argument("--mlflow", action="append", metavar="URL", help=_MLFLOW_HELP)
    parser.add_argument("--timeout", type=_timeout, metavar="SECONDS", help=_TIMEOUT_HELP)
    args = parser.parse_args(argv)
    root = _resolve_root(args.path)
    urls = _mlflow_urls(args.mlflow)
    err = _stderr()
    out = _stdout()
    root, _ = _file_scope(root, err)
    with _open(_store_root(root), args.store, err) as store:
        report = _ingest(root, store, err, show_progress=err.is_terminal)
        _sync_servers(
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
    _print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK


# -- runs --


def _compile_filter(text: str | None) -> RunQuery:
    if not text or not text.strip():
        return RunQuery()
    from mltop.core import query

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


def _json_number(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: spell them as strings, like MLflow's REST API does."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


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
        "metrics": {k: _json_number(s.last) for k, s in metrics.items()},
    }


def cmd_runs(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = _Parser(prog="mltop runs", description="Print the runs found under PATH.")
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
        help=_MLFLOW_HELP + "; only latest metric values are fetched (`mltop ingest --mlflow` "
        "fetches full histories)",
    )
    parser.add_argument("--timeout", type=_timeout, metavar="SECONDS", help=_TIMEOUT_HELP)
    args = parser.parse_args(argv)
    root = _resolve_root(args.path)
    urls = _mlflow_urls(args.mlflow)
    query = _compile_filter(args.filter)
    order, descending = _parse_sort(args.sort)
    descending = descending or args.desc
    err = _stderr()
    root, scope = _file_scope(root, err)
    query = scope.and_(query)
    with _open(_store_root(root), args.store, err) as store:
        show_progress = err.is_terminal and not args.json
        report = _ingest(root, store, err, show_progress=show_progress)
        _sync_servers(
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
    from mltop.core.query import unknown_metric_warnings

    for line in unknown_metric_warnings(args.filter, args.sort, known_metrics):
        err.print(Text(f"mltop: {inert(line)}"))
    out = _stdout(out_file)
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
    _print_problems(report, err)
    return EXIT_PROBLEMS if report.problems else EXIT_OK


# -- diff --

_DIFF_DESCRIPTION = """\
Compare two or more runs: their params and metrics side by side, each run against a baseline.

Each RUN is a run name, an id prefix, or a filter expression (anything with a space or an
operator, e.g. "params.model = rf"), which may select several runs (oldest first). The first run
is the baseline unless --baseline names another. Metric values are each run's last value; the
best-of-history column gives the best value and its step (min for lower-is-better metrics such as
loss, max for higher-is-better ones such as accuracy; see .mltop/directions.yaml to set a
metric's direction)."""

_DIFF_EPILOG = f"""\
--fail-on THRESHOLDS:
{GATE_HELP}

exit status: 0 compared (and every threshold held), 1 a threshold was broken, 2 usage error
(including an unknown or ambiguous RUN). Unreadable files under the root are reported on stderr
without changing the exit status."""

# A RUN that is not a name or id and has a space or one of these is read as a filter expression.
_FILTER_HINT = re.compile(r"[\s=<>!~()]")


def _run_brief(run: Run) -> str:
    return inert(f"{run.name} ({run.id[:8]}, {run.source_kind}, {run.location})")


def _candidates(runs: Sequence[Run], limit: int = 8) -> str:
    shown = "; ".join(_run_brief(r) for r in runs[:limit])
    return shown + (f"; and {len(runs) - limit} more" if len(runs) > limit else "")


def _filter_or_none(text: str) -> RunQuery | None:
    """The filter ``text`` means; None when it is one word that is no filter (a mistyped name)."""
    from mltop.core import query

    try:
        return query.compile_query(text)
    except query.QueryError as exc:
        if not any(c.isspace() for c in text):
            return None
        raise UsageError(f"mltop diff: bad filter\n{query.format_error(text, exc)}") from exc


def _resolve_ref(store: Store, ref: str, *, single: bool = False) -> list[Run]:
    """The runs a RUN argument means: an exact name, an id prefix, else a filter expression."""
    if not ref.strip():
        raise UsageError("mltop diff: an empty RUN argument")
    text = ref
    found = store.find_runs(text)
    if len(found) == 1:
        return found
    shown = inert(" ".join(text.split()))
    if len(found) > 1:
        raise UsageError(
            f"mltop diff: {shown!r} is ambiguous, it matches {len(found)} runs: "
            f"{_candidates(found)}; give an id prefix instead"
        )
    query = _filter_or_none(text) if _FILTER_HINT.search(text) else None
    if query is not None:
        runs = store.runs(query, order="start", descending=False)
        if not runs:
            raise UsageError(f"mltop diff: filter {shown!r} selects no runs")
        if single and len(runs) > 1:
            raise UsageError(
                f"mltop diff: the baseline filter {shown!r} selects {len(runs)} runs: "
                f"{_candidates(runs)}"
            )
        return runs
    names = sorted({r.name for r in store.runs()})
    close = difflib.get_close_matches(text, names, n=5, cutoff=0.6)
    hint = (
        f"; did you mean {', '.join(repr(n) for n in close)}?"
        if close
        else f"; the store has {len(names)} run names (see `mltop runs`)"
    )
    raise UsageError(f"mltop diff: no run named {shown!r} and no run id starting with it{hint}")


def cmd_diff(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = _Parser(
        prog="mltop diff",
        description=_DIFF_DESCRIPTION,
        epilog=_DIFF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run name, id prefix or filter")
    parser.add_argument("--root", "-C", default=".", help="folder with the runs (default: .)")
    parser.add_argument("--store", help="store file (default: ROOT/.mltop/store.duckdb)")
    parser.add_argument("--baseline", "-b", metavar="RUN", help="compare against this run")
    parser.add_argument(
        "--only-changed", action="store_true", help="hide rows where every run agrees"
    )
    parser.add_argument(
        "--metrics",
        metavar="REGEX",
        help="only metrics whose key matches (searched anywhere in the key)",
    )
    parser.add_argument(
        "--format", choices=("table", "json", "md"), default="table", help="output format"
    )
    parser.add_argument(
        "--json", dest="format", action="store_const", const="json", help="--format json"
    )
    parser.add_argument("--md", dest="format", action="store_const", const="md", help="--format md")
    parser.add_argument(
        "--fail-on",
        metavar="THRESHOLDS",
        help="exit 1 when a change breaks a threshold, e.g. 'val_acc<-0.01,loss>+5%%'",
    )
    args = parser.parse_args(argv)
    try:
        gates = parse_gates(args.fail_on) if args.fail_on is not None else None
    except GateError as exc:
        raise UsageError(f"mltop diff: --fail-on: {exc}") from exc
    if args.metrics is not None:
        try:
            re.compile(args.metrics)
        except re.error as exc:
            raise UsageError(f"mltop diff: --metrics: bad regular expression ({exc})") from exc
    root = _resolve_root(args.root)
    err = _stderr()
    directions = load_directions(_store_root(root))
    for problem in directions.problems:
        err.print(Text(f"mltop: {inert(problem)}", style="yellow"))
    with _open(_store_root(root), args.store, err) as store:
        report = _ingest(root, store, err, show_progress=err.is_terminal and args.format == "table")
        runs: list[Run] = []
        for ref in args.runs:
            runs += _resolve_ref(store, ref)
        ids = list(dict.fromkeys(r.id for r in runs))
        if args.baseline is not None:
            base_id = _resolve_ref(store, args.baseline, single=True)[0].id
            ids = [base_id, *(i for i in ids if i != base_id)]
        if len(ids) < 2:
            raise UsageError(
                f"mltop diff: need at least 2 runs to compare, the arguments select {len(ids)}"
            )
        comparison = compare_runs(
            store,
            ids,
            only_changed=args.only_changed,
            metrics_regex=args.metrics,
            directions=directions,
        )
    failures = check_gates(comparison, gates) if gates is not None else None
    out = out_file or sys.stdout
    if args.format == "json":
        out.write(render_json(comparison, failures))
    elif args.format == "md":
        out.write(render_markdown(comparison, failures))
    else:
        out = _stdout(out_file)
        out.print(render_table(comparison, width=out.width if out.is_terminal else None))
    _print_problems(report, err)
    for failure in failures or ():
        err.print(Text(f"mltop diff: regression: {inert(str(failure))}", style="red"))
    return EXIT_PROBLEMS if failures else EXIT_OK


# -- tail --

_TAIL_DESCRIPTION = """\
Print a run's console and log files, or one log file, highlighted as in the Logs screen.

RUN is a run name or id prefix (its logs: output.log, *.log, *.out, *.err of the run), or the path
of a log file. Colours only on a terminal and never with NO_COLOR set; escape sequences from the
log are neutralised either way. With --follow, new lines print as they are written (Ctrl-C stops)
across log rotation and truncation."""


def cmd_tail(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    from mltop.core.logmodel import LineMatcher, PatternError
    from mltop.core.logtail import TailOptions, tail_files, use_colour

    parser = _Parser(
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
    err = _stderr()
    target = Path(args.run).expanduser()
    if target.is_file():
        paths = [target]
    else:
        root = _resolve_root(args.root)
        with _open(_store_root(root), args.store, err) as store:
            report = _ingest(root, store, err, show_progress=err.is_terminal)
            found = store.find_runs(args.run) if args.run.strip() else []
            if len(found) != 1:
                what = "no run named" if not found else f"{len(found)} runs match"
                hint = f": {_candidates(found)}" if found else " (and no such log file)"
                raise UsageError(f"mltop tail: {what} {' '.join(args.run.split())!r}{hint}")
            run = found[0]
            paths = [Path(log.path) for log in store.logs(run.id)]
        _print_problems(report, err)
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


# -- the TUI and the demo --


def cmd_open(argv: Sequence[str]) -> int:
    parser = _Parser(prog="mltop", usage=USAGE, add_help=False)
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--store")
    parser.add_argument("--mlflow", action="append")
    parser.add_argument("--github", metavar="OWNER/REPO")
    args = parser.parse_args(argv)
    root = _resolve_root(args.path)
    urls = _mlflow_urls(args.mlflow)
    try:
        from mltop.tui.app import run_app
    except ImportError:
        _stderr().print(
            "mltop: the TUI is not available in this installation; "
            "use `mltop runs` or `mltop ingest`"
        )
        return EXIT_PROBLEMS
    store_path = Path(args.store) if args.store else None
    if root.is_file() and root.suffix.lower() in (".log", ".out", ".err", ".txt") and not urls:
        from mltop.tui.screens.logs import run_logs_app  # a text log: straight to the Logs screen

        return run_logs_app([root])
    if not urls:
        return run_app(root, store_path=store_path, github=args.github)
    # One server is passed as its URL, several as a tuple of URLs.
    server: str | tuple[str, ...] = urls[0] if len(urls) == 1 else tuple(urls)
    return run_app(root, store_path=store_path, mlflow_url=server, github=args.github)


def cmd_demo(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="mltop demo",
        description="Train the bundled sample project in a temporary folder and open mltop on it.",
    )
    parser.add_argument("--dir", help="folder to create the demo in (default: a temporary one)")
    parser.add_argument("--no-tui", action="store_true", help="only train and print the runs table")
    parser.add_argument(
        "--live",
        action="store_true",
        help="then train one slow run in the background and follow its log as it trains",
    )
    args = parser.parse_args(argv)
    from mltop.core.demo import prepare_demo

    err = _stderr()
    with _training_status(err) as progress:
        folder = prepare_demo(
            Path(args.dir) if args.dir else None,
            log=lambda m: err.print(Text(m)),
            progress=progress,
        )
    if args.live:
        return _demo_live(folder, args.no_tui, err)
    if args.no_tui:
        return cmd_runs([str(folder)])
    code = cmd_open([str(folder)])
    err.print(Text(f"mltop demo: the demo folder is {folder} (`mltop {folder}` opens it again)"))
    return code


@contextlib.contextmanager
def _training_status(err: Console) -> Iterator[Callable[[str], None] | None]:
    """A status line that follows the sample's training on a terminal (nothing in a pipe).

    The sweep takes several seconds; one still line looked stuck. Each "training X" line the
    trainer prints replaces the status, with the count of runs so far.
    """
    if not err.is_terminal:
        yield None
        return
    started = 0
    with err.status(Text("mltop demo: starting the trainer…")) as status:

        def progress(line: str) -> None:
            nonlocal started
            if line.startswith("training "):
                started += 1
                what = line.removeprefix("training ").split(":", 1)[0]
                status.update(Text(f"mltop demo: training run {started}: {inert(what)}"))

        yield progress


def _demo_live(folder: Path, no_tui: bool, err: Console) -> int:
    """Start the live run and follow it: in the TUI, or (``--no-tui``) printed until it ends."""
    import threading

    from mltop.core.demo import LIVE_CONSOLE, start_live, stop_live, wait_for_live_run
    from mltop.core.tracking import OUTPUT_FILE

    proc = start_live(folder, log=lambda m: err.print(Text(m)))

    def ended_by(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # However mltop ends (q, Ctrl-C, an error, a closed SSH session, kill), the trainer it
    # started ends with it: the signals that would end mltop without cleaning up unwind instead.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ended_by)
    try:
        run_folder = wait_for_live_run(folder, proc)
        if run_folder is None:
            err.print(Text(f"mltop demo: the live run did not start (see {folder / LIVE_CONSOLE})"))
            return EXIT_PROBLEMS
        log = run_folder / OUTPUT_FILE
        if not no_tui:
            from mltop.tui.app import run_app_following

            return run_app_following(folder, log, title=f"{run_folder.name} (live demo)")
        from mltop.core.logtail import TailOptions, tail_files, use_colour

        done = threading.Event()
        threading.Thread(target=lambda: (proc.wait(), done.set()), daemon=True).start()
        options = TailOptions(follow=True, colour=use_colour(sys.stdout), poll=0.5)
        with contextlib.suppress(KeyboardInterrupt):
            tail_files([log], sys.stdout, sys.stderr, options, stop=done)
        return EXIT_OK
    finally:
        if stop_live(proc):
            err.print(Text(f"mltop demo: stopped the live run (pid {proc.pid})"))
        err.print(
            Text(f"mltop demo: the demo folder is {folder} (`mltop {folder}` opens it again)")
        )


def cmd_pipelines(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="mltop pipelines",
        description="Show the CI (DevOps) and ML (MLOps) pipelines under PATH side by side.",
    )
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table")
    parser.add_argument("--dag", metavar="FILE", help="print one pipeline's graph")
    parser.add_argument(
        "--github",
        metavar="OWNER/REPO",
        help="fetch GitHub Actions run status for this repository (token: $GITHUB_TOKEN)",
    )
    parser.add_argument("--branch", help="GitHub branch whose latest runs to show")
    args = parser.parse_args(argv)
    from mltop.core.pipelines.cli import pipelines_command

    root = _resolve_root(args.path)
    return pipelines_command(
        root,
        fmt=args.format,
        dag=Path(args.dag) if args.dag else None,
        github_repo=args.github,
        github_branch=args.branch,
    )


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "ingest": cmd_ingest,
    "runs": cmd_runs,
    "diff": cmd_diff,
    "pipelines": cmd_pipelines,
    "tail": cmd_tail,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before the TUI's threads start (see mltop.core.malloc)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return EXIT_OK
        if args and args[0] in ("-V", "--version"):
            sys.stdout.write(f"mltop {__version__}\n")
            return EXIT_OK
        if args and args[0] in COMMANDS:
            if args[0] == "demo" and os.path.isdir("demo"):
                # A folder named demo beside `mltop demo`: the command wins (it trains in a
                # folder of its own), so say how to open the folder before training starts.
                sys.stderr.write(
                    "mltop: running the `demo` command; to open the folder demo/, "
                    "run `mltop ./demo`\n"
                )
            return COMMANDS[args[0]](args[1:])
        return cmd_open(args)
    except UsageError as exc:
        sys.stderr.write(inert(str(exc), keep_newlines=True) + "\n")
        return EXIT_USAGE
    except StoreError as exc:
        sys.stderr.write(f"mltop: {inert(str(exc))}\n")
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mltop runs | head`: the reader left; say nothing, as other Unix tools do.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

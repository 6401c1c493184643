"""``mltop diff RUN RUN ...``: runs' params and metrics against a baseline, with CI gates.

RUN arguments are resolved here (a name, an id prefix, or a filter) so a typo gets candidates
and close names rather than an empty comparison; the comparison itself is mltop.core.compare.diff's.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
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
    stdout_console,
    store_root,
)
from mltop.core.cli.sources import (
    add_source_options,
    import_sources,
    mlflow_urls,
)
from mltop.core.common.sanitize import inert
from mltop.core.compare.diff import GATE_HELP, GateError, check_gates, compare_runs, parse_gates
from mltop.core.compare.diff_format import render_json, render_markdown, render_table
from mltop.core.compare.directions import load_directions
from mltop.core.entities import Run
from mltop.core.registry.resolve import MODELS_URI, RegistryRefError
from mltop.core.registry.resolve import resolve_ref as resolve_version
from mltop.core.store import RunQuery, Store

_DIFF_DESCRIPTION = """\
Compare two or more runs: their params and metrics side by side, each run against a baseline.

Each RUN is a run name, an id prefix, or a filter expression (anything with a space or an
operator, e.g. "params.model = rf"), which may select several runs (oldest first), or a model
version of the registry (models:/NAME@champion, models:/NAME/3), which means the run that made
it: a promotion step diffs @challenger against @champion with --fail-on. The first run
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


def _filter_or_none(text: str) -> RunQuery | None:
    """The filter ``text`` means; None when it is one word that is no filter (a mistyped name)."""
    from mltop.core.runs import query

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
    if ref.startswith(MODELS_URI):
        return [_model_run(store, ref)]
    text = ref
    found = store.find_runs(text)
    if len(found) == 1:
        return found
    shown = inert(" ".join(text.split()))
    if len(found) > 1:
        raise UsageError(
            f"mltop diff: {shown!r} is ambiguous, it matches {len(found)} runs: "
            f"{candidates(found)}; give an id prefix instead"
        )
    query = _filter_or_none(text) if _FILTER_HINT.search(text) else None
    if query is not None:
        runs = store.runs(query, order="start", descending=False)
        if not runs:
            raise UsageError(f"mltop diff: filter {shown!r} selects no runs")
        if single and len(runs) > 1:
            raise UsageError(
                f"mltop diff: the baseline filter {shown!r} selects {len(runs)} runs: "
                f"{candidates(runs)}"
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


def _model_run(store: Store, ref: str) -> Run:
    """The run behind the model version a ``models:/NAME@ALIAS`` or ``models:/NAME/3`` names."""
    try:
        version = resolve_version(store, ref)
    except RegistryRefError as exc:
        raise UsageError(f"mltop diff: {inert(str(exc))}") from exc
    run = store.run(version.run_id) if version.run_id else None
    if run is None:
        raise UsageError(
            f"mltop diff: {inert(ref)}: version {inert(version.version)}'s run "
            f"{inert(version.run_native_id or '(none)')} is not in the store (deleted, or its "
            "tracking data is not under the folder)"
        )
    return run


def cmd_diff(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = Parser(
        prog="mltop diff",
        description=_DIFF_DESCRIPTION,
        epilog=_DIFF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run name, id prefix, filter, or a model version: models:/NAME@ALIAS, models:/NAME/3",
    )
    parser.add_argument("--root", "-C", default=".", help="folder with the runs (default: .)")
    add_source_options(parser, root="ROOT")
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
    root = resolve_root(args.root)
    err = stderr_console()
    directions = load_directions(store_root(root))
    for problem in directions.problems:
        err.print(Text(f"mltop: {inert(problem)}", style="yellow"))
    with open_store_for(root, args.store, err) as store:
        report = import_sources(
            root, store, err, mlflow_urls(args.mlflow), timeout=args.timeout, histories=True,
            show_progress=err.is_terminal and args.format == "table",
        )  # fmt: skip
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
        out = stdout_console(out_file)
        out.print(render_table(comparison, width=out.width if out.is_terminal else None))
    print_problems(report, err)
    for failure in failures or ():
        err.print(Text(f"mltop diff: regression: {inert(str(failure))}", style="red"))
    return EXIT_PROBLEMS if failures else EXIT_OK

"""``mltop models [PATH] [--mlflow URL] [--format table|json|md]``: the model registry.

It imports what changed first (a registry is read with the MLflow source it belongs to), then
lists every model (versions, aliases, latest version) and every version (aliases, stage, status,
the run behind it). In JSON each version is one object carrying its model's name, so scripts
need no joins; deleted versions are listed with ``"deleted": true``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
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
    import_sources,
    mlflow_urls,
)
from mltop.core.common.formatting import fmt_iso
from mltop.core.common.sanitize import inert, inert_json
from mltop.core.entities import LoggedModel, ModelVersion, Run
from mltop.core.registry.resolve import ModelListing, badges, listings, model_json, version_json

MODEL_HEADERS = ("model", "versions", "aliases", "latest", "updated", "registry")
VERSION_HEADERS = ("model", "version", "aliases", "stage", "status", "created", "run", "run id")


def _run_cell(v: ModelVersion, runs: dict[str, Run], logged: LoggedModel | None) -> str:
    if v.deleted:
        return "(version deleted)"
    run = runs.get(v.run_id or "")
    if run is None:
        gone = "(run not imported)" if v.run_native_id else "—"
        return f"{gone} logged model {logged.model_id}" if logged is not None else gone
    return f"{run.name} ({run.experiment})" if run.experiment else run.name


def rows(
    found: list[ModelListing], runs: dict[str, Run]
) -> tuple[list[list[str]], list[list[str]]]:
    """The models' and the versions' table cells, as text (inert when shown)."""
    models = []
    versions = []
    for listing in found:
        m = listing.model
        models.append(
            [
                m.name,
                str(listing.count),
                badges(m.aliases) or "—",
                f"v{listing.latest}" if listing.latest else "—",
                fmt_iso(m.updated) or "—",
                m.source,
            ]
        )
        for v in listing.versions:
            versions.append(
                [
                    v.name,
                    f"v{v.version}",
                    " ".join(f"@{a}" for a in v.aliases) or "—",
                    "Deleted" if v.deleted else (v.stage or "—"),
                    v.status or "—",
                    fmt_iso(v.created) or "—",
                    _run_cell(v, runs, listing.logged_model(v)),
                    v.run_native_id or "—",
                ]
            )
    return models, versions


def _markdown(headers: Sequence[str], cells: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return inert(text).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in cells]
    return "\n".join(lines)


def _table(headers: Sequence[str], cells: list[list[str]]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, no_wrap=True, overflow="fold")
    for row in cells:
        table.add_row(*(Text(inert(c)) for c in row))
    return table


def cmd_models(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = Parser(
        prog="mltop models",
        description="List the registered models and their versions found under PATH.",
    )
    parser.add_argument("path", nargs="?", default=".")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table")
    add_source_options(parser)
    args = parser.parse_args(argv)
    root = resolve_root(args.path)
    urls = mlflow_urls(args.mlflow)
    err = stderr_console()
    with open_store_for(root, args.store, err) as store:
        report = import_sources(
            root, store, err, urls, timeout=args.timeout, histories=False,
            show_progress=err.is_terminal and args.format == "table",
        )  # fmt: skip
        found = listings(store)
        run_ids = [v.run_id for f in found for v in f.versions if v.run_id]
        runs = store.runs_by_id(run_ids)
    stream = out_file or sys.stdout
    if args.format == "json":
        data = {
            "models": [model_json(f) for f in found],
            "versions": [version_json(v, f.logged_model(v)) for f in found for v in f.versions],
        }
        stream.write(inert_json(data, indent=2, allow_nan=False) + "\n")
    else:
        model_cells, version_cells = rows(found, runs)
        if args.format == "md":
            stream.write(_markdown(MODEL_HEADERS, model_cells) + "\n\n")
            stream.write(_markdown(VERSION_HEADERS, version_cells) + "\n")
        else:
            out = stdout_console(out_file)
            if not out.is_terminal:
                out = Console(file=out_file, highlight=False, soft_wrap=False, width=1000)
            out.print(_table(MODEL_HEADERS, model_cells))
            out.print()
            out.print(_table(VERSION_HEADERS, version_cells))
            live = sum(f.count for f in found)
            out.print(f"{len(found)} models, {live} versions")
    return problems_exit(report, err)

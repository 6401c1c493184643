"""Reading the sources a command shows: the files under PATH and MLflow tracking servers.

Every command that lists runs first imports what changed, with a progress bar on a terminal;
``--mlflow`` and ``--timeout`` mean the same in each of them, so they are parsed here once.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from mltop.core.cli.output import UsageError, progress_text
from mltop.core.common.sanitize import inert
from mltop.core.discovery import discover, ingest
from mltop.core.entities import ImportReport
from mltop.core.store import RunQuery, Store


def file_scope(root: Path, err: Console) -> tuple[Path, RunQuery]:
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


#: A store brought up to date this recently by the app or its watcher is not scanned again.
FRESH_SECONDS = 5.0


def add_scan_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scan",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="import what changed under PATH first (default: yes, unless mltop or its watcher "
        f"brought the store up to date in the last {FRESH_SECONDS:g} seconds)",
    )


def scan_wanted(root: Path, store: Store, scan: bool | None, err: Console) -> bool:
    """Whether to scan ``root`` before reading the store: ``--scan``/``--no-scan``, else yes
    unless the app or its watcher recorded a scan of it in the last :data:`FRESH_SECONDS`
    (walking a hundred thousand run folders costs seconds; that scan is as good), said on
    stderr."""
    if scan is not None:
        return scan
    if store.note:  # a private store of this call: empty until it scans
        return True
    last = store.last_scan(str(root))
    age = None if last is None else time.time() - last
    if age is None or not 0 <= age <= FRESH_SECONDS:
        return True
    err.print(
        Text(
            f"mltop: not scanning: the store was brought up to date {age:.1f} s ago "
            "(--scan to scan anyway)",
            style="dim",
        )
    )
    return False


def ingest_with_progress(
    root: Path, store: Store, err: Console, show_progress: bool
) -> ImportReport:
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
        description = f"importing {progress_text(what)}"
        progress.update(task, completed=done, total=total or 1, description=description)

    with progress:
        return ingest(root, store, progress=update)


MLFLOW_HELP = (
    "also import the runs of this MLflow tracking server (repeatable; MLFLOW_TRACKING_URI is "
    "read too when it is an http(s) URL)"
)


def mlflow_urls(given: Sequence[str] | None) -> list[str]:
    """Servers to read: each --mlflow, then MLFLOW_TRACKING_URI when it names an http(s) server.

    A bad URL is a usage error, said before any work starts.
    """
    from mltop.core.common.httpclient import RemoteError
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


TIMEOUT_HELP = (
    "seconds one request to an MLflow server may take, retries included (default 30, or "
    "MLFLOW_HTTP_REQUEST_TIMEOUT)"
)


def timeout_seconds(text: str) -> float:
    """``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def add_source_options(
    parser: argparse.ArgumentParser, *, root: str = "PATH", mlflow_help: str = MLFLOW_HELP
) -> None:
    """``--store``, ``--mlflow`` and ``--timeout``, worded alike in every command that imports."""
    parser.add_argument("--store", help=f"store file (default: {root}/.mltop/store.duckdb)")
    parser.add_argument("--mlflow", action="append", metavar="URL", help=mlflow_help)
    parser.add_argument("--timeout", type=timeout_seconds, metavar="SECONDS", help=TIMEOUT_HELP)


def import_sources(
    root: Path, store: Store, err: Console, urls: Sequence[str], *, timeout: float | None,
    histories: bool, show_progress: bool, scan: bool = True,
) -> ImportReport:  # fmt: skip
    """What a command does before it reads the store: import what changed under ``root``
    (unless ``scan`` is off), then each MLflow server; the problems of both in one report."""
    report = ingest_with_progress(root, store, err, show_progress) if scan else ImportReport()
    sync_servers(
        urls, store, report, err, histories=histories, show_progress=show_progress,
        timeout=timeout,
    )  # fmt: skip
    return report


def sync_servers(
    urls: Sequence[str], store: Store, report: ImportReport, err: Console, *, histories: bool,
    show_progress: bool, timeout: float | None = None,
) -> None:  # fmt: skip
    """Import MLflow tracking servers into ``store``; failures land in ``report`` as one line."""
    if not urls:
        return
    from mltop.core.importers import mlflow_rest
    from mltop.core.registry import sync as registry_sync

    if not show_progress:
        for url in urls:
            plan = mlflow_rest.sync_server(store, url, report, histories=histories, timeout=timeout)
            if plan is not None:  # a server whose runs could not be read said so already
                registry_sync.sync_server(store, url, report, timeout=timeout)
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
            tasks[what] = progress.add_task(progress_text(what), total=total or None)
        progress.update(tasks[what], completed=done, total=total or None)

    with progress:
        for url in urls:
            tasks.clear()
            plan = mlflow_rest.sync_server(
                store, url, report, histories=histories, progress=update, timeout=timeout
            )
            if plan is not None:
                registry_sync.sync_server(store, url, report, timeout=timeout)

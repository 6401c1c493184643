"""Bring registries into the store as part of importing the MLflow source each belongs to.

Discovery calls :func:`sync_local` with the sources it found, after their runs were imported,
and the commands and the app call :func:`sync_server` beside each server's run sync: a registry
appears with zero configuration wherever its runs do. Each source's registry is replaced whole
when what was read changed (a database's header and size, an ``mlruns/models`` tree's files, a
server's answers), so an unchanged source costs a ``stat`` and one store query. Any failure is a
problem line naming the source; the runs of that source are imported all the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mltop.core.common.httpclient import RemoteError
from mltop.core.entities import ImportReport, LoggedModel, SourceRef
from mltop.core.importers import dvc as dvc_importer
from mltop.core.importers import mlflow_files as files_importer
from mltop.core.importers import mlflow_rest as rest_importer
from mltop.core.importers import mlflow_sqlite as sqlite_importer
from mltop.core.registry import fields, gto, mlflow_files, mlflow_rest, mlflow_sqlite
from mltop.core.store import Store

PREFIX = "model registry: "


def _state(probe: sqlite_importer.Probe | None) -> str:
    if probe is None:
        return "-"
    st, head = probe
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{head}"


def sync_database(
    store: Store, db: Path, report: ImportReport, previous: str | None = None
) -> None:
    """The registry of one MLflow SQLite database, unless unchanged since last read
    (``previous``: the fingerprint of the last read, when the caller has it at hand)."""
    source = str(db)
    now = sqlite_importer.probe(db)
    if now is None:
        return
    fingerprint = _state(now) + "|" + _state(sqlite_importer.probe(Path(source + "-wal")))
    previous = previous or store.registry_fingerprint(source)
    if previous == fingerprint:
        return
    if not sqlite_importer.has_sqlite_header(db):
        return  # the run importer has said what is wrong with the file
    try:
        tables = mlflow_sqlite.read_database(db)
    except mlflow_sqlite.NoRegistry as exc:
        report.problem(db, str(exc))
        tables = {}
    except mlflow_sqlite.NotTracking:
        tables = {}
    except (OSError, sqlite3.Error, UnicodeDecodeError) as exc:
        report.problem(db, PREFIX + f"cannot read: {sqlite_importer.error_line(exc)}")
        return
    store.put_registry_tables(source, tables, fingerprint, first_read=previous is None)


def sync_tree(store: Store, root: Path, report: ImportReport, previous: str | None = None) -> None:
    """The registry of one ``mlruns`` tree (its ``models/`` folder), unless unchanged."""
    source = str(root)
    if previous is None and not mlflow_files.fingerprint(root):
        return
    if previous is not None:
        # The logged models read last time: a metric logged to one since changes its files.
        kept = store.logged_models(source).values()
        folders = [mlflow_files.logged_folder(root, m) for m in kept]
        if previous == mlflow_files.fingerprint(root, folders):
            return
    models, versions = mlflow_files.read_tree(root, report)
    ids = {i for v in versions if not v.deleted and (i := fields.logged_model_id(v))}
    logged = mlflow_files.read_logged_models(root, ids, report)
    folders = [mlflow_files.logged_folder(root, m) for m in logged]
    store.put_registry(source, models, versions, mlflow_files.fingerprint(root, folders), logged)


def sync_gto(store: Store, folder: Path, report: ImportReport, previous: str | None = None) -> None:
    """DVC's model registry (GTO) of a ``dvc.yaml`` folder: its artifacts and git tags."""
    fingerprint = gto.fingerprint(folder)
    if fingerprint is None or previous == fingerprint:
        return
    try:
        models, versions = gto.read_registry(folder, dvc_importer.Git(folder), report)
    except dvc_importer.GitError as exc:
        report.problem(folder, PREFIX + f"GTO tags not read: {exc}")
        return
    store.put_registry(str(folder), models, versions, fingerprint)


_LOCAL = {
    sqlite_importer.KIND: sync_database,
    files_importer.KIND: sync_tree,
    dvc_importer.KIND: sync_gto,
    gto.KIND: sync_gto,  # a git repository with GTO artifacts but no .dvc/
}


def sync_local(store: Store, refs: Iterable[SourceRef], report: ImportReport) -> None:
    """The registries of the local sources among ``refs``; never raises on one."""
    wanted = [ref for ref in refs if ref.kind in _LOCAL]
    if not wanted:
        return
    previous = store.registry_fingerprints()  # one query, not one per source
    for ref in wanted:
        try:
            _LOCAL[ref.kind](store, Path(ref.location), report, previous.get(str(ref.location)))
        except Exception as exc:  # bad input must never stop the other sources
            report.problem(ref.location, PREFIX + f"failed: {type(exc).__name__}: {exc}")


def _masked(exc: RemoteError, client: rest_importer.MlflowRestClient | None) -> str:
    message = str(exc)
    return client.settings.credentials.mask(message) if client is not None else message


def sync_server(
    store: Store,
    url: str,
    report: ImportReport,
    *,
    client: rest_importer.MlflowRestClient | None = None,
    **client_options: Any,
) -> None:
    """The registry of one tracking server; a failure is one line ``URL: what went wrong``."""
    own = client is None
    shown = url
    try:
        shown = rest_importer.normalize_url(url)[0]
        if client is None:
            client = rest_importer.connect(url, **client_options)
        try:
            models, versions, digest = mlflow_rest.read_server(client)
        except mlflow_rest.NoRegistry as exc:
            report.problem(shown, str(exc))
            models, versions, digest = [], [], "no registry"
        logged: list[LoggedModel] = []
        try:
            logged, logged_digest = mlflow_rest.read_logged_models(client, versions)
            digest += f"|{logged_digest}"
        except RemoteError as exc:  # the versions are listed all the same, without them
            report.problem(shown, PREFIX + f"logged models not read: {_masked(exc, client)}")
        if store.registry_fingerprint(client.url) != digest:
            store.put_registry(client.url, models, versions, digest, logged)
    except RemoteError as exc:
        report.problem(shown, PREFIX + _masked(exc, client))
    finally:
        if own and client is not None:
            client.close()

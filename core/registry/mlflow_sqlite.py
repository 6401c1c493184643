"""MLflow's registry tables in a SQLite tracking store, read with the standard library.

The database is opened exactly as its runs are (:func:`mltop.core.importers.mlflow_sqlite.
open_database`: read-only, no file created beside it), so MLflow's client, which migrates and
rewrites a database it opens, never touches the user's file. A database made by an MLflow
without the registry (before 1.x: no ``registered_models`` table) has no models, and says so in
one line; one without aliases (before 2.3) or tags simply has none of them.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.importers import mlflow_sqlite as tracking
from mltop.core.importers.mlflow_common import MLFLOW_INFINITY
from mltop.core.registry import fields

KIND = tracking.KIND
REQUIRED = ("registered_models", "model_versions")


class NoRegistry(Exception):
    """The database has no registry tables; ``str()`` is the one line to report."""


class NotTracking(Exception):
    """Not an MLflow tracking database at all: the run importer reports it, once."""


_TYPES = {
    "seq": pa.int64(),
    "created": pa.float64(),
    "updated": pa.float64(),
}
_METRIC_TYPES = {"value": pa.float64(), "step": pa.int64(), "ts": pa.int64()}
_TAG_TYPES = {"version": pa.int64()}
# MLflow 3's logged models (the tables exist from 3.0 on), only those versions were made from:
# a store logs one per run that calls log_model, registered or not.
LOGGED_TABLES = ("logged_models", "logged_model_metrics", "logged_model_params")


def _logged_ids_sql(version_columns: set[str]) -> str:
    ids = "SELECT substr(source, 9) FROM model_versions WHERE source LIKE 'models:/m-%'"
    if "model_id" in version_columns:
        ids += " UNION SELECT model_id FROM model_versions WHERE model_id IS NOT NULL"
    return ids


def _logged_sql() -> dict[str, str]:
    """The logged models of the ids in the JSON list bound to each query's one parameter."""
    ids = "SELECT value FROM json_each(?)"
    status = " ".join(f"WHEN {n} THEN '{word}'" for n, word in fields.LOGGED_STATUS.items())
    return {
        "registry_logged_models": "SELECT model_id, name, CAST(experiment_id AS TEXT) AS "
        "experiment_id, source_run_id AS run_native_id, "
        f"CASE status {status} ELSE CAST(status AS TEXT) END AS status, "
        "creation_timestamp_ms / 1000.0 AS created, last_updated_timestamp_ms / 1000.0 AS "
        f"updated FROM logged_models WHERE model_id IN ({ids})",
        # The largest double stands for an infinity (see mlflow_common.metric_value).
        "registry_logged_metrics": "SELECT model_id, metric_name AS key, "
        f"CASE WHEN abs(metric_value) = {MLFLOW_INFINITY!r} THEN metric_value * 9e999 "
        "ELSE metric_value END AS value, "
        "metric_step AS step, metric_timestamp_ms AS ts, dataset_name "
        f"FROM logged_model_metrics WHERE model_id IN ({ids})",
        "registry_logged_params": "SELECT model_id, param_key AS key, param_value AS value "
        f"FROM logged_model_params WHERE model_id IN ({ids})",
    }


def _columns(
    con: sqlite3.Connection, sql: str, types: dict[str, pa.DataType], args: Sequence[object] = ()
) -> pa.Table:
    """One query's rows as an Arrow table, transposed in C.

    The cyclic garbage collector is paused meanwhile: it would otherwise walk the ten thousand
    fresh row tuples again and again (none can be part of a cycle), which cost more than
    reading them (0.9 s instead of 0.12 s for 10,000 versions, measured by bench/registry.py).
    """
    cur = con.execute(sql, args)
    names = [d[0] for d in cur.description]
    paused = gc.isenabled()
    gc.disable()
    try:
        rows = cur.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        del rows
    finally:
        if paused:
            gc.enable()
    return pa.table(
        {n: pa.array(c, types.get(n, pa.string())) for n, c in zip(names, columns, strict=True)}
    )


def _version_sql(columns: set[str]) -> str:
    # A later MLflow may add model_id to the table; 3.17 keeps it only in `source`. Only what
    # SQLite must read is asked of it: constants and MLflow's stage rules are applied to whole
    # columns afterwards (:func:`_normalised_versions`), which costs a third less.
    model_id = "model_id" if "model_id" in columns else "NULL"
    return f"""
        SELECT name, CAST(version AS INTEGER) AS seq, run_id AS run_native_id,
               source AS uri, status, status_message, current_stage AS stage,
               description, creation_time / 1000.0 AS created,
               last_updated_time / 1000.0 AS updated, user_id, {model_id} AS model_id
        FROM model_versions"""


def _normalised_versions(table: pa.Table) -> pa.Table:
    """MLflow's version rows as the store keeps them (the rules of :mod:`.fields`): the version
    as text, no run for an empty run id, no stage for ``None``, ``Deleted_Internal`` as the
    deleted flag."""
    stage, run = table["stage"], table["run_native_id"]
    unset = pa.array([fields.NO_STAGE, "", fields.DELETED_STAGE])
    deleted = pc.fill_null(pc.equal(stage, fields.DELETED_STAGE), False)
    return (
        table.drop_columns(["stage", "run_native_id"])
        .append_column("source_kind", pa.repeat(KIND, table.num_rows))
        .append_column("version", pc.cast(table["seq"], pa.string()))
        .append_column(
            "stage", pc.if_else(pc.is_in(stage, unset), pa.scalar(None, pa.string()), stage)
        )
        .append_column(
            "run_native_id", pc.if_else(pc.equal(run, ""), pa.scalar(None, pa.string()), run)
        )
        .append_column("deleted", deleted)
    )


def read_tables(con: sqlite3.Connection) -> dict[str, pa.Table]:
    """Every registered model and version (deleted ones flagged), aliases and tags, as the
    store's registry tables (and the MLflow 3 logged models versions were made from), in one
    read transaction."""
    tables = tracking.table_names(con)
    if not tables >= tracking.REQUIRED_TABLES:
        raise NotTracking()  # the run importer says what the file is not
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise NoRegistry(
            f"no model registry tables ({', '.join(missing)} missing: made by an MLflow "
            "without the registry); runs imported, no models"
        )
    version_columns = {r[1] for r in con.execute("PRAGMA table_info(model_versions)").fetchall()}
    queries = {
        "registry_models": f"SELECT '{KIND}' AS source_kind, name, description, "
        "creation_time / 1000.0 AS created, last_updated_time / 1000.0 AS updated "
        "FROM registered_models",
        "registry_versions": _version_sql(version_columns),
        "registry_aliases": "SELECT name, alias, CAST(version AS TEXT) AS version "
        "FROM registered_model_aliases" if "registered_model_aliases" in tables else None,
        "registry_tags": " UNION ALL ".join(
            sql
            for sql, table in (
                ("SELECT name, NULL AS version, key, value FROM registered_model_tags",
                 "registered_model_tags"),
                ("SELECT name, version, key, value FROM model_version_tags",
                 "model_version_tags"),
            )
            if table in tables
        ) or None,
    }  # fmt: skip
    con.execute("BEGIN")
    try:
        read = {
            name: _columns(con, sql, _TAG_TYPES if name == "registry_tags" else _TYPES)
            for name, sql in queries.items()
            if sql
        }
        if all(t in tables for t in LOGGED_TABLES):
            ids = [r[0] for r in con.execute(_logged_ids_sql(version_columns)).fetchall()]
            if ids:
                listed = [json.dumps(ids)]
                for name, sql in _logged_sql().items():
                    types = _METRIC_TYPES if name.endswith("metrics") else _TYPES
                    read[name] = _columns(con, sql, types, listed)
    finally:
        con.execute("COMMIT")
    read["registry_versions"] = _normalised_versions(read["registry_versions"])
    if "registry_tags" in read:  # MLflow's version numbers, as the text the store keeps
        tags = read["registry_tags"]
        version = pc.cast(tags["version"], pa.string())
        read["registry_tags"] = tags.set_column(
            tags.schema.get_field_index("version"), "version", version
        )
    return read


def read_database(db: Path) -> dict[str, pa.Table]:
    """Open ``db`` read-only and read its registry; raises NoRegistry or sqlite3 errors.

    Text is decoded by SQLite first (fast); only a database holding bytes that are not UTF-8
    is read again with the tracking reader's replacing decoder.
    """
    with tracking.open_database(db) as con:
        replacing = con.text_factory
        con.text_factory = str
        try:
            return read_tables(con)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
        con.text_factory = replacing
        return read_tables(con)

"""MLflow's registry tables in a SQLite tracking store, read with the standard library.

The database is opened exactly as its runs are (:func:`mltop.core.importers.mlflow_sqlite.
open_database`: read-only, no file created beside it), so MLflow's client, which migrates and
rewrites a database it opens, never touches the user's file. A database made by an MLflow
without the registry (before 1.x: no ``registered_models`` table) has no models, and says so in
one line; one without aliases (before 2.3) or tags simply has none of them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mltop.core.entities import ModelVersion, RegisteredModel
from mltop.core.importers import mlflow_sqlite as tracking
from mltop.core.registry import fields

KIND = tracking.KIND
REQUIRED = ("registered_models", "model_versions")


class NoRegistry(Exception):
    """The database has no registry tables; ``str()`` is the one line to report."""


def _rows(con: sqlite3.Connection, sql: str) -> list[dict[str, object]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def read_registry(
    con: sqlite3.Connection, source: str
) -> tuple[list[RegisteredModel], list[ModelVersion]]:
    """Every registered model and version (deleted ones flagged) in one read transaction."""
    tables = tracking.table_names(con)
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise NoRegistry(
            f"no model registry tables ({', '.join(missing)} missing: made by an MLflow "
            "without the registry); runs imported, no models"
        )
    con.execute("BEGIN")
    try:
        models = _rows(
            con,
            "SELECT name, description, creation_time AS created, "
            "last_updated_time AS updated FROM registered_models",
        )
        versions = _rows(
            con,
            "SELECT name, version, creation_time AS creation_timestamp, "
            "last_updated_time AS last_updated_timestamp, description, user_id, "
            "current_stage, source, run_id, status, status_message FROM model_versions",
        )
        columns = {r[1] for r in con.execute("PRAGMA table_info(model_versions)").fetchall()}
        if "model_id" in columns:  # a later MLflow may add it; 3.17 keeps it only in `source`
            ids = con.execute("SELECT name, version, model_id FROM model_versions").fetchall()
            by_key = {(str(n), str(v)): m for n, v, m in ids}
            for row in versions:
                row["model_id"] = by_key.get((str(row["name"]), str(row["version"])))
        model_tags = (
            con.execute("SELECT name, key, value FROM registered_model_tags").fetchall()
            if "registered_model_tags" in tables
            else []
        )
        version_tags = (
            con.execute("SELECT name, version, key, value FROM model_version_tags").fetchall()
            if "model_version_tags" in tables
            else []
        )
        aliases = (
            con.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
            if "registered_model_aliases" in tables
            else []
        )
    finally:
        con.execute("COMMIT")
    tags_of: dict[str, dict[str, str]] = {}
    for name, key, value in model_tags:
        tags_of.setdefault(str(name), {})[str(key)] = fields.text(value) or ""
    vtags_of: dict[tuple[str, str], dict[str, str]] = {}
    for name, version, key, value in version_tags:
        vtags_of.setdefault((str(name), str(version)), {})[str(key)] = fields.text(value) or ""
    aliases_of: dict[str, dict[str, str]] = {}
    for name, alias, version in aliases:
        aliases_of.setdefault(str(name), {})[str(alias)] = str(version)
    out_models = [
        fields.make_model(
            KIND,
            source,
            str(m["name"]),
            m,
            tags_of.get(str(m["name"]), {}),
            aliases_of.get(str(m["name"]), {}),
        )
        for m in models
    ]
    by_version = {n: fields.aliases_by_version(a) for n, a in aliases_of.items()}
    out_versions = [
        fields.make_version(
            KIND,
            source,
            v,
            vtags_of.get((str(v["name"]), str(v["version"])), {}),
            by_version.get(str(v["name"]), {}).get(str(v["version"]), []),
        )
        for v in versions
    ]
    return out_models, out_versions


def read_database(db: Path) -> tuple[list[RegisteredModel], list[ModelVersion]]:
    """Open ``db`` read-only and read its registry; raises NoRegistry or sqlite3 errors."""
    with tracking.open_database(db) as con:
        return read_registry(con, str(db))

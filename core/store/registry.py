"""The model registry: registered models, their versions, aliases and tags, per source.

A source's registry is small next to its runs (tens to thousands of versions) and has no
append-only part, so it is replaced whole, in one transaction, whenever the source changed: the
fingerprint of what was read is stored beside it and an unchanged source is not read again.
Versions are linked to runs by (source, native run id), the pair every MLflow importer stores, so
a version's run is found whichever of the three MLflow sources holds it.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

from mltop.core.entities import LoggedModel, ModelVersion, RegisteredModel
from mltop.core.store.connection import StoreConnection

_TABLES = (
    "registry_models",
    "registry_versions",
    "registry_aliases",
    "registry_tags",
    "registry_scans",
    "registry_logged_models",
    "registry_logged_metrics",
    "registry_logged_params",
)
_VERSION_COLUMNS = (
    "v.name, v.version, v.source_kind, v.source, v.run_native_id, coalesce(r.id, c.id), v.uri, "
    "v.status, v.status_message, v.stage, v.description, v.created, v.updated, v.user_id, "
    "v.model_id, v.deleted"
)
# A run deleted in its tracker stays in the store with lifecycle 'deleted': the version then
# links to no run, as MLflow's UI shows it.
# A GTO version's run_native_id is the commit its tag points at: the run is DVC's run of that
# commit or experiment (same source, native id = the commit), else a run recorded at that commit
# (another tracker's run in the repository, the latest started; DVC's workspace at HEAD last:
# it holds whatever the working tree holds now).
_VERSION_FROM = (
    "registry_versions v LEFT JOIN runs r ON r.source = v.source "
    "AND r.native_id = v.run_native_id AND coalesce(r.lifecycle, '') <> 'deleted' "
    "LEFT JOIN (SELECT git_commit, arg_max(id, (native_id IS DISTINCT FROM 'workspace', "
    "coalesce(start_time, 0), id)) AS id FROM runs WHERE git_commit IN "
    "(SELECT run_native_id FROM registry_versions WHERE source_kind = 'gto') "
    "AND coalesce(lifecycle, '') <> 'deleted' GROUP BY git_commit) c "
    "ON v.source_kind = 'gto' AND c.git_commit = v.run_native_id"
)
_RUN_ID = "coalesce(r.id, c.id)"


_SEMVER = re.compile(r"(\d{1,6})\.(\d{1,6})\.(\d{1,6})(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


def version_order(version: str) -> int | None:
    """The number of an MLflow version (``"12"`` -> 12), or of a GTO semantic version
    (``"1.10.0"`` after ``"1.9.0"``, a pre-release ``"2.0.0-rc1"`` just before ``"2.0.0"``),
    for sorting; None for other schemes. GTO tags made in the same second (a release script)
    are then still told apart, as ``gto show`` tells its latest version by semantic order."""
    text = version.strip()
    if text.isdigit():
        return int(text) if len(text) < 19 else None
    if m := _SEMVER.fullmatch(text):
        major, minor, patch = (int(part) for part in m.groups()[:3])
        return ((major * 10**6 + minor) * 10**6 + patch) * 2 - (1 if m[4] else 0)
    return None


def _strings(values: Iterable[object]) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], pa.string())


_TEXT, _NUMBER, _INT = pa.string(), pa.float64(), pa.int64()
_LOGGED_COLUMNS = {
    "registry_logged_models": {
        "model_id": _TEXT, "name": _TEXT, "experiment_id": _TEXT, "run_native_id": _TEXT,
        "status": _TEXT, "created": _NUMBER, "updated": _NUMBER,
    },
    "registry_logged_metrics": {
        "model_id": _TEXT, "key": _TEXT, "value": _NUMBER, "step": _INT, "ts": _INT,
        "dataset_name": _TEXT,
    },
    "registry_logged_params": {"model_id": _TEXT, "key": _TEXT, "value": _TEXT},
}  # fmt: skip


def _rows_table(rows: list[tuple], columns: Mapping[str, pa.DataType]) -> pa.Table:
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pa.table(
        {name: pa.array(v, kind) for (name, kind), v in zip(columns.items(), values, strict=True)}
    )


def logged_model_tables(logged: Sequence[LoggedModel]) -> dict[str, pa.Table]:
    """The ``registry_logged_*`` rows of MLflow 3 logged models."""
    rows = {
        "registry_logged_models": [
            (m.model_id, m.name, m.experiment_id, m.run_native_id, m.status, m.created, m.updated)
            for m in logged
        ],
        "registry_logged_metrics": [(m.model_id, *row) for m in logged for row in m.metrics],
        "registry_logged_params": [(m.model_id, k, v) for m in logged for k, v in m.params],
    }
    return {name: _rows_table(rows[name], _LOGGED_COLUMNS[name]) for name in _LOGGED_COLUMNS}


def registry_tables(
    models: Sequence[RegisteredModel],
    versions: Sequence[ModelVersion],
    logged: Sequence[LoggedModel] = (),
) -> dict[str, pa.Table]:
    """The rows :meth:`RegistryTables.put_registry_tables` takes, from models and versions
    (and the logged models versions were registered from)."""
    aliases = [(m.name, a, ver) for m in models for a, ver in m.aliases]
    tags = [(m.name, None, k, val) for m in models for k, val in m.tags]
    tags += [(v.name, v.version, k, val) for v in versions for k, val in v.tags]
    return {
        "registry_models": pa.table(
            {
                "source_kind": _strings(m.source_kind for m in models),
                "name": _strings(m.name for m in models),
                "description": _strings(m.description for m in models),
                "created": pa.array([m.created for m in models], pa.float64()),
                "updated": pa.array([m.updated for m in models], pa.float64()),
            }
        ),
        "registry_versions": pa.table(
            {
                "source_kind": _strings(v.source_kind for v in versions),
                "name": _strings(v.name for v in versions),
                "version": _strings(v.version for v in versions),
                "seq": pa.array([version_order(v.version) for v in versions], pa.int64()),
                "run_native_id": _strings(v.run_native_id for v in versions),
                "uri": _strings(v.uri for v in versions),
                "status": _strings(v.status for v in versions),
                "status_message": _strings(v.status_message for v in versions),
                "stage": _strings(v.stage for v in versions),
                "description": _strings(v.description for v in versions),
                "created": pa.array([v.created for v in versions], pa.float64()),
                "updated": pa.array([v.updated for v in versions], pa.float64()),
                "user_id": _strings(v.user_id for v in versions),
                "model_id": _strings(v.model_id for v in versions),
                "deleted": pa.array([v.deleted for v in versions], pa.bool_()),
            }
        ),
        "registry_aliases": pa.table(
            {
                "name": _strings(a[0] for a in aliases),
                "alias": _strings(a[1] for a in aliases),
                "version": _strings(a[2] for a in aliases),
            }
        ),
        "registry_tags": pa.table(
            {
                "name": _strings(t[0] for t in tags),
                "version": _strings(t[1] for t in tags),
                "key": _strings(t[2] for t in tags),
                "value": _strings(t[3] for t in tags),
            }
        ),
        **logged_model_tables(logged),
    }


class RegistryTables(StoreConnection):
    """The ``registry_*`` tables."""

    # -- writes ------------------------------------------------------------------------------------

    def registry_fingerprint(self, source: str) -> str | None:
        """What was read of ``source``'s registry last time (None: never read)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT fingerprint FROM registry_scans WHERE source = ?", [source]
            ).fetchall()  # never fetchone: a half-read result blocks the next write
        return rows[0][0] if rows else None

    def registry_fingerprints(self) -> dict[str, str]:
        """:meth:`registry_fingerprint` of every source read so far, in one query."""
        with self._lock:
            rows = self._con.execute("SELECT source, fingerprint FROM registry_scans").fetchall()
        return dict(rows)

    def put_registry(
        self,
        source: str,
        models: Sequence[RegisteredModel],
        versions: Sequence[ModelVersion],
        fingerprint: str,
        logged: Sequence[LoggedModel] = (),
    ) -> None:
        """Replace everything ``source``'s registry holds, in one transaction."""
        self.put_registry_tables(source, registry_tables(models, versions, logged), fingerprint)

    def put_registry_tables(
        self,
        source: str,
        tables: Mapping[str, pa.Table],
        fingerprint: str,
        *,
        first_read: bool = False,
    ) -> None:
        """:meth:`put_registry` for a reader that has its rows as columns already (a database
        holding thousands of versions): ``tables`` maps each of ``registry_models``,
        ``registry_versions``, ``registry_aliases``, ``registry_tags`` (and the
        ``registry_logged_*`` tables when the source has MLflow 3 logged models) to its rows,
        columns by name, without the ``source`` column (it is ``source`` for every row).
        ``first_read``: the caller found no fingerprint for ``source``, so there is nothing of
        it to delete (eight statements saved on the first import of a registry)."""
        with self.transaction(), self._lock:
            for table in () if first_read else _TABLES:
                self._con.execute(f"DELETE FROM {table} WHERE source = ?", [source])
            for table, rows in tables.items():
                if table not in _TABLES or rows.num_rows == 0:
                    continue
                self._con.register("_new_registry", rows)
                try:
                    self._con.execute(
                        f"INSERT INTO {table} BY NAME SELECT ? AS source, * FROM _new_registry",
                        [source],
                    )
                finally:
                    self._con.unregister("_new_registry")
            self._con.execute("INSERT INTO registry_scans VALUES (?, ?)", [source, fingerprint])

    def forget_registries(self, root: str, keep: Iterable[str]) -> None:
        """Drop the registries of sources under ``root`` that are not in ``keep``."""
        prefix = root.rstrip(os.sep) + os.sep
        keep = set(keep)
        with self._lock:
            rows = self._con.execute(
                "SELECT DISTINCT source FROM registry_scans "
                "WHERE source = ? OR starts_with(source, ?)",
                [root, prefix],
            ).fetchall()
        gone = [r[0] for r in rows if r[0] not in keep]
        if not gone:
            return
        with self.transaction(), self._lock:
            for source in gone:
                for table in _TABLES:
                    self._con.execute(f"DELETE FROM {table} WHERE source = ?", [source])

    # -- reads -------------------------------------------------------------------------------------

    def _registry_pairs(self, table: str, where: str = "", args: Sequence[object] = ()) -> list:
        with self._lock:
            return self._con.execute(f"SELECT * FROM {table} {where}", list(args)).fetchall()

    def registered_models(self) -> list[RegisteredModel]:
        """Every model of every registry, by name then source."""
        tags: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for source, name, _v, key, value in self._registry_pairs(
            "registry_tags", "WHERE version IS NULL ORDER BY key"
        ):
            tags[(source, name)].append((key, value))
        aliases: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for source, name, alias, version in self._registry_pairs(
            "registry_aliases", "ORDER BY alias"
        ):
            aliases[(source, name)].append((alias, version))
        with self._lock:
            rows = self._con.execute(
                "SELECT name, source_kind, source, description, created, updated "
                "FROM registry_models ORDER BY name, source"
            ).fetchall()
        return [
            RegisteredModel(
                *row,
                tags=tuple(tags.get((row[2], row[0]), ())),
                aliases=tuple(aliases.get((row[2], row[0]), ())),
            )
            for row in rows
        ]

    def registry_summaries(self) -> dict[tuple[str, str], tuple[int, str | None]]:
        """(live versions, latest live version) per (source, model), counted by DuckDB."""
        with self._lock:
            rows = self._con.execute(
                "SELECT source, name, count(*), arg_max(version, (coalesce(seq, -1), created)) "
                "FROM registry_versions WHERE NOT deleted GROUP BY source, name"
            ).fetchall()
        return {(r[0], r[1]): (int(r[2]), r[3]) for r in rows}

    def model_versions(
        self, name: str | None = None, source: str | None = None, deleted: bool = True
    ) -> list[ModelVersion]:
        """Versions (of one model, or all), newest version first within each model."""
        where, args = [], []
        if name is not None:
            where.append("v.name = ?")
            args.append(name)
        if source is not None:
            where.append("v.source = ?")
            args.append(source)
        if not deleted:
            where.append("NOT v.deleted")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        tag_where = "WHERE version IS NOT NULL" + (" AND name = ?" if name is not None else "")
        tag_args: list[object] = [name] if name is not None else []
        if source is not None:
            tag_where += " AND source = ?"
            tag_args.append(source)
        tags: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
        for src, n, v, key, value in self._registry_pairs(
            "registry_tags", tag_where + " ORDER BY key", tag_args
        ):
            tags[(src, n, v)].append((key, value))
        aliases: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        alias_where = " AND ".join(
            part
            for part, wanted in (("name = ?", name), ("source = ?", source))
            if wanted is not None
        )
        alias_where = f"WHERE {alias_where}" if alias_where else ""
        for src, n, alias, v in self._registry_pairs(
            "registry_aliases", alias_where + " ORDER BY alias", tag_args
        ):
            aliases[(src, n, v)].append(alias)
        with self._lock:
            rows = self._con.execute(
                f"SELECT {_VERSION_COLUMNS} FROM {_VERSION_FROM} {clause} "
                "ORDER BY v.name, v.source, v.seq DESC NULLS LAST, v.created DESC, v.version",
                args,
            ).fetchall()
        out = []
        for row in rows:
            key = (row[3], row[0], row[1])
            out.append(
                ModelVersion(
                    *row[:15],
                    deleted=bool(row[15]),
                    tags=tuple(tags.get(key, ())),
                    aliases=tuple(aliases.get(key, ())),
                )
            )
        return out

    def runs_of_models(self, model: str | None = None, alias: str | None = None) -> list[str]:
        """Ids of the runs behind live versions of ``model`` and/or with ``alias``."""
        where, args = ["NOT v.deleted", f"{_RUN_ID} IS NOT NULL"], []
        if model is not None:
            where.append("v.name = ?")
            args.append(model)
        if alias is not None:
            where.append(
                "EXISTS (SELECT 1 FROM registry_aliases a WHERE a.source = v.source "
                "AND a.name = v.name AND a.version = v.version AND a.alias = ?)"
            )
            args.append(alias)
        with self._lock:
            rows = self._con.execute(
                f"SELECT DISTINCT {_RUN_ID} FROM {_VERSION_FROM} WHERE {' AND '.join(where)}",
                args,
            ).fetchall()
        return [r[0] for r in rows]

    def logged_models(
        self, source: str | None = None, ids: Sequence[str] | None = None
    ) -> dict[tuple[str, str], LoggedModel]:
        """The logged models kept (of one source, and/or with these ids), by (source, id), with
        their metrics and params: three reads, whatever the number of models."""
        where, args = [], []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if ids is not None:
            if not ids:
                return {}
            where.append("list_contains(?, model_id)")
            args.append(list(ids))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        metrics: dict[tuple[str, str], list] = defaultdict(list)
        for src, model_id, *row in self._registry_pairs(
            "(SELECT source, model_id, key, value, step, ts, dataset_name "
            "FROM registry_logged_metrics)",
            clause + " ORDER BY key, step, ts",
            args,
        ):
            metrics[(src, model_id)].append(tuple(row))
        params: dict[tuple[str, str], list] = defaultdict(list)
        for src, model_id, key, value in self._registry_pairs(
            "registry_logged_params", clause + " ORDER BY key", args
        ):
            params[(src, model_id)].append((key, value))
        out = {}
        for src, model_id, *rest in self._registry_pairs("registry_logged_models", clause, args):
            key = (src, model_id)
            out[key] = LoggedModel(
                model_id,
                *rest,
                metrics=tuple(metrics.get(key, ())),
                params=tuple(params.get(key, ())),
            )
        return out

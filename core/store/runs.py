"""Runs and experiments: writes of runs, experiments, params and tags, and the reads of them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.entities import (
    Experiment,
    Run,
    RunRecord,
)
from mltop.core.store.columns import float_array, numbers_array, positions_in, text_array
from mltop.core.store.connection import StoreConnection, string_array
from mltop.core.store.queries import RunQuery, order_clause
from mltop.core.store.schema import (
    RUN_COLUMNS,
    RUN_FROM,
    SMALL_ID_SET,
    UPDATED_RESOLUTION,
)

_Row = TypeVar("_Row")


def _runs_sql(
    query: RunQuery | None, order: str, descending: bool, limit: int | None
) -> tuple[str, list[Any]]:
    query = query or RunQuery()
    order_exprs, order_args = order_clause(order)
    direction = "DESC" if descending else "ASC"
    order_sql = ", ".join(f"{expr} {direction} NULLS LAST" for expr in order_exprs)
    sql = (
        f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE {query.where} "
        f"ORDER BY {order_sql}, r.name, r.id"
    )
    args = [*query.params, *order_args]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(int(limit))
    return sql, args


def _first_per(rows: Iterable[_Row], key: Callable[[_Row], Hashable]) -> list[_Row]:
    """The first row of each key, in order. Done here rather than with SQL ``DISTINCT ON``:
    DuckDB 2.0 keeps native memory after every grouping of a registered Arrow table (see
    :func:`.summaries.batch_summaries`), and these writes run on every live import batch."""
    first: dict[Hashable, _Row] = {}
    for row in rows:
        first.setdefault(key(row), row)
    return list(first.values())


def _as_float(value: object) -> float | None:
    """The numeric reading of a param, so `params.lr < 0.01` compares numbers, not strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "None"
    return str(value)


def _first_rows(table: pa.Table) -> pa.Table:
    """The first row of each (run_id, key) of an Arrow table, in Arrow (no pandas, no Python
    object per row); a table without repeats, as a tracker's keyed rows are, is returned as is.
    """
    n = table.num_rows
    separators = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(np.arange(n + 1, dtype=np.int32)),
                         pa.py_buffer(b"\x1f" * n)],
    )  # fmt: skip
    pairs = pc.binary_join_element_wise(table["run_id"], table["key"], separators)
    if pc.count_distinct(pairs).as_py() == n:
        return table
    group = positions_in(pairs, pc.unique(pairs))
    _, first = np.unique(group, return_index=True)
    first.sort()
    return table.take(numbers_array(first))


def _keyed_table(rows: Iterable[tuple[str, str, object]] | pa.Table, *, numbers: bool) -> pa.Table:
    """(run_id, key, value[, num]) rows as an Arrow table, the first row of each (run, key).

    An Arrow table (text values) is taken as it is, its repeats dropped in Arrow; its ``num``
    is left to the INSERT (``TRY_CAST``, which reads numbers as :func:`_as_float` does, but for
    digits other than ASCII ones). Triples go through :func:`_param_text` and, for params,
    :func:`_as_float`.
    """
    if isinstance(rows, pa.Table):
        return _first_rows(rows.select(["run_id", "key", "value"]))
    first = _first_per(rows, lambda p: (p[0], p[1]))
    columns = {
        "run_id": string_array([p[0] for p in first]),
        "key": string_array([p[1] for p in first]),
        "value": string_array([_param_text(p[2]) for p in first]),
    }
    if numbers:
        columns["num"] = float_array([_as_float(p[2]) for p in first])
    return pa.table(columns)


def mapping_rows(run_id: str, mapping: Mapping[str, object]) -> list[tuple[str, str, object]]:
    """(run_id, key, value) triples for :meth:`Store.put_runs` from a params or tags dict."""
    return [(run_id, str(k), v) for k, v in mapping.items()]


#: The ``runs`` columns :meth:`RunTables.put_runs` writes: texts, then times (epoch seconds).
RUN_TEXTS = (
    "id", "source_kind", "location", "native_id", "experiment_id", "name", "status",
    "lifecycle", "parent_id", "git_commit", "host", "artifact_uri", "error", "source",
)  # fmt: skip
RUN_TIMES = ("start_time", "end_time", "updated")


def run_table(runs: Sequence[RunRecord], source: str | None = None) -> pa.Table:
    """Records as the Arrow table :meth:`RunTables.put_runs` writes; ``source`` as it says."""
    columns = {
        f: text_array([getattr(r, f) for r in runs])
        for f in RUN_TEXTS
        if f not in ("status", "source")
    }
    columns["status"] = string_array([str(r.status) for r in runs])
    columns["source"] = text_array([source or r.source or r.location for r in runs])
    columns |= {f: float_array([getattr(r, f) for r in runs]) for f in RUN_TIMES}
    return pa.table({f: columns[f] for f in RUN_TEXTS + RUN_TIMES})


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit moves every output bit (uint64, wrapping)."""
    x = values ^ (values >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RunTables(StoreConnection):
    """The ``runs``, ``experiments``, ``params`` and ``tags`` tables."""

    # -- writes: experiments, runs, params, tags ---------------------------------------------------

    def put_experiments(self, experiments: Sequence[tuple[str, str, str, str | None, str]]) -> None:
        """Replace experiments given as (id, source_kind, source, native_id, name)."""
        if not experiments:
            return
        experiments = _first_per(experiments, lambda e: e[0])
        cols = list(zip(*experiments, strict=True))
        names = ["id", "source_kind", "source", "native_id", "name"]
        table = pa.table({name: text_array(col) for name, col in zip(names, cols, strict=True)})
        with self._lock, self._matching("id", cols[0], "_exp_ids") as (where, args):
            self._con.register("_new_exps", table)
            try:
                self._con.execute(f"DELETE FROM experiments WHERE {where}", args)
                self._con.execute(
                    "INSERT INTO experiments SELECT id, source_kind, source, native_id, name "
                    "FROM _new_exps"
                )
            finally:
                self._con.unregister("_new_exps")

    def put_runs(
        self,
        source: str | None,
        runs: Sequence[RunRecord] | pa.Table,
        params: Iterable[tuple[str, str, object]] | pa.Table = (),
        tags: Iterable[tuple[str, str, object]] | pa.Table = (),
        digests: Mapping[str, int] | None = None,
    ) -> None:
        """Replace these runs with their params and tags (idempotent: same ids, same rows).

        ``runs`` are records, or an Arrow table of the :data:`RUN_TEXTS` and :data:`RUN_TIMES`
        columns with one row per run id (an importer that reads runs column-wise, see
        :func:`run_table`). ``params`` and ``tags`` are (run_id, key, value) triples, or Arrow
        tables of those three text columns (an importer that reads rows column-wise hands them
        over without a Python object per row); params keep their text and, when it parses,
        their number. ``source`` is the discovered source of all these runs; when None, each
        run's own ``source`` (or else its location) is used. ``digests`` (run_id -> a signed
        64-bit number) is what an importer computed of each run's source rows, read back by
        :meth:`metadata_digests`; a run written without one loses the one it had.
        """
        if isinstance(runs, pa.Table):
            table = runs.select(list(RUN_TEXTS + RUN_TIMES))
            if source is not None:
                column = string_array([source] * table.num_rows)
                table = table.set_column(RUN_TEXTS.index("source"), "source", column)
        else:
            table = run_table(_first_per(runs, lambda r: r.id), source)
        if not table.num_rows:
            return
        param_table = _keyed_table(params, numbers=True)
        tag_table = _keyed_table(tags, numbers=False)
        num = "num" if "num" in param_table.column_names else "TRY_CAST(value AS DOUBLE)"
        run_ids = table["id"].to_pylist()
        ids = set(run_ids)
        kept = [(i, d) for i, d in (digests or {}).items() if i in ids]
        numbers = np.array([d for _, d in kept], np.int64)
        digest_table = pa.table(
            {
                "run_id": string_array([i for i, _ in kept]),
                "digest": pa.Array.from_buffers(
                    pa.int64(), len(kept), [None, pa.py_buffer(numbers)]
                ),
            }
        )
        cols = ", ".join(table.column_names)
        with self._lock:
            self._delete_runs_rows(self._old_only(run_ids))
            con = self._con
            staged = {
                "_new_runs": table,
                "_new_params": param_table,
                "_new_tags": tag_table,
                "_new_digests": digest_table,
            }
            for name, staged_table in staged.items():
                con.register(name, staged_table)
            try:
                con.execute(f"INSERT INTO runs ({cols}) SELECT {cols} FROM _new_runs")
                con.execute(f"INSERT INTO params SELECT run_id, key, value, {num} FROM _new_params")
                con.execute("INSERT INTO tags SELECT run_id, key, value FROM _new_tags")
                if kept:
                    con.execute(
                        "INSERT INTO metadata_digests SELECT run_id, digest FROM _new_digests"
                    )
            finally:
                for name in staged:
                    con.unregister(name)

    def metadata_digests_of(self, runs: pa.Table, params: pa.Table, tags: pa.Table) -> np.ndarray:
        """Per row of ``runs`` (a :meth:`put_runs` table), a signed 64-bit digest of what
        :meth:`put_runs` writes of the run: its row and its params and tags ((run_id, key,
        value) tables, in any order; rows of other runs are left out). An importer compares it
        with :meth:`metadata_digests` to rewrite only the runs that changed, and hands it to
        :meth:`put_runs` to keep.

        DuckDB hashes each row (a projection: no grouping, no join, nothing kept after), and
        numpy folds a run's params and tags into sums (so their order does not matter) mixed
        with its own row's hash. A DuckDB that hashed differently would rewrite each run's
        metadata once, never miss a change.
        """
        n = runs.num_rows
        fields = ", ".join(RUN_TEXTS + RUN_TIMES)
        with self._lock:
            own = self._row_hashes(f"hash({fields})", runs)
            folded = []
            for table in (params, tags):
                at = positions_in(table["run_id"], runs["id"])
                held = at >= 0
                hashes = self._row_hashes("hash(key, value)", table)
                total = np.zeros(n, np.uint64)
                np.add.at(total, at[held], hashes[held])
                folded.append(total)
        digest = _mix(own ^ _mix(folded[0] ^ np.uint64(0x9E3779B97F4A7C15)))
        digest = _mix(digest ^ _mix(folded[1] ^ np.uint64(0xC2B2AE3D27D4EB4F)))
        return digest.view(np.int64)

    def _row_hashes(self, expression: str, table: pa.Table) -> np.ndarray:
        """DuckDB's ``expression`` (a UBIGINT hash) of each row of ``table``, in its order (a
        plain scan keeps it: DuckDB preserves insertion order)."""
        if not table.num_rows:
            return np.zeros(0, np.uint64)
        self._con.register("_hashed_rows", table)
        try:
            result = self._con.sql(f"SELECT {expression} AS h FROM _hashed_rows").to_arrow_table()
        finally:
            self._con.unregister("_hashed_rows")
        column = result["h"].combine_chunks()
        return np.frombuffer(column.buffers()[1], np.uint64, len(column), column.offset)

    def runs_with_other_summaries(self, run_ids: Sequence[str], now: pa.Table) -> set[str]:
        """Those of ``run_ids`` whose metric summaries differ from ``now`` (``run_id``, ``key``,
        ``count``, ``last_time``, the rows of these runs only): a key more or less, another
        count or another latest time. A source whose points are only ever appended (MLflow's)
        re-reads the histories of these runs alone; compared here, not as a Python object per
        metric of every run."""
        with self._lock, self._matching("run_id", run_ids, "_summary_runs") as (where, args):
            self._con.register("_now_summaries", now)
            try:
                rows = self._con.execute(
                    "SELECT coalesce(n.run_id, h.run_id) FROM _now_summaries n FULL OUTER JOIN "
                    f"(SELECT run_id, key, count, last_time FROM metric_summary WHERE {where}) h "
                    "ON n.run_id = h.run_id AND n.key = h.key WHERE n.run_id IS NULL "
                    "OR h.run_id IS NULL OR n.count <> h.count "
                    "OR n.last_time IS DISTINCT FROM h.last_time",
                    args,
                ).fetchall()
            finally:
                self._con.unregister("_now_summaries")
        return {r[0] for r in rows}

    def metadata_digests(self, run_ids: Iterable[str]) -> dict[str, int]:
        """The digests :meth:`put_runs` recorded for these runs (absent: none recorded)."""
        with self._lock, self._matching("run_id", run_ids, "_digest_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, digest FROM metadata_digests WHERE {where}", args
            ).fetchall()
        return dict(rows)

    def _delete_runs_rows(self, ids: list[str]) -> None:
        """Delete the rows, params and tags of runs about to be written again."""
        if not ids:
            return
        with (
            self._matching("run_id", ids, "_run_ids") as (by_run, args),
            self._matching("id", ids, "_run_ids2") as (by_id, id_args),
        ):
            for name in ("params", "tags", "metadata_digests"):
                self._con.execute(f"DELETE FROM {name} WHERE {by_run}", args)
            self._con.execute(f"DELETE FROM runs WHERE {by_id}", id_args)

    def set_run_status(
        self, run_id: str, status: str, end_time: float | None, updated: float | None
    ) -> None:
        with self._lock:
            self._con.execute(
                "UPDATE runs SET status = ?, end_time = ?, updated = ? WHERE id = ?",
                [status, end_time, updated, run_id],
            )

    def delete_runs(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        with (
            self._lock,
            self._matching("run_id", ids, "_gone_runs") as (by_run, args),
            self._matching("id", ids, "_gone_ids") as (by_id, id_args),
        ):
            self._note_cut(ids, None)
            for table in (
                "params", "tags", "metrics", "metric_summary", "logs", "files", "metadata_digests",
            ):  # fmt: skip
                self._con.execute(f"DELETE FROM {table} WHERE {by_run}", args)
            self._con.execute(f"DELETE FROM runs WHERE {by_id}", id_args)

    def forget_source_kinds(self, source: str, kinds: Sequence[str]) -> int:
        """Drop what importers of ``kinds`` stored for ``source``: their runs, experiments and
        the run-less file states they kept there; the number of runs dropped.

        For a folder one importer no longer reads while another still does (a DVC project whose
        ``.dvc/`` was removed, still GTO's registry): the scan keeps sources by folder, so the
        old importer's runs would otherwise stay as if the project were still there.
        """
        kinds = list(kinds)
        with self._lock:
            gone = [
                r[0]
                for r in self._con.execute(
                    "SELECT id FROM runs WHERE source = ? AND list_contains(?::VARCHAR[], "
                    "source_kind)",
                    [source, kinds],
                ).fetchall()
            ]
            if gone:
                self.delete_runs(gone)
            self._con.execute(
                "DELETE FROM experiments WHERE source = ? AND list_contains(?::VARCHAR[], "
                "source_kind) AND id NOT IN "
                "(SELECT experiment_id FROM runs WHERE experiment_id IS NOT NULL)",
                [source, kinds],
            )
            self._con.execute("DELETE FROM files WHERE source = ? AND run_id IS NULL", [source])
        return len(gone)

    def touch_runs(
        self, mtimes: Mapping[str, float], *, older_than: float = UPDATED_RESOLUTION
    ) -> list[str]:
        """Raise ``updated`` of these runs to the given times, when it is more than
        ``older_than`` seconds behind (never lower it).

        The cheap write for a run whose metrics grew while its metadata stayed as it was: one
        UPDATE per :data:`SMALL_ID_SET` runs instead of rewriting the runs. A job logging every
        second would otherwise update its row every batch, and each DuckDB UPDATE keeps version
        memory; staleness is judged in minutes, so seconds of lag cost nothing. Returns ids
        touched.
        """
        items = [(run_id, float(t)) for run_id, t in mtimes.items() if t is not None]
        touched: list[str] = []
        with self._lock:
            for start in range(0, len(items), SMALL_ID_SET):
                chunk = items[start : start + SMALL_ID_SET]
                ids = [c[0] for c in chunk]
                times = [c[1] for c in chunk]
                new_time = "list_extract(?::DOUBLE[], list_position(?::VARCHAR[], id))"
                rows = self._con.execute(
                    f"UPDATE runs SET updated = {new_time} "
                    f"WHERE list_contains(?::VARCHAR[], id) "
                    f"AND coalesce(updated, 0) < {new_time} - ? RETURNING id",
                    [times, ids, ids, times, ids, older_than],
                ).fetchall()
                touched.extend(r[0] for r in rows)
        return touched

    # -- reads -------------------------------------------------------------------------------------

    def _runs_from(self, rows: Sequence[tuple[Any, ...]]) -> list[Run]:
        return [Run(*row) for row in rows]

    def runs(
        self,
        query: RunQuery | None = None,
        *,
        order: str = "start",
        descending: bool = True,
        limit: int | None = None,
    ) -> list[Run]:
        """Runs matching a filter, newest first by default.

        ``order`` is an attribute (name, start, end, status, experiment, source, duration) or
        ``metrics.KEY`` (last value), ``metrics.KEY.min``/``.max``, or ``params.KEY`` (numbers
        before text).
        """
        sql, args = _runs_sql(query, order, descending, limit)
        with self._lock:
            rows = self._con.execute(sql, args).fetchall()
        return self._runs_from(rows)

    def run(self, run_id: str) -> Run | None:
        with self._lock:
            row = self._con.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.id = ?", [run_id]
            ).fetchall()
        return Run(*row[0]) if row else None

    def find_runs(self, ref: str) -> list[Run]:
        """Runs whose name is ``ref`` exactly, else whose id starts with ``ref``."""
        with self._lock:
            rows = self._con.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.name = ? ORDER BY r.start_time",
                [ref],
            ).fetchall()
            if not rows:
                rows = self._con.execute(
                    f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE starts_with(r.id, ?) "
                    "OR r.native_id = ? ORDER BY r.start_time",
                    [ref.lower(), ref],
                ).fetchall()
        return self._runs_from(rows)

    def children(self, run_id: str) -> list[Run]:
        with self._lock:
            rows = self._con.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.parent_id = ? ORDER BY r.name",
                [run_id],
            ).fetchall()
        return self._runs_from(rows)

    def run_ids_of_source(self, source: str) -> set[str]:
        """Ids of the runs a source produced, to find the ones that vanished from it."""
        with self._lock:
            rows = self._con.execute("SELECT id FROM runs WHERE source = ?", [source]).fetchall()
        return {r[0] for r in rows}

    def count_runs(self, query: RunQuery | None = None) -> int:
        query = query or RunQuery()
        with self._lock:
            row = self._con.execute(
                f"SELECT count(*) FROM {RUN_FROM} WHERE {query.where}", list(query.params)
            ).fetchall()
        return int(row[0][0]) if row else 0

    def params(self, run_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", [run_id]
            ).fetchall()
        return dict(rows)

    def tags(self, run_id: str) -> dict[str, str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", [run_id]
            ).fetchall()
        return dict(rows)

    def params_for(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Params of several runs at once: {run_id: {key: value}}."""
        out: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_pf_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, key, value FROM params WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for run_id, key, value in rows:
            out[run_id][key] = value
        return out

    def param_keys(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._con.execute(
                    "SELECT key FROM params GROUP BY key ORDER BY count(*) DESC, key"
                ).fetchall()
            ]

    def experiments(self) -> list[Experiment]:
        with self._lock:
            rows = self._con.execute(
                "SELECT e.id, e.name, e.source_kind, count(r.id) FROM experiments e "
                "LEFT JOIN runs r ON r.experiment_id = e.id "
                "GROUP BY e.id, e.name, e.source_kind ORDER BY e.name"
            ).fetchall()
        return [Experiment(*r) for r in rows]

    # -- reads for comparing runs (diff, overlay) --------------------------------------------------

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """Several runs by id in one query: {run_id: Run}; unknown ids are absent."""
        with self._lock, self._matching("r.id", run_ids, "_rb_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE {where}", args
            ).fetchall()
        return {row[0]: Run(*row) for row in rows}

    # -- reads for linking pipelines to runs -------------------------------------------------------

    def runs_at_commits(self, shas: Sequence[str]) -> dict[str, list[Run]]:
        """Runs logged at each commit, newest first: {sha: [Run]} (every sha is a key).

        Either side may be abbreviated: a short ``sha`` matches the full commits it starts
        (``a1b2c3d``), and a full ``sha`` matches a run that recorded a short one (at least 7
        characters). Case is ignored, as git's hex is.
        """
        wanted = [s.strip().lower() for s in shas if s and s.strip()]
        out: dict[str, list[Run]] = {s: [] for s in shas}
        if not wanted:
            return out
        with self._lock:
            self._with_ids("_commits", wanted)
            try:
                rows = self._con.execute(
                    f"SELECT c.id, {RUN_COLUMNS} FROM {RUN_FROM} "
                    "JOIN _commits c ON starts_with(lower(r.git_commit), c.id) "
                    "OR (length(r.git_commit) >= 7 AND starts_with(c.id, lower(r.git_commit))) "
                    "ORDER BY r.start_time DESC NULLS LAST, r.name, r.id"
                ).fetchall()
            finally:
                self._con.unregister("_commits")
        by_lower: dict[str, list[Run]] = defaultdict(list)
        for row in rows:
            by_lower[row[0]].append(Run(*row[1:]))
        for sha in shas:
            out[sha] = list(by_lower.get(sha.strip().lower(), [])) if sha else []
        return out

    def runs_under(self, folders: Sequence[str]) -> dict[str, list[Run]]:
        """Runs whose location is each folder or inside it, newest first: {folder: [Run]}."""
        out: dict[str, list[Run]] = {f: [] for f in folders}
        wanted = [f.rstrip("/") or "/" for f in folders if f]
        if not wanted:
            return out
        with self._lock:
            self._with_ids("_folders", wanted)
            try:
                rows = self._con.execute(
                    f"SELECT f.id, {RUN_COLUMNS} FROM {RUN_FROM} "
                    "JOIN _folders f ON r.location = f.id OR starts_with(r.location, "
                    "CASE WHEN f.id = '/' THEN '/' ELSE f.id || '/' END) "
                    "ORDER BY r.start_time DESC NULLS LAST, r.name, r.id"
                ).fetchall()
            finally:
                self._con.unregister("_folders")
        by_folder: dict[str, list[Run]] = defaultdict(list)
        for row in rows:
            by_folder[row[0]].append(Run(*row[1:]))
        for folder in folders:
            out[folder] = list(by_folder.get(folder.rstrip("/") or "/", [])) if folder else []
        return out

    def param_values(
        self, run_ids: Sequence[str]
    ) -> dict[str, dict[str, tuple[str, float | None]]]:
        """Params of several runs with their numeric reading: {run_id: {key: (text, number)}}.

        A diff needs both: equality is decided on the text, a delta only when both are numbers.
        """
        out: dict[str, dict[str, tuple[str, float | None]]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_pv_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT run_id, key, value, num FROM params WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for run_id, key, value, num in rows:
            out[run_id][key] = (value, num)
        return out

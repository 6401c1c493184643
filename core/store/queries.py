"""The queries the runs table reads: filters (:class:`RunQuery`), sort orders, the runs table.

The filter language (core/runs/query.py) compiles to a :class:`RunQuery` and ``--sort`` to
:func:`order_clause`; the runs screen and ``mltop runs`` read their table and its column
statistics through :class:`RunsTableQueries`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from mltop.core.store.connection import StoreConnection
from mltop.core.store.schema import (
    RUN_FROM,
)

#: Metric aggregates the runs table can show (metric_summary columns).
RUNS_TABLE_AGGREGATES = ("last", "min", "max", "count")

#: What Run.duration says: none between times that are not valid dates (the caller's
#: ``valid_times`` bounds, passed twice), never negative.
_VALID_DURATION = (
    "CASE WHEN r.start_time BETWEEN ? AND ? AND coalesce(r.end_time, r.updated) BETWEEN ? AND ? "
    "THEN greatest(0, coalesce(r.end_time, r.updated) - r.start_time) END"
)

#: Run attributes :meth:`Store.runs_table` can return, by name, with their SQL.
RUNS_TABLE_ATTRIBUTES = {
    "experiment": "e.name",
    "source_kind": "r.source_kind",
    "location": "r.location",
    "lifecycle": "r.lifecycle",
    "deleted": "coalesce(r.lifecycle = 'deleted', FALSE)",
    "status": "r.status",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "updated": "r.updated",
    "duration": "coalesce(r.end_time, r.updated) - r.start_time",
    "run_duration": _VALID_DURATION,
    "host": "r.host",
    "git_commit": "r.git_commit",
}

# Attributes the runs screen can sort by beyond those of :meth:`Store.runs`.
_BROWSER_ORDER = {
    "host": "lower(r.host)",
    "commit": "r.git_commit",
    "updated": "r.updated",
    "location": "r.location",
}


@dataclass(frozen=True)
class RunQuery:
    """A WHERE fragment over ``runs r`` with its parameters, as produced by the filter language.

    The fragment is built from the parsed structure only; user text travels in ``params``.
    """

    where: str = "TRUE"
    params: tuple[Any, ...] = ()

    def and_(self, other: RunQuery) -> RunQuery:
        """Both filters at once (the runs screen adds an experiment to the typed filter)."""
        if other.where == "TRUE":
            return self
        if self.where == "TRUE":
            return other
        return RunQuery(f"({self.where}) AND ({other.where})", (*self.params, *other.params))

    @staticmethod
    def experiment(experiment_id: str) -> RunQuery:
        """Runs of one experiment, by its store id."""
        return RunQuery("r.experiment_id = ?", (experiment_id,))

    @staticmethod
    def sources(locations: Sequence[str]) -> RunQuery:
        """Runs of these discovered sources (``mltop runs FILE``: the runs read from FILE)."""
        return RunQuery("list_contains(?::VARCHAR[], r.source)", (list(locations),))


_ATTRIBUTE_ORDER = {
    "start": "r.start_time",
    "end": "r.end_time",
    "name": "lower(r.name)",
    "status": "r.status",
    "experiment": "lower(e.name)",
    "source": "r.source_kind",
    "duration": "coalesce(r.end_time, r.updated) - r.start_time",
    "id": "r.id",
}


def parse_order(order: str) -> tuple[str, ...]:
    """``--sort``'s text (``start``, ``metrics.KEY[.AGG]``, ``params.KEY``) as a
    :meth:`RunsTableQueries.runs_table` order: ``("attr", NAME)``, ``("metric", KEY, AGG)`` or
    ``("param", KEY)``."""
    if order in _ATTRIBUTE_ORDER:
        return ("attr", order)
    for prefix in ("metrics.", "metric."):
        if order.startswith(prefix):
            key = order[len(prefix) :]
            for agg in ("min", "max", "last", "count"):
                if key.endswith("." + agg):
                    return ("metric", key[: -len(agg) - 1], agg)
            return ("metric", key, "last")
    for prefix in ("params.", "param."):
        if order.startswith(prefix):
            return ("param", order[len(prefix) :])
    raise ValueError(
        f"cannot sort by {order!r}: use one of {', '.join(sorted(_ATTRIBUTE_ORDER))}, "
        "metrics.KEY or params.KEY"
    )


def order_clause(order: str) -> tuple[list[str], list[Any]]:
    """SQL for ORDER BY over ``runs r``; keys travel as parameters, never as SQL text."""
    parsed = parse_order(order)
    if parsed[0] == "attr":
        return [_ATTRIBUTE_ORDER[parsed[1]]], []
    if parsed[0] == "metric":
        return (
            [
                f"(SELECT ms.{parsed[2]} FROM metric_summary ms "
                "WHERE ms.run_id = r.id AND ms.key = ?)"
            ],
            [parsed[1]],
        )
    return (
        [
            "(SELECT p.num FROM params p WHERE p.run_id = r.id AND p.key = ?)",
            "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = ?)",
        ],
        [parsed[1], parsed[1]],
    )


#: Rows per Arrow batch of :meth:`RunsTableQueries.runs_table_batches`.
LISTING_BATCH = 2048

#: :func:`mltop.core.common.formatting.fmt_value` of a finite DOUBLE ``{0}`` as a DuckDB
#: expression (zero, whole numbers below 1e9, e-notation outside [1e-4, 1e6), else four
#: significant digits): its length is a metric column's exact width, measured in the same scan
#: as the column's other statistics instead of formatting every value in Python.
FMT_VALUE_SQL = (
    "CASE WHEN {0} = 0 THEN '0' "
    "WHEN {0} = trunc({0}) AND abs({0}) < 1e9 THEN CAST(CAST({0} AS BIGINT) AS VARCHAR) "
    "WHEN abs({0}) >= 1e6 OR abs({0}) < 1e-4 THEN printf('%.3e', {0}) "
    "ELSE printf('%.4g', {0}) END"
)

#: Ranges of durations (seconds) within which :func:`fmt_duration`'s text grows with the value,
#: so the longest in each range is the widest it prints (``9.9s``, ``59s``, ``9m59s`` ...).
_DURATION_WIDTHS = (
    (0, 10), (10, 60), (60, 600), (600, 3600), (3600, 36000), (36000, 172800), (172800, 1e10),
)  # fmt: skip


@dataclass(frozen=True)
class RunsSelection:
    """Which runs, in which order, with which columns: what :meth:`RunsTableQueries.runs_table`
    reads, as one value ``mltop runs`` hands to each of its reads (statistics, then rows)."""

    query: RunQuery | None = None
    attributes: Sequence[str] | None = None
    params: Sequence[str] = ()
    metrics: Sequence[tuple[str, str]] = ()
    order: tuple[str, ...] = ("attr", "start")
    descending: bool = True
    limit: int | None = None
    stale_before: float | None = None
    every_value: bool = False
    valid_times: tuple[float, float] | None = None

    def sql(self) -> tuple[str, list[Any], list[str]]:
        """The SQL, its parameters and its column names.

        The runs are filtered (``b``), then sorted and cut to ``limit`` (``s``) before any param
        or metric is joined, so ``--limit 20`` joins twenty rows whatever the store holds.
        """
        return _runs_table_sql(
            self.query, self.attributes, self.params, self.metrics, self.order, self.descending,
            self.limit, self.stale_before, self.every_value, self.valid_times,
        )  # fmt: skip


def _runs_table_sql(
    query: RunQuery | None,
    attributes: Sequence[str] | None,
    params: Sequence[str],
    metrics: Sequence[tuple[str, str]],
    order: tuple[str, ...],
    descending: bool,
    limit: int | None,
    stale_before: float | None,
    every_value: bool,
    valid_times: tuple[float, float] | None,
) -> tuple[str, list[Any], list[str]]:
    query = query or RunQuery()
    attrs = list(RUNS_TABLE_ATTRIBUTES if attributes is None else attributes)
    for name in attrs:
        if name not in RUNS_TABLE_ATTRIBUTES:
            raise ValueError(f"unknown run attribute {name!r}")
    metric_cols = list(metrics)
    for _, agg in metric_cols:
        if agg not in RUNS_TABLE_AGGREGATES:
            raise ValueError(f"unknown metric aggregate {agg!r}")
    stale = "FALSE" if stale_before is None else "coalesce(r.updated, r.start_time) < ?"
    base = [
        "r.id", "r.parent_id", "r.name",
        "CASE WHEN upper(r.status) = 'RUNNING' AND coalesce(" + stale + ", FALSE) "
        "THEN 'stale' ELSE lower(coalesce(r.status, 'FINISHED')) END AS state",
    ]  # fmt: skip
    base_args: list[Any] = [] if stale_before is None else [stale_before]
    base += [f"{RUNS_TABLE_ATTRIBUTES[name]} AS {name}" for name in attrs]
    if "run_duration" in attrs:
        if valid_times is None:
            raise ValueError("run_duration needs the valid_times bounds")
        base_args += [*valid_times, *valid_times]
    names = ["id", "parent_id", "name", "state", *attrs]
    select = [f"s.{n}" for n in names]
    joins: list[str] = []
    join_args: list[Any] = []
    # Keys travel as parameters; aliases are positional, never built from user text.
    for i, key in enumerate(params):
        joins.append(
            f"LEFT JOIN (SELECT run_id, value FROM params WHERE key = ?) p{i} ON p{i}.run_id = s.id"
        )
        join_args.append(key)
        select.append(f"p{i}.value")
        names.append(f"params.{key}")
    for i, (key, agg) in enumerate(metric_cols):
        joins.append(
            f"LEFT JOIN (SELECT run_id, {agg} AS v FROM metric_summary WHERE key = ?) m{i} "
            f"ON m{i}.run_id = s.id"
        )
        join_args.append(key)
        select.append(f"m{i}.v")
        names.append(f"metrics.{key}.{agg}")
    if every_value:
        for alias, table, value, first, second in (
            ("pa", "params", "value", "param_keys", "param_values"),
            ("ma", "metric_summary", "last", "metric_keys", "metric_lasts"),
        ):
            # One list of (key, value) pairs sorted after aggregating, not two lists each
            # ordered inside the aggregate: an ordered aggregate buffers every row of every run
            # first (30 MB more at the peak of `--json` over 50,000 runs, and more CPU).
            joins.append(
                f"LEFT JOIN (SELECT run_id, list_sort(list({{'k': key, 'v': {value}}})) AS kv "
                f"FROM {table} WHERE run_id IN (SELECT id FROM s) GROUP BY run_id) {alias} "
                f"ON {alias}.run_id = s.id"
            )
            select += [
                f"list_transform({alias}.kv, lambda x: x.k)",
                f"list_transform({alias}.kv, lambda x: x.v)",
            ]
            names += [first, second]
    kind = order[0] if order else "attr"
    order_join, order_args = "", []
    if kind == "attr":
        name = order[1] if len(order) > 1 else "start"
        attribute_order = {**_ATTRIBUTE_ORDER, **_BROWSER_ORDER}
        if name not in attribute_order:
            raise ValueError(f"cannot sort by {name!r}")
        base.append(f"{attribute_order[name]} AS _o0")
        order_exprs = ["b._o0"]
    elif kind == "param" and len(order) == 2:
        order_join = (
            "LEFT JOIN (SELECT run_id, num, value FROM params WHERE key = ?) po ON po.run_id = b.id"
        )
        order_args = [order[1]]
        order_exprs = ["po.num", "po.value"]
    elif kind == "metric" and len(order) == 3 and order[2] in RUNS_TABLE_AGGREGATES:
        order_join = (
            f"LEFT JOIN (SELECT run_id, CASE WHEN isnan({order[2]}) THEN NULL "
            f"ELSE {order[2]} END AS v FROM metric_summary WHERE key = ?) mo "
            "ON mo.run_id = b.id"
        )
        order_args = [order[1]]
        order_exprs = ["mo.v"]
    else:
        raise ValueError(f"cannot sort by {order!r}")
    direction = "DESC" if descending else "ASC"
    keys = [f"{expr} AS _k{i}" for i, expr in enumerate(order_exprs)]
    cut = ""
    if limit is not None:
        inner = ", ".join(f"_k{i} {direction} NULLS LAST" for i in range(len(order_exprs)))
        cut = f" ORDER BY {inner}, b.name, b.id LIMIT ?"
        order_args.append(int(limit))
    order_sql = ", ".join(f"s._k{i} {direction} NULLS LAST" for i in range(len(order_exprs)))
    sql = (
        f"WITH b AS (SELECT {', '.join(base)} FROM {RUN_FROM} WHERE {query.where}), "
        f"s AS {'MATERIALIZED ' if every_value else ''}"
        f"(SELECT b.*, {', '.join(keys)} FROM b {order_join}{cut}) "
        f"SELECT {', '.join(select)} FROM s {' '.join(joins)} "
        f"ORDER BY {order_sql}, s.name, s.id"
    )
    return sql, [*base_args, *query.params, *order_args, *join_args], names


class RunsTableQueries(StoreConnection):
    """Reads for the runs browser: the runs table, its column statistics."""

    # -- reads for the runs browser ----------------------------------------------------------------

    def runs_table(
        self,
        query: RunQuery | None = None,
        *,
        attributes: Sequence[str] | None = None,
        params: Sequence[str] = (),
        metrics: Sequence[tuple[str, str]] = (),
        order: tuple[str, ...] = ("attr", "start"),
        descending: bool = True,
        limit: int | None = None,
        stale_before: float | None = None,
    ) -> pa.Table:
        """The runs matching ``query`` as one Arrow table, sorted in SQL, for the runs screen.

        Every row carries ``id``, ``parent_id``, ``name`` and ``state`` (the status in lower
        case, ``stale`` for a RUNNING run silent since before ``stale_before``), then the
        requested ``attributes`` (default: all of :data:`RUNS_TABLE_ATTRIBUTES`), one column per
        param (text, named ``params.KEY``) and one per metric aggregate (``metrics`` holds
        ``(key, aggregate)`` pairs, aggregate one of :data:`RUNS_TABLE_AGGREGATES`; named
        ``metrics.KEY.AGG``, the aggregate always spelled out so no key can be mistaken for one).

        ``order`` is ``("attr", NAME)`` (name, start, duration, status, ...), ``("param", KEY)``
        (numbers before text) or ``("metric", KEY, AGG)``; NaN sorts with the missing values.
        Ties fall back to name and id, so the order is stable between reloads.

        Only the columns asked for cross into Arrow: for 100,000 runs each string column costs
        milliseconds, and the filter is applied before any param or metric is joined.
        """
        sql, args, names = RunsSelection(
            query, attributes, params, metrics, order, descending, limit, stale_before
        ).sql()
        with self._lock:
            table = self._con.sql(sql, params=args).to_arrow_table()
        return table.rename_columns(names)

    def runs_table_batches(
        self, selection: RunsSelection, batch: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """:meth:`runs_table` as Arrow record batches, for ``mltop runs`` to print as they come.

        With ``every_value`` each row also carries all its params and the last value of all its
        metrics, key-sorted lists in ``param_keys``/``param_values`` and
        ``metric_keys``/``metric_lasts`` (``--json`` writes them all, whatever the keys).
        The query runs on a cursor of its own, so the store stays usable between batches; at
        least one batch comes out, empty when nothing matched.
        """
        sql, args, names = selection.sql()
        with self._lock:
            cursor = self._con.cursor()
            try:
                reader = cursor.sql(sql, params=args).to_arrow_reader(batch or LISTING_BATCH)
            except BaseException:
                cursor.close()
                raise
        try:
            empty = True
            for found in reader:
                empty = False
                yield pa.RecordBatch.from_arrays(found.columns, names=names)
            if empty:  # no runs: still a batch, so the caller sees the columns
                yield pa.RecordBatch.from_pylist([], schema=reader.schema).rename_columns(names)
        finally:
            cursor.close()

    def listing_stats(
        self,
        selection: RunsSelection,
        *,
        day: tuple[float, float] = (0.0, 0.0),
        year: tuple[float, float] = (0.0, 0.0),
    ) -> dict[str, Any]:
        """What ``mltop runs`` needs before its first line, over the runs it will list: their
        count, the widest of their text columns, which param and metric keys they have (most
        common first), and enough about the values to size every column without reading them.

        ``day`` and ``year`` are the local bounds of today and of this year (epoch seconds):
        a start time reads differently in each (``13:05``, ``Nov 24 13:05``, ``2024-11-24``),
        so the earliest start in each range stands for the widths that range prints; outside
        the selection's ``valid_times`` a time is not a date at all.
        Text columns say ``plain`` when every value is printable ASCII (one cell a character);
        a metric's widest finite value is measured exactly (:data:`FMT_VALUE_SQL`).
        """
        valid_times = selection.valid_times or (-math.inf, math.inf)
        sql, args, _ = replace(
            selection,
            attributes=["experiment", "status", "source_kind", "start_time", "run_duration"],
            params=(), metrics=(), every_value=False, valid_times=valid_times,
        ).sql()  # fmt: skip
        plain = "NOT coalesce(bool_or(regexp_matches({0}, '[^ -~]')), FALSE)"
        text = ("name", "experiment", "status", "source_kind")
        runs_sql = (
            "SELECT count(*), "
            + ", ".join(f"max(length({c})), {plain.format(c)}" for c in text)
            + ", min(start_time) FILTER (WHERE start_time >= ? AND start_time < ?), "
            "min(start_time) FILTER (WHERE start_time >= ? AND start_time < ? "
            "  AND NOT (start_time >= ? AND start_time < ?)), "
            "min(start_time) FILTER (WHERE start_time BETWEEN ? AND ? "
            "  AND NOT (start_time >= ? AND start_time < ?)), "
            "count(*) FILTER (WHERE start_time IS NULL OR NOT start_time BETWEEN ? AND ?), "
            + ", ".join(
                f"max(run_duration) FILTER (WHERE run_duration >= {lo} AND run_duration < {hi})"
                for lo, hi in _DURATION_WIDTHS
            )
            + ", count(*) FILTER (WHERE run_duration IS NULL) FROM listed"
        )
        bounds = [*day, *year, *day, *valid_times, *year, *valid_times]
        keys_sql = (
            "SELECT key, count(*), count(DISTINCT value), max(length(value)), "
            f"{plain.format('value')} FROM params WHERE run_id IN (SELECT id FROM listed) "
            "GROUP BY key ORDER BY count(*) DESC, key"
        )
        metrics_sql = (
            "SELECT key, count(*), min(last) FILTER (WHERE NOT isnan(last)), "
            "max(last) FILTER (WHERE NOT isnan(last)), bool_or(isnan(last)), "
            f"max(length({FMT_VALUE_SQL.format('last')})) FILTER (WHERE isfinite(last)) "
            "FROM metric_summary WHERE run_id IN (SELECT id FROM listed) "
            "GROUP BY key ORDER BY count(*) DESC, key"
        )
        with self._lock:
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE listed AS {sql}", args)
            try:
                runs = self._con.execute(runs_sql, bounds).fetchall()[0]
                params = self._con.execute(keys_sql).fetchall()
                metrics = self._con.execute(metrics_sql).fetchall()
            finally:
                self._con.execute("DROP TABLE IF EXISTS listed")
        count = int(runs[0])
        widths = {c: (runs[1 + 2 * i] or 0, bool(runs[2 + 2 * i])) for i, c in enumerate(text)}
        return {
            "count": count,
            "text": widths,
            "start": (runs[9], runs[10], runs[11], runs[12] > 0),
            "durations": [d for d in runs[13:-1] if d is not None],
            "no_duration": runs[-1] > 0,
            # key: (runs having it, distinct values, longest value, all plain)
            "params": {r[0]: (int(r[1]), int(r[2]), r[3] or 0, bool(r[4])) for r in params},
            # key: (runs having it, least, greatest, any NaN, the most characters a finite
            # value takes as fmt_value writes it)
            "metrics": {r[0]: (int(r[1]), *r[2:4], bool(r[4]), r[5] or 0) for r in metrics},
        }

    def param_key_stats(self) -> list[tuple[str, int, int]]:
        """(key, runs having it, distinct values) per param key, most common first.

        The runs screen shows params that tell runs apart: a key with one value everywhere
        says nothing in a column.
        """
        with self._lock:
            rows = self._con.execute(
                "SELECT key, count(*) AS n, count(DISTINCT value) AS d FROM params "
                "GROUP BY key ORDER BY n DESC, key"
            ).fetchall()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    def run_stats(self, stale_before: float) -> dict[str, Any]:
        """Counts for the runs screen's header: total, running, stale and runs per source kind.

        A RUNNING run whose last sign of life (``updated``, else its start) is older than
        ``stale_before`` (epoch seconds) counts as stale, not running: its job most likely died
        without writing a final status.
        """
        with self._lock:
            rows = self._con.execute(
                "SELECT source_kind, count(*), "
                "count(*) FILTER (WHERE upper(status) = 'RUNNING' "
                "  AND NOT coalesce(coalesce(updated, start_time) < ?, FALSE)), "
                "count(*) FILTER (WHERE upper(status) = 'RUNNING' "
                "  AND coalesce(coalesce(updated, start_time) < ?, FALSE)) "
                "FROM runs GROUP BY source_kind ORDER BY source_kind",
                [stale_before, stale_before],
            ).fetchall()
        return {
            "total": sum(int(r[1]) for r in rows),
            "running": sum(int(r[2]) for r in rows),
            "stale": sum(int(r[3]) for r in rows),
            "by_kind": {r[0]: int(r[1]) for r in rows},
        }

    def running_run_traces(
        self,
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str | None, str, str]]]:
        """What ties a process to a RUNNING run (see mltop.core.system.processes).

        The files each running run is read from or logs to, as ``(run_id, path)`` (the files
        and logs tables); and the working directory and command line its writer recorded, as
        ``(run_id, host, cwd, cmdline)`` from the ``mltop.cwd`` and ``mltop.cmdline`` tags.
        """
        running = "SELECT id FROM runs WHERE upper(status) = 'RUNNING'"
        with self._lock:
            files = self._con.execute(
                f"SELECT run_id, path FROM files WHERE run_id IN ({running}) "
                f"UNION SELECT run_id, path FROM logs WHERE run_id IN ({running})"
            ).fetchall()
            commands = self._con.execute(
                "SELECT r.id, r.host, c.value, a.value FROM runs r "
                "JOIN tags c ON c.run_id = r.id AND c.key = 'mltop.cwd' "
                "JOIN tags a ON a.run_id = r.id AND a.key = 'mltop.cmdline' "
                "WHERE upper(r.status) = 'RUNNING'"
            ).fetchall()
        return [(r[0], r[1]) for r in files], [(r[0], r[1], r[2], r[3]) for r in commands]

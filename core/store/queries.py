"""The queries the runs table reads: filters (:class:`RunQuery`), sort orders, the runs table.

The filter language (core/runs/query.py) compiles to a :class:`RunQuery` and ``--sort`` to
:func:`order_clause`; the runs screen and ``mltop runs`` read their table and its column
statistics through :class:`RunsTableQueries`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mltop.core.store.connection import StoreConnection
from mltop.core.store.schema import (
    RUN_FROM,
)

#: Metric aggregates the runs table can show (metric_summary columns).
RUNS_TABLE_AGGREGATES = ("last", "min", "max", "count")
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


def order_clause(order: str) -> tuple[list[str], list[Any]]:
    """SQL for ORDER BY over ``runs r``; keys travel as parameters, never as SQL text."""
    if order in _ATTRIBUTE_ORDER:
        return [_ATTRIBUTE_ORDER[order]], []
    for prefix in ("metrics.", "metric."):
        if order.startswith(prefix):
            key = order[len(prefix) :]
            column = "last"
            for agg in ("min", "max", "last", "count"):
                if key.endswith("." + agg):
                    key, column = key[: -len(agg) - 1], agg
                    break
            return (
                [
                    f"(SELECT ms.{column} FROM metric_summary ms "
                    "WHERE ms.run_id = r.id AND ms.key = ?)"
                ],
                [key],
            )
    for prefix in ("params.", "param."):
        if order.startswith(prefix):
            key = order[len(prefix) :]
            return (
                [
                    "(SELECT p.num FROM params p WHERE p.run_id = r.id AND p.key = ?)",
                    "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = ?)",
                ],
                [key, key],
            )
    raise ValueError(
        f"cannot sort by {order!r}: use one of {', '.join(sorted(_ATTRIBUTE_ORDER))}, "
        "metrics.KEY or params.KEY"
    )


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
        names = ["id", "parent_id", "name", "state", *attrs]
        select = [f"b.{n}" for n in names]
        joins: list[str] = []
        join_args: list[Any] = []
        # Keys travel as parameters; aliases are positional, never built from user text.
        for i, key in enumerate(params):
            joins.append(
                f"LEFT JOIN (SELECT run_id, value FROM params WHERE key = ?) p{i} "
                f"ON p{i}.run_id = b.id"
            )
            join_args.append(key)
            select.append(f"p{i}.value")
            names.append(f"params.{key}")
        for i, (key, agg) in enumerate(metric_cols):
            joins.append(
                f"LEFT JOIN (SELECT run_id, {agg} AS v FROM metric_summary WHERE key = ?) m{i} "
                f"ON m{i}.run_id = b.id"
            )
            join_args.append(key)
            select.append(f"m{i}.v")
            names.append(f"metrics.{key}.{agg}")
        kind = order[0] if order else "attr"
        if kind == "attr":
            name = order[1] if len(order) > 1 else "start"
            attribute_order = {**_ATTRIBUTE_ORDER, **_BROWSER_ORDER}
            if name not in attribute_order:
                raise ValueError(f"cannot sort by {name!r}")
            base.append(f"{attribute_order[name]} AS _o0")
            order_exprs = ["b._o0"]
        elif kind == "param" and len(order) == 2:
            joins.append(
                "LEFT JOIN (SELECT run_id, num, value FROM params WHERE key = ?) po "
                "ON po.run_id = b.id"
            )
            join_args.append(order[1])
            order_exprs = ["po.num", "po.value"]
        elif kind == "metric" and len(order) == 3 and order[2] in RUNS_TABLE_AGGREGATES:
            joins.append(
                f"LEFT JOIN (SELECT run_id, CASE WHEN isnan({order[2]}) THEN NULL "
                f"ELSE {order[2]} END AS v FROM metric_summary WHERE key = ?) mo "
                "ON mo.run_id = b.id"
            )
            join_args.append(order[1])
            order_exprs = ["mo.v"]
        else:
            raise ValueError(f"cannot sort by {order!r}")
        direction = "DESC" if descending else "ASC"
        order_sql = ", ".join(f"{expr} {direction} NULLS LAST" for expr in order_exprs)
        sql = (
            f"WITH b AS (SELECT {', '.join(base)} FROM {RUN_FROM} WHERE {query.where}) "
            f"SELECT {', '.join(select)} FROM b {' '.join(joins)} "
            f"ORDER BY {order_sql}, b.name, b.id"
        )
        args = [*base_args, *query.params, *join_args]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            table = self._con.sql(sql, params=args).to_arrow_table()
        return table.rename_columns(names)

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

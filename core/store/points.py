"""Metric points and their summaries: point writes, live folding, histories and overlays.

``metric_summary`` keeps one row per (run, metric) so the runs table never aggregates whole
histories; live imports fold each batch into it from the batch's own summary (see
:meth:`PointTables.fold_into_summaries`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.entities import (
    MetricSummary,
)
from mltop.core.store.connection import StoreConnection
from mltop.core.store.schema import (
    POINTS_SCHEMA,
    SUMMARY_COLUMNS,
    SUMMARY_SELECT,
)
from mltop.core.store.summaries import (
    batch_summaries,
    fold_summaries,
    summarise_points,
    summary_table,
)


class PointTables(StoreConnection):
    """The ``metrics`` and ``metric_summary`` tables."""

    # -- writes: metric points ---------------------------------------------------------------------

    def add_points(self, points: pa.Table) -> int:
        """Append metric points (columns of :data:`POINTS_SCHEMA`). Returns rows added."""
        if points.num_rows == 0:
            return 0
        # One chunk: DuckDB inserts an Arrow table of many chunks on several threads, each
        # writing row groups of its own that the commit then merges and writes again. A first
        # import of 1,000 runs (500,000 points in DuckDB's chunks of 131,072 rows) committed in
        # 0.09 s into a 10.2 MB store; in one chunk, 0.015 s into 6.7 MB.
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA).combine_chunks()
        with self._lock:
            self._con.register("_new_points", points)
            try:
                self._con.execute(
                    "INSERT INTO metrics SELECT run_id, key, step, ts, value FROM _new_points"
                )
            finally:
                self._con.unregister("_new_points")
        return points.num_rows

    def add_new_points(self, points: pa.Table) -> int:
        """Append only the points the store does not hold yet; returns rows added.

        For sources that can only re-send a whole history (a tracking server's API): a point
        counts as held when a stored one of the same run and key has the same step, time and
        value (NaN equals NaN, a missing time equals a missing time). Repeats are matched one to
        one, so a history that really logs the same point twice keeps both copies.
        """
        if points.num_rows == 0:
            return 0
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA)
        same = (
            "o.run_id = n.run_id AND o.key = n.key AND o.step = n.step "
            "AND o.ts IS NOT DISTINCT FROM n.ts AND o.value IS NOT DISTINCT FROM n.value "
            "AND o.k = n.k"
        )
        with self._lock:
            self._con.register("_cand_points", points)
            try:
                rows = self._con.execute(
                    f"""
                    INSERT INTO metrics
                    WITH n AS (
                        SELECT run_id, key, step, ts, value, row_number() OVER
                            (PARTITION BY run_id, key, step, ts, value) AS k
                        FROM _cand_points
                    ),
                    o AS (
                        SELECT run_id, key, step, ts, value, row_number() OVER
                            (PARTITION BY run_id, key, step, ts, value) AS k
                        FROM metrics
                        WHERE run_id IN (SELECT DISTINCT run_id FROM _cand_points)
                          AND key IN (SELECT DISTINCT key FROM _cand_points)
                    )
                    SELECT n.run_id, n.key, n.step, n.ts, n.value FROM n
                    WHERE NOT EXISTS (SELECT 1 FROM o WHERE {same})
                    """
                ).fetchall()
            finally:
                self._con.unregister("_cand_points")
        return int(rows[0][0]) if rows else 0

    def delete_points(self, run_ids: Iterable[str], keys: Iterable[str] | None = None) -> None:
        """Forget histories of these runs (all keys, or only ``keys``) before a re-read (a run
        marked new in this transaction has none: see ``mark_new_runs``)."""
        run_ids = self._old_only(run_ids)
        keys = None if keys is None else list(keys)
        if keys == [] or not run_ids:
            return
        with self._lock, self._matching("run_id", run_ids, "_pt_runs") as (by_run, args):
            self._note_cut(run_ids, keys)
            if keys is None:
                self._con.execute(f"DELETE FROM metrics WHERE {by_run}", args)
            else:
                with self._matching("key", keys, "_pt_keys") as (by_key, key_args):
                    self._con.execute(
                        f"DELETE FROM metrics WHERE {by_run} AND {by_key}", args + key_args
                    )

    def _note_cut(self, run_ids: Iterable[str], keys: Iterable[str] | None) -> None:
        """Remember, for update_summaries, that these runs' points (or these keys') were deleted
        in the open transaction. Called with the lock held."""
        cut = self._cut_histories
        if cut is None:
            return
        for run_id in run_ids:
            noted = cut.get(run_id, set())
            cut[run_id] = None if keys is None or noted is None else noted | set(keys)

    def update_summaries(self, run_ids: Iterable[str], appended: Sequence[pa.Table]) -> None:
        """Bring the summaries of ``run_ids`` up to date after their points were written.

        ``appended`` are the tables given to :meth:`add_points` in this transaction. Following a
        live run, summarising its whole history again every batch costs ~70 ms a batch at a
        million points; appended points fold into the stored summaries instead
        (:meth:`fold_into_summaries`). Folding is only right while every stored point is still
        there, so a run any of whose points were deleted in this transaction (a history read
        anew, a metric re-read, a run replaced) is summarised from its history, and so is every
        run when this is called outside :meth:`transaction` (no one can tell what was deleted).
        A run with neither deleted nor appended points keeps its summaries: they still match.
        """
        wanted = set(run_ids)
        cut = self._cut_histories
        if cut is None:
            self.refresh_summaries(sorted(wanted))
            return
        new = wanted & self._new_runs
        if new:
            self._insert_new_summaries(new, appended)
            wanted -= new
            if not wanted:
                return
        whole = {r for r in wanted if r in cut and cut[r] is None}
        keyed = {r: keys for r in wanted - whole if (keys := cut.get(r))}
        self.refresh_summaries(sorted(whole))
        for run_id, keys in sorted(keyed.items()):
            self.refresh_summaries([run_id], sorted(keys))
        tables = [t for t in appended if t.num_rows]
        if not tables or not wanted - whole:
            return  # a first import reads every history anew: nothing to fold, nothing to cast
        foldable = pa.array(sorted(wanted - whole), pa.string())
        points = pa.concat_tables(
            [t.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA) for t in tables]
        )
        keep = pc.is_in(points.column("run_id"), value_set=foldable)
        for run_id, keys in keyed.items():  # those keys were summarised from their histories
            redone = pc.and_(
                pc.equal(points.column("run_id"), run_id),
                pc.is_in(points.column("key"), value_set=pa.array(sorted(keys), pa.string())),
            )
            keep = pc.and_(keep, pc.invert(redone))
        self.fold_into_summaries(points.filter(keep))

    def _insert_new_summaries(self, run_ids: set[str], appended: Sequence[pa.Table]) -> None:
        """Summarise runs written for the first time (see ``mark_new_runs``) from the points
        appended in this transaction alone: there is no stored row to fold into or delete.

        With numpy where it can (:func:`summarise_points`: 0.55-0.64 s of CPU against DuckDB's
        0.96-1.13 s for the 3M points of a 100,000-run MLflow import), else in one SQL grouping.
        """
        tables = [t for t in appended if t.num_rows]
        if not tables:
            return
        points = pa.concat_tables(
            [t.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA) for t in tables]
        )
        summaries = summarise_points(points)
        if summaries is not None:
            runs = summaries.column("run_id")
            if not set(pc.unique(runs).to_pylist()) <= run_ids:
                wanted = pa.array(sorted(run_ids), pa.string())
                summaries = summaries.filter(pc.is_in(runs, value_set=wanted))
            with self._lock:
                self._con.register("_new_summaries", summaries)
                try:
                    self._con.execute(
                        f"INSERT INTO metric_summary SELECT {SUMMARY_COLUMNS} FROM _new_summaries"
                    )
                finally:
                    self._con.unregister("_new_summaries")
            return
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._lock)
            where, args = "", []
            # A first import's points are all of new runs: matching each point's run against
            # the set was a fifth of the grouping.
            if not set(pc.unique(points.column("run_id")).to_pylist()) <= run_ids:
                match, args = stack.enter_context(
                    self._matching("run_id", run_ids, "_new_sum_runs")
                )
                where = f"WHERE {match}"
            self._con.register("_new_sum_points", points)
            try:
                self._con.execute(
                    "INSERT INTO metric_summary "
                    + SUMMARY_SELECT.format(table="_new_sum_points", where=where),
                    args,
                )
            finally:
                self._con.unregister("_new_sum_points")

    def refresh_summaries(self, run_ids: Iterable[str], keys: Iterable[str] | None = None) -> None:
        """Recompute metric_summary for these runs (all their keys, or only ``keys``) from their
        full histories, in SQL."""
        run_ids = list(run_ids)
        if not run_ids:
            return
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._lock)
            where, args = stack.enter_context(self._matching("run_id", run_ids, "_sum_runs"))
            if keys is not None:
                by_key, key_args = stack.enter_context(self._matching("key", keys, "_sum_keys"))
                where, args = f"{where} AND {by_key}", args + key_args
            self._con.execute(f"DELETE FROM metric_summary WHERE {where}", args)
            self._con.execute(
                "INSERT INTO metric_summary "
                + SUMMARY_SELECT.format(table="metrics", where=f"WHERE {where}"),
                args,
            )

    def fold_into_summaries(self, points: pa.Table) -> None:
        """Bring metric_summary up to date with points just appended to runs' histories.

        :meth:`refresh_summaries` reads whole histories: a live run with a million points
        would cost ~50 ms every batch. Appended points are summarised alone and folded into
        the stored rows in Python (a few rows per run); a run whose new points share the
        highest step with its stored ones (which one is "last" then depends on times the
        summary does not keep) is recomputed from its history instead.
        """
        if points.num_rows == 0:
            return
        points = points.select([f.name for f in POINTS_SCHEMA]).cast(POINTS_SCHEMA)
        fresh = batch_summaries(points)
        run_ids = list(dict.fromkeys(r.run_id for r in fresh))
        with self._lock:
            rows = {
                (run_id, key): summary
                for run_id, by_key in self.summaries(run_ids).items()
                for key, summary in by_key.items()
            }
            recompute: set[str] = set()
            for new in fresh:
                old = rows.get((new.run_id, new.key))
                merged = new if old is None else fold_summaries(old, new)
                if merged is None:
                    recompute.add(new.run_id)
                else:
                    rows[(new.run_id, new.key)] = merged
            folded = [r for r in rows.values() if r.run_id not in recompute]
            with self._matching("run_id", set(run_ids) - recompute, "_fold_done") as (w, a):
                self._con.execute(f"DELETE FROM metric_summary WHERE {w}", a)
            if folded:
                self._con.register("_folded", summary_table(folded))
                try:
                    self._con.execute("INSERT INTO metric_summary SELECT * FROM _folded")
                finally:
                    self._con.unregister("_folded")
            if recompute:
                self.refresh_summaries(recompute)

    def summaries(self, run_ids: Sequence[str]) -> dict[str, dict[str, MetricSummary]]:
        """Metric summaries of several runs: {run_id: {key: summary}}."""
        out: dict[str, dict[str, MetricSummary]] = {r: {} for r in run_ids}
        with self._lock, self._matching("run_id", run_ids, "_ms_runs") as (where, args):
            rows = self._con.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM metric_summary WHERE {where} ORDER BY key",
                args,
            ).fetchall()
        for row in rows:
            out[row[0]][row[1]] = MetricSummary(*row)
        return out

    def metric_keys(self) -> list[str]:
        with self._lock:
            return [
                r[0]
                for r in self._con.execute(
                    "SELECT key FROM metric_summary GROUP BY key ORDER BY count(*) DESC, key"
                ).fetchall()
            ]

    def history(self, run_id: str, key: str) -> pa.Table:
        """The full history of one metric, ordered by step (step, ts, value)."""
        with self._lock:
            return self._con.sql(
                "SELECT step, ts, value FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY step, ts",
                params=[run_id, key],
            ).to_arrow_table()

    def point_count(self, run_id: str | None = None) -> int:
        with self._lock:
            if run_id is None:
                row = self._con.execute("SELECT count(*) FROM metrics").fetchall()
            else:
                row = self._con.execute(
                    "SELECT count(*) FROM metrics WHERE run_id = ?", [run_id]
                ).fetchall()
        return int(row[0][0]) if row else 0

    def history_buckets(
        self,
        run_id: str,
        key: str,
        buckets: int,
        x: str = "step",
        timeline: Sequence[str] = (),
    ) -> pa.Table:
        """One metric's history cut into at most ``buckets`` equal slices of x, in SQL.

        A chart ``buckets`` dots wide draws one slice per dot column; keeping each slice's min
        and max (not a sample) means a single spike among a million points stays visible.
        ``x`` is ``"step"`` or ``"time"`` (epoch seconds; points without a time are left out).

        With ``timeline`` (the run's model metric keys) and ``x="step"``, each point's step is
        the training step the run had reached at the point's time, read from those metrics'
        (time, step) pairs: system metrics count samples, not steps (MLflow logs them at step
        0, 1, 2...), and are charted against the steps of the model they ran beside. Points
        from before the first step go to it; where the timeline has no times (a Lightning CSV)
        the points keep their own steps.

        Columns: bucket (0..buckets-1, proportional to x), x_min, x_max, y_min, y_max, y_mean
        (of finite values only; NaN when the slice has none, never null, so the columns convert
        to numpy without copies), y_last (value at the slice's highest x, the latest write of
        it, NaN kept), n (points),
        nonfinite (NaN/inf points).
        """
        columns = {"step": "CAST(step AS DOUBLE)", "time": "ts"}
        # A step (or time) logged more than once ends on its latest write, as the summary's
        # "last" does: the chart's last value is the panel's and the tracker's own.
        tiebreak = {"step": "coalesce(ts, 0)", "time": "step"}
        if x not in columns:
            raise ValueError(f"x must be 'step' or 'time', not {x!r}")
        buckets = max(1, int(buckets))
        params: list[Any] = [run_id, key]
        source = "metrics"
        if timeline and x == "step":
            source = """(
                WITH line AS (
                    SELECT ts, max(step) AS step FROM metrics
                    WHERE run_id = ? AND key IN (SELECT unnest(?::VARCHAR[])) AND ts IS NOT NULL
                    GROUP BY ts
                ),
                own AS (SELECT * FROM metrics WHERE run_id = ? AND key = ?)
                SELECT own.run_id, own.key, own.ts, own.value,
                       CASE WHEN (SELECT count(*) FROM line) = 0 THEN own.step
                            ELSE coalesce(line.step, (SELECT min(step) FROM line)) END AS step
                FROM own ASOF LEFT JOIN line ON own.ts >= line.ts
            )"""
            params = [run_id, list(timeline), run_id, key, *params]
        # Non-finite values become NULL in fy, so the plain aggregates skip them (cheaper than
        # FILTER clauses: this query reads every point of the history).
        sql = f"""
            WITH pts AS (
                SELECT {columns[x]} AS x, value AS y,
                       CASE WHEN isfinite(value) THEN value END AS fy,
                       {tiebreak[x]} AS tie
                FROM {source}
                WHERE run_id = ? AND key = ? AND {columns[x]} IS NOT NULL
            ),
            span AS (SELECT min(x) AS lo, max(x) AS hi FROM pts)
            SELECT CASE WHEN span.hi > span.lo
                        THEN least(CAST(floor((x - span.lo) / (span.hi - span.lo) * ?) AS BIGINT),
                                   ? - 1)
                        ELSE 0 END AS bucket,
                   min(x) AS x_min, max(x) AS x_max,
                   coalesce(min(fy), 'NaN'::DOUBLE) AS y_min,
                   coalesce(max(fy), 'NaN'::DOUBLE) AS y_max,
                   coalesce(avg(fy), 'NaN'::DOUBLE) AS y_mean,
                   arg_max(y, (x, tie)) AS y_last,
                   count(*) AS n,
                   count(*) - count(fy) AS nonfinite
            FROM pts, span
            GROUP BY bucket ORDER BY bucket
        """
        with self._lock:
            return self._con.sql(sql, params=[*params, buckets, buckets]).to_arrow_table()

    def overlay_points(
        self,
        run_ids: Sequence[str],
        key: str,
        *,
        x: str = "step",
        buckets: int = 200,
        x_range: tuple[float | None, float | None] = (None, None),
    ) -> pa.Table:
        """One metric of several runs on a common x axis, at most ``buckets`` points per run.

        ``x`` is ``"step"``, ``"time"`` (the point's epoch seconds) or ``"relative"`` (seconds
        since the run's start, else since its first point). Buckets split the x range shared by
        all runs (``x_range`` narrows it, for zooming) into equal widths, so every run is sampled
        at the same horizontal resolution; a run with no more points than ``buckets`` keeps each
        point. A bucket's ``y`` is the mean of its finite values (NaN or ±inf when it has none),
        ``y_min``/``y_max`` its extremes, ``step`` its last step.

        Columns: ord (position in ``run_ids``), run_id, x, y, y_min, y_max, step, n (points in
        the bucket), nonfinite, total (points of the run for ``key``), placed (those with an x in
        range). A run with points but none placed has one row with null x; a run without the
        metric has no row. Rows are ordered by ord, then x.
        """
        x_exprs = {
            "step": "CAST(p.step AS DOUBLE)",
            "time": "p.ts",
            "relative": "p.ts - o.t0",
        }
        if x not in x_exprs:
            raise ValueError(f"x must be one of {', '.join(x_exprs)}, not {x!r}")
        buckets = max(1, int(buckets))
        lo, hi = x_range
        ids = list(dict.fromkeys(run_ids))
        selected = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "ord": pa.array(range(len(ids)), pa.int64()),
            }
        )
        # Relative time needs each run's origin: its recorded start, else its first point.
        origin = (
            """, origin AS (
                SELECT r.id AS run_id, coalesce(any_value(r.start_time), min(p.ts)) AS t0
                FROM runs r JOIN raw p ON p.run_id = r.id GROUP BY r.id
            )"""
            if x == "relative"
            else ""
        )
        origin_join = "JOIN origin o ON o.run_id = p.run_id" if x == "relative" else ""
        # A run with few points keeps them all: its bucket is the point's own (negated) rowid,
        # which is unique without the cost of a window function.
        sql = f"""
            WITH raw AS (
                SELECT m.rowid AS rid, m.run_id, m.step, m.ts, m.value FROM metrics m
                WHERE m.key = ? AND m.run_id IN (SELECT id FROM _ov_runs)
            ){origin},
            pts AS (
                SELECT p.rid, p.run_id, p.step, p.value, {x_exprs[x]} AS x
                FROM raw p {origin_join}
            ),
            flagged AS MATERIALIZED (
                SELECT *, coalesce(isfinite(x)
                          AND (CAST(? AS DOUBLE) IS NULL OR x >= ?)
                          AND (CAST(? AS DOUBLE) IS NULL OR x <= ?), FALSE) AS placed
                FROM pts
            ),
            stats AS (
                SELECT run_id, count(*) AS total, count(*) FILTER (WHERE placed) AS placed
                FROM flagged GROUP BY run_id
            ),
            bounds AS (
                SELECT coalesce(CAST(? AS DOUBLE), min(x)) AS lo,
                       coalesce(CAST(? AS DOUBLE), max(x)) AS hi
                FROM flagged WHERE placed
            ),
            bucketed AS (
                SELECT f.run_id, f.step, f.value, f.x,
                       CASE WHEN s.placed <= ? THEN -1 - f.rid
                            WHEN b.hi <= b.lo THEN 0
                            ELSE least(CAST(floor((f.x - b.lo) / (b.hi - b.lo) * ?) AS BIGINT),
                                       ? - 1)
                       END AS bucket
                FROM flagged f JOIN stats s ON s.run_id = f.run_id CROSS JOIN bounds b
                WHERE f.placed
            ),
            agg AS (
                SELECT run_id,
                       avg(x) AS x,
                       coalesce(avg(value) FILTER (WHERE isfinite(value)),
                                max(value) FILTER (WHERE NOT isfinite(value))) AS y,
                       min(value) FILTER (WHERE NOT isnan(value)) AS y_min,
                       max(value) FILTER (WHERE NOT isnan(value)) AS y_max,
                       max(step) AS step,
                       count(*) AS n,
                       count(*) FILTER (WHERE NOT isfinite(value)) AS nonfinite
                FROM bucketed GROUP BY run_id, bucket
            )
            SELECT o.ord, st.run_id, a.x, a.y, a.y_min, a.y_max, a.step, a.n, a.nonfinite,
                   st.total, st.placed
            FROM stats st JOIN _ov_runs o ON o.id = st.run_id
            LEFT JOIN agg a ON a.run_id = st.run_id
            ORDER BY o.ord, a.x NULLS LAST, a.step
        """
        args = [key, lo, lo, hi, hi, lo, hi, buckets, buckets, buckets]
        with self._lock:
            self._con.register("_ov_runs", selected)
            try:
                return self._con.sql(sql, params=args).to_arrow_table()
            finally:
                self._con.unregister("_ov_runs")

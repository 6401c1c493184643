"""A first import's metric summaries, computed with numpy, are exactly what the SQL says."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
import pytest
from conftest import summary_rows
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mltop.core.entities import RunRecord
from mltop.core.store import open_memory_store, summaries
from mltop.core.store.schema import SUMMARY_COLUMNS, SUMMARY_SELECT
from mltop.core.store.summaries import summarise_points

Row = tuple[str, str, int, float | None, float]

_RUNS = ["r", "rün 2", ""]
_KEYS = ["loss", "acc"]
# Whole numbers repeat (a min or max reached twice: its step is the first that reached it),
# beside NaN and both infinities, which min and max skip and "last" keeps.
_values = st.one_of(
    st.integers(-3, 3).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
_times = st.one_of(st.none(), st.integers(0, 10**6).map(lambda t: t / 8))
_rows = st.lists(
    st.tuples(st.sampled_from(_RUNS), st.sampled_from(_KEYS), st.integers(0, 6), _times, _values),
    min_size=1,
    max_size=40,
)


def _table(rows: list[Row]) -> pa.Table:
    return pa.table(
        {
            "run_id": pa.array([r[0] for r in rows], pa.string()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "ts": pa.array([r[3] for r in rows], pa.float64()),
            "value": pa.array([r[4] for r in rows], pa.float64()),
        }
    )


def _by_sql(points: pa.Table) -> list[tuple]:
    con = duckdb.connect()
    con.register("points", points)
    return _sorted(con.sql(SUMMARY_SELECT.format(table="points", where="")).fetchall())


def _sorted(rows: list[tuple]) -> list[tuple]:
    """Rows in (run, key) order with NaN spelled so that it equals itself."""
    return sorted(tuple("nan" if v != v else v for v in row) for row in rows)


def _no_ties(rows: list[Row]) -> bool:
    """Whether each history's highest (step, time) is held by one point: where two share it,
    SQL's "last" is whichever it meets first, an order no one can predict."""
    held = [(r[0], r[1], r[2], r[3] or 0.0) for r in rows]
    return len(held) == len(set(held))


@settings(max_examples=200, deadline=None)
@given(rows=_rows, grouped=st.booleans())
def test_numpy_summaries_equal_the_sql_ones(rows: list[Row], grouped: bool) -> None:
    assume(_no_ties(rows))
    if grouped:  # as importers hand points over; else a history's points are interleaved
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
    points = _table(rows)
    got = summarise_points(points)
    assert got is not None
    assert got.column_names == SUMMARY_COLUMNS.split(", ")
    assert _sorted([tuple(r.values()) for r in got.to_pylist()]) == _by_sql(points)


@pytest.mark.parametrize(
    "damage",
    [
        ("value", pa.array([1.0, None], pa.float64())),
        ("step", pa.array([0, None], pa.int64())),
        ("ts", pa.array([1.0, math.nan], pa.float64())),
        ("ts", pa.array([math.inf, 1.0], pa.float64())),
        ("run_id", pa.array(["r", None], pa.string())),
        ("key", pa.array([None, "loss"], pa.string())),
    ],
    ids=["null value", "null step", "NaN time", "infinite time", "null run", "null key"],
)
def test_points_whose_order_only_sql_defines_are_left_to_sql(damage: tuple[str, pa.Array]) -> None:
    points = _table([("r", "loss", 0, 1.0, 1.0), ("r", "loss", 1, 2.0, 2.0)])
    name, column = damage
    points = points.set_column(points.column_names.index(name), name, column)
    assert summarise_points(points) is None


def test_more_points_than_numpy_takes_at_once_are_left_to_sql(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = _table([("r", "loss", s, float(s), 1.0) for s in range(5)])
    monkeypatch.setattr(summaries, "SUMMARISE_UP_TO", 4)
    assert summarise_points(points) is None
    monkeypatch.setattr(summaries, "SUMMARISE_UP_TO", 5)
    assert summarise_points(points) is not None


@pytest.mark.parametrize("value", [None, 0.5], ids=["null value", "plain"])
def test_a_first_import_stores_the_summaries_a_full_recompute_gives(value: float | None) -> None:
    # A new run's summaries come from its points alone, with numpy or (for a point SQL alone
    # orders) in SQL; a re-computation from the stored history says the same.
    rows: list[tuple] = [
        ("a", "loss", 2, 3.0, 0.2),
        ("b", "loss", 0, None, math.nan),
        ("a", "loss", 0, 1.0, 0.9),
        ("a", "acc", 1, 2.0, value),
        ("a", "loss", 1, 2.0, -math.inf),
    ]
    points = _table(rows)  # type: ignore[arg-type]
    imported, recomputed = open_memory_store(), open_memory_store()
    for store in (imported, recomputed):
        with store.transaction():
            store.mark_new_runs(["a", "b"])
            store.put_runs(
                None, [RunRecord(id=r, source_kind="test", location=r, name=r) for r in "ab"]
            )
            store.add_points(points)
            if store is imported:
                store.update_summaries(["a", "b"], [points])
            else:
                store.refresh_summaries(["a", "b"])
    assert summary_rows(imported, ["a", "b"]) == summary_rows(recomputed, ["a", "b"])
    loss = imported.summaries(["a"])["a"]["loss"]
    assert (loss.last, loss.min, loss.min_step, loss.count, loss.last_time) == (
        0.2,
        0.2,
        2,
        3,
        3.0,
    )


def test_points_of_runs_already_held_are_not_summarised_as_new() -> None:
    # One transaction writes a new run and appends to a held one: only the new run's summary
    # comes from the appended points; the held one's is folded into what it had.
    store = open_memory_store()
    with store.transaction():
        store.put_runs(None, [RunRecord(id="old", source_kind="test", location="o", name="o")])
        first = _table([("old", "loss", 0, 1.0, 5.0)])
        store.add_points(first)
        store.update_summaries(["old"], [first])
    with store.transaction():
        store.mark_new_runs(["new"])
        store.put_runs(None, [RunRecord(id="new", source_kind="test", location="n", name="n")])
        more = _table([("old", "loss", 1, 2.0, 4.0), ("new", "loss", 0, 1.0, 3.0)])
        store.add_points(more)
        store.update_summaries(["old", "new"], [more])
    summaries = store.summaries(["old", "new"])
    assert (summaries["old"]["loss"].count, summaries["old"]["loss"].min) == (2, 4.0)
    assert (summaries["new"]["loss"].count, summaries["new"]["loss"].last) == (1, 3.0)

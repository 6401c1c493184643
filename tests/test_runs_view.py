"""What the runs screen asks of core: columns, sorting and filtering in SQL, staleness, nesting,
and downsampled histories (min/max per bucket keeps spikes)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import write_run

from mltop.core.discovery import ingest
from mltop.core.entities import RunRecord, Status
from mltop.core.runs.query import compile_query
from mltop.core.runs.runs_view import (
    Column,
    ValuesCache,
    available_columns,
    default_columns,
    load_runs,
    metric_goal,
    nest,
)
from mltop.core.store import RunQuery, Store, open_memory_store, open_store

NOW = 1_800_000_000.0


def _names(view) -> list[str]:  # type: ignore[no-untyped-def]
    return view.table.column("name").to_pylist()


@pytest.fixture
def store(runs_root: Path) -> Store:
    store = open_store(runs_root)
    ingest(runs_root, store)
    return store


def test_default_columns_are_attributes_then_common_params_and_metrics(store: Store) -> None:
    columns = default_columns(store.param_keys(), store.metric_keys())
    assert [c.label for c in columns] == [
        "", "name", "experiment", "source", "started", "dur",
        "params.lr", "params.model", "acc", "loss",
    ]  # fmt: skip


def test_sort_by_metric_and_param_in_sql(store: Store) -> None:
    cols = default_columns(store.param_keys(), store.metric_keys())
    by_acc = load_runs(store, None, cols, Column.metric("acc"), descending=True)
    accs = by_acc.table.column("metrics.acc.last").to_pylist()
    assert accs == sorted(accs, reverse=True)
    by_lr = load_runs(store, None, cols, Column.param("lr"), descending=False)
    assert by_lr.table.column("params.lr").to_pylist() == ["0.001", "0.01", "0.1", "5.0"]
    by_name = load_runs(store, None, cols, Column.attr("name"), descending=False)
    assert _names(by_name) == sorted(_names(by_name), key=str.lower)


def test_filter_and_counts(store: Store) -> None:
    cols = default_columns(store.param_keys(), store.metric_keys())
    view = load_runs(store, compile_query("params.lr < 0.05"), cols, Column.param("lr"), False)
    assert _names(view) == ["sgd-lr0.001", "sgd-lr0.01"]
    assert (view.matched, view.total) == (2, 4)
    failed = load_runs(store, compile_query("status = failed"), cols)
    assert _names(failed) == ["sgd-diverged"]
    assert failed.table.column("state").to_pylist() == ["failed"]


def test_min_and_max_columns_come_from_summaries(store: Store) -> None:
    cols = [Column.attr("name"), Column.metric("loss", "min"), Column.metric("loss", "max")]
    view = load_runs(store, compile_query('name = "sgd-lr0.1"'), cols)
    row = view.table.to_pylist()[0]
    assert row["metrics.loss.min"] == pytest.approx(1 / 10)
    assert row["metrics.loss.max"] == pytest.approx(1.0)
    assert Column.metric("loss", "min").label == "min(loss)"


def test_experiment_restriction_combines_with_a_filter(store: Store) -> None:
    exp = store.experiments()[0]
    query = compile_query("params.lr > 0.05").and_(RunQuery.experiment(exp.id))
    assert len(store.runs(query)) == 2
    assert len(store.runs(RunQuery.experiment("nope"))) == 0


def test_available_columns_offer_last_min_max_per_metric() -> None:
    cols = available_columns(["lr"], ["loss"])
    ids = [c.id for c in cols]
    assert "params.lr" in ids
    assert {"metrics.loss.last", "metrics.loss.min", "metrics.loss.max"} <= set(ids)


def test_metric_goal_reads_the_name() -> None:
    assert metric_goal("val/loss") == "min"
    assert metric_goal("train_error_rate") == "min"
    assert metric_goal("val_acc") == "max"
    assert metric_goal("f1") == "max"


def _record(rid: str, name: str, parent: str | None = None, **kw: object) -> RunRecord:
    return RunRecord(
        id=rid, source_kind="mlflow-sqlite", location=f"/m/{rid}", name=name,
        parent_id=parent, start_time=kw.pop("start", NOW - 100), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_running_runs_turn_stale_when_silent() -> None:
    store = open_memory_store()
    store.put_runs(
        None,
        [
            _record("a", "live", status=Status.RUNNING, updated=NOW - 10),
            _record("b", "dead", status=Status.RUNNING, updated=NOW - 3600),
            _record("c", "done", status=Status.FINISHED, updated=NOW - 3600),
        ],
    )
    view = load_runs(store, None, [Column.attr("status"), Column.attr("name")],
                     Column.attr("name"), False, now=NOW, stale_after_s=300)  # fmt: skip
    assert dict(zip(_names(view), view.table.column("state").to_pylist(), strict=True)) == {
        "dead": "stale", "done": "finished", "live": "running",
    }  # fmt: skip
    assert (view.stats["running"], view.stats["stale"]) == (1, 1)


def test_children_sit_under_their_parent_and_fold() -> None:
    store = open_memory_store()
    store.put_runs(
        None,
        [
            _record("p", "sweep", start=NOW - 50),
            _record("c1", "fold-1", "p", start=NOW - 40),
            _record("c2", "fold-2", "p", start=NOW - 30),
            _record("g", "inner", "c1", start=NOW - 35),
            _record("x", "other", start=NOW - 10),
        ],
    )
    cols = [Column.attr("name")]
    view = load_runs(store, None, cols, Column.attr("name"), False)
    assert _names(view) == ["other", "sweep", "fold-1", "inner", "fold-2"]
    assert view.table.column("depth").to_pylist() == [0, 0, 1, 2, 1]
    assert view.table.column("children").to_pylist() == [0, 2, 1, 0, 0]
    folded = load_runs(store, None, cols, Column.attr("name"), False, collapsed={"p"})
    assert _names(folded) == ["other", "sweep"]
    # A child whose parent is filtered out stands on its own.
    alone = load_runs(store, compile_query('name ~ "fold"'), cols, Column.attr("name"), False)
    assert _names(alone) == ["fold-1", "fold-2"]


def test_parent_cycles_do_not_lose_runs() -> None:
    table = pa.table({"id": ["a", "b"], "parent_id": ["b", "a"], "name": ["a", "b"]})
    out = nest(table)
    assert sorted(out.column("id").to_pylist()) == ["a", "b"]


def test_missing_status_reads_as_finished() -> None:
    store = open_memory_store()
    store.put_runs(None, [_record("a", "a")])
    store._con.execute("UPDATE runs SET status = NULL")
    view = load_runs(store, None, [Column.attr("status")])
    assert view.table.column("state").to_pylist() == ["finished"]


def test_deleted_runs_are_flagged() -> None:
    store = open_memory_store()
    store.put_runs(None, [_record("a", "a", lifecycle="deleted"), _record("b", "b")])
    view = load_runs(store, None, [Column.attr("name")], Column.attr("name"), False)
    assert view.table.column("deleted").to_pylist() == [True, False]


def test_sort_rejects_unknown_keys_and_aggregates() -> None:
    store = open_memory_store()
    with pytest.raises(ValueError):
        store.runs_table(order=("attr", "bogus"))
    with pytest.raises(ValueError):
        store.runs_table(metrics=[("loss", "sum; DROP TABLE runs")])
    with pytest.raises(ValueError):
        Column.metric("loss", "median")


def test_keys_with_sql_in_them_are_only_data() -> None:
    store = open_memory_store()
    key = "a'; DROP TABLE runs; --"
    store.put_runs(None, [_record("r", "run")], params=[("r", key, "1")])
    view = load_runs(store, None, [Column.param(key)], Column.param(key), True)
    assert view.table.column(f"params.{key}").to_pylist() == ["1"]
    assert store.table_counts()["runs"] == 1


def _points(n: int, spike_at: int | None = None) -> tuple[Store, np.ndarray]:
    store = open_memory_store()
    values = np.sin(np.arange(n) / 50.0)
    if spike_at is not None:
        values[spike_at] = 100.0
    store.add_points(
        pa.table(
            {
                "run_id": ["r"] * n,
                "key": ["m"] * n,
                "step": np.arange(n, dtype=np.int64),
                "ts": 1.7e9 + np.arange(n, dtype=np.float64),
                "value": values,
            }
        )
    )
    return store, values


def test_history_buckets_keep_a_single_spike() -> None:
    store, values = _points(100_000, spike_at=54_321)
    table = store.history_buckets("r", "m", 120)
    assert table.num_rows == 120
    assert max(table.column("y_max").to_pylist()) == 100.0
    assert sum(table.column("n").to_pylist()) == 100_000
    assert min(table.column("y_min").to_pylist()) == pytest.approx(values.min())


def test_history_buckets_with_few_points_keep_each_point() -> None:
    store, values = _points(10)
    table = store.history_buckets("r", "m", 200)
    assert table.num_rows == 10
    assert table.column("y_last").to_pylist() == pytest.approx(list(values))
    by_time = store.history_buckets("r", "m", 200, x="time")
    assert by_time.column("x_min")[0].as_py() == pytest.approx(1.7e9)


def test_history_buckets_count_non_finite_values() -> None:
    store = open_memory_store()
    store.add_points(
        pa.table(
            {
                "run_id": ["r"] * 4, "key": ["m"] * 4, "step": [0, 1, 2, 3],
                "ts": [None] * 4, "value": [1.0, math.nan, math.inf, 2.0],
            },
            schema=pa.schema([("run_id", pa.string()), ("key", pa.string()),
                              ("step", pa.int64()), ("ts", pa.float64()),
                              ("value", pa.float64())]),
        )
    )  # fmt: skip
    table = store.history_buckets("r", "m", 4)
    assert sum(table.column("nonfinite").to_pylist()) == 2
    assert store.history_buckets("r", "m", 4, x="time").num_rows == 0  # no timestamps


def test_core_modules_do_not_import_textual() -> None:
    code = (
        "import sys, mltop.core.runs.runs_view, mltop.core.common.sanitize, mltop.core.store;"
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runs_table_on_a_real_folder_is_unaffected_by_writer_order(runs_root: Path) -> None:
    write_run(runs_root / "runs", "late", steps=2, params={"lr": 0.5, "model": "rf"})
    store = open_memory_store()
    ingest(runs_root, store)
    view = load_runs(store, compile_query('params.model = "rf"'), [Column.attr("name")])
    assert _names(view) == ["late"]


def test_values_cache_answers_like_the_joins(store: Store) -> None:
    cols = default_columns(store.param_keys(), store.metric_keys())
    cols.append(Column.metric("loss", "min"))
    cache = ValuesCache()
    cases = [
        ("", Column.attr("start")),
        ("params.lr < 0.05", Column.metric("acc")),
        ("status = failed", Column.param("lr")),
        ("", Column.param("model")),
    ]
    for text, sort in cases:
        query = compile_query(text)
        plain = load_runs(store, query, cols, sort, True, now=NOW).table
        cached = load_runs(store, query, cols, sort, True, now=NOW, cache=cache).table
        assert cached.select(plain.column_names).equals(plain)
    # a new store version drops what the cache held
    write_run(Path(store.path).parent.parent / "runs", "new-run", params={"lr": 0.7})
    ingest(Path(store.path).parent.parent, store)
    fresh = load_runs(store, compile_query('name = "new-run"'), cols, cache=cache, version=1)
    assert fresh.table.column("params.lr").to_pylist() == ["0.7"]


def test_values_cache_holds_no_buffer_of_the_answers_it_was_filled_from(store: Store) -> None:
    # DuckDB frees an answer's memory only once every column of it is gone: a cached column
    # sharing its buffers would keep the whole answer (ids, names...) beside the next one.
    cols = default_columns(store.param_keys(), store.metric_keys())
    cache = ValuesCache()
    seeded = load_runs(store, None, cols, cache=cache).table  # every run: seeds the cache
    load_runs(store, compile_query("params.lr < 0.05"), cols, cache=cache)
    cache.take(store, 0, seeded.column("id").combine_chunks(), [Column.metric("loss", "min")])

    def addresses(arrays: list[pa.Array]) -> set[int]:
        return {b.address for a in arrays for b in a.buffers() if b is not None and b.size}

    answer = addresses([chunk for column in seeded.columns for chunk in column.chunks])
    held = addresses([*cache._columns.values(), cache._ids])
    assert len(cache._columns) > 2 and held and not held & answer


def test_finding_a_row_and_matching_many_ids_never_import_pandas(tmp_path: Path) -> None:
    # pyarrow imports pandas (36 MB resident for good) the first time pa.array meets a Python
    # list; the runs screen only finds rows and matches ids, so it must not pay for that.
    write_run(tmp_path / "runs", "a")
    with open_store(tmp_path) as store:
        ingest(tmp_path, store)
    script = f"""
import sys
from pathlib import Path
from mltop.core.runs.runs_view import default_columns, load_runs
from mltop.core.store import open_store
with open_store(Path({str(tmp_path)!r})) as store:
    view = load_runs(store, None, default_columns(store.param_keys(), store.metric_keys()))
    ids = [view.run_id(0)] + [f"x{{i}}" for i in range(300)]
    assert len(store.summaries(ids)) == 301 and view.row_of(ids[0]) == 0
    assert view.row_of("x1") is None
    print("pandas" in sys.modules)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

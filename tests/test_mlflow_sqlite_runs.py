"""A SQLite database's runs made column-wise are what a RunRecord per run would make, and the
store's digest of a run changes with anything written of it, and only with that."""

from __future__ import annotations

import math

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from mltop.core.importers import mlflow_common as common
from mltop.core.importers.mlflow_sqlite_db import db_text
from mltop.core.importers.mlflow_sqlite_runs import run_columns
from mltop.core.store import open_memory_store, run_table

KIND = "mlflow-sqlite"
SOURCE = "/data/proj/mlflow.db"
ID_SOURCE = "mlflow.db"
DELETED_EXPERIMENTS = {"7"}

# SQLite keeps any type in any column: each column gets what a damaged or hand-edited
# database can hold, beside what MLflow writes.
_text = st.sampled_from(["", "run ä", "FINISHED", "deleted", " DELETED ", "1e3", "x\x1b[31m"])
_any = st.one_of(
    st.none(),
    _text,
    st.integers(-5, 5),
    st.sampled_from([0.0, 1.5, math.nan, math.inf, -math.inf, 1.7e12]),
    st.sampled_from([b"", b"FAILED", b"\xff"]),
    st.just(True),
)
_times = st.one_of(_any, st.integers(0, 2 * 10**12))
_statuses = st.one_of(_any, st.sampled_from(["RUNNING", "KILLED", "3", 4, 4.0, "4"]))
_stages = st.one_of(_any, st.sampled_from(["active", "deleted", "Deleted"]))
_experiments = st.one_of(st.none(), st.sampled_from(["0", "7", 7, 7.0, b"7", ""]))
_tag_values = st.sampled_from(["", "parent-uuid", "abc123", "host-1", "named by tag"])
_record_tags = st.dictionaries(st.sampled_from(common.RECORD_TAGS), _tag_values, max_size=4)


@st.composite
def _chunks(draw: st.DrawFn) -> tuple[list[tuple], dict[str, dict[str, str]], list[float | None]]:
    n = draw(st.integers(1, 12))
    rows = [
        (
            f"uuid-{i}",
            draw(_any),
            draw(_statuses),
            draw(_times),
            draw(_times),
            draw(_stages),
            draw(_any),
            draw(_experiments),
        )
        for i in range(n)
    ]
    tags = {f"uuid-{i}": draw(_record_tags) for i in range(n) if draw(st.booleans())}
    tags["uuid-not-in-chunk"] = {common.TAG_PARENT: "p"}  # a row of no run kept
    last_ms = [draw(st.one_of(st.none(), st.floats(0, 2e12))) for _ in range(n)]
    return rows, tags, last_ms


def _by_records(
    rows: list[tuple], tags: dict[str, dict[str, str]], last_ms: list[float | None]
) -> pa.Table:
    records = []
    for row, last in zip(rows, last_ms, strict=True):
        uuid, name, status, start, end, stage, uri, exp = row
        exp_native = db_text(exp) if exp is not None else None
        records.append(
            common.make_record(
                kind=KIND,
                source=SOURCE,
                native_id=uuid,
                experiment_native_id=exp_native,
                name=name,
                status=status,
                lifecycle=common.lifecycle_of(stage, exp_native in DELETED_EXPERIMENTS),
                start_ms=start,
                end_ms=end,
                artifact_uri=uri,
                tags=tags.get(uuid, {}),
                updated=common.ms_to_s(last),
                id_source=ID_SOURCE,
            )
        )
    return run_table(records, SOURCE)


def _columns(
    rows: list[tuple], tags: dict[str, dict[str, str]], last_ms: list[float | None]
) -> pa.Table:
    ids = [common.run_id(KIND, ID_SOURCE, r[0]) for r in rows]
    return run_columns(
        rows,
        ids,
        tags,
        last_ms,
        kind=KIND,
        source=SOURCE,
        id_source=ID_SOURCE,
        deleted_experiments=DELETED_EXPERIMENTS,
    )


@settings(max_examples=300, deadline=None)
@given(_chunks())
def test_columns_are_what_records_make(
    chunk: tuple[list[tuple], dict[str, dict[str, str]], list[float | None]],
) -> None:
    rows, tags, last_ms = chunk
    made = _columns(rows, tags, last_ms)
    expected = _by_records(rows, tags, last_ms)
    assert made.column_names == expected.column_names
    for name in made.column_names:
        assert made[name].to_pylist() == expected[name].to_pylist(), name


def test_an_empty_chunk_is_an_empty_table_of_the_same_columns() -> None:
    made = _columns([], {}, [])
    assert made.num_rows == 0
    assert made.schema == _by_records([], {}, []).schema


# -- digests ---------------------------------------------------------------------------------


def _keyed(rows: list[tuple[str, str, str]]) -> pa.Table:
    names = ("run_id", "key", "value")
    return pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})


ROWS = [
    ("uuid-0", "a", "FINISHED", 1000, 2000, "active", "file:///x", "0"),
    ("uuid-1", "b", "RUNNING", 1000, None, "active", None, "0"),
    ("uuid-2", None, "FINISHED", None, None, "active", "", None),
]
RUNS = _columns(ROWS, {}, [None, 3000.0, None])
IDS = RUNS["id"].to_pylist()
PARAMS = [(IDS[0], "lr", "0.1"), (IDS[0], "depth", "3"), (IDS[1], "lr", "0.2")]
TAGS = [(IDS[0], "team", "x"), (IDS[2], "note", "")]


def _digests(runs: pa.Table = RUNS, params: list = PARAMS, tags: list = TAGS) -> list[int]:
    store = open_memory_store()
    try:
        return store.metadata_digests_of(runs, _keyed(params), _keyed(tags)).tolist()
    finally:
        store.close()


def test_a_digest_is_the_same_for_the_same_rows_in_any_order() -> None:
    before = _digests()
    assert len(set(before)) == 3
    assert _digests(params=PARAMS[::-1], tags=TAGS[::-1]) == before
    # One digest per row of the runs table, in its order.
    assert _digests(runs=RUNS.take([2, 0, 1])) == [before[2], before[0], before[1]]


def test_a_digest_changes_with_anything_written_of_its_run_only() -> None:
    before = _digests()
    name = RUNS["name"].to_pylist()
    name[1] = "renamed"
    renamed = RUNS.set_column(RUNS.column_names.index("name"), "name", pa.array(name))
    changes = {
        "name": (_digests(runs=renamed), 1),
        "param value": (_digests(params=[*PARAMS[:2], (IDS[1], "lr", "0.3")]), 1),
        "param key": (_digests(params=[*PARAMS[:2], (IDS[1], "LR", "0.2")]), 1),
        "param added": (_digests(params=[*PARAMS, (IDS[2], "seed", "1")]), 2),
        "tag removed": (_digests(tags=TAGS[:1]), 2),
        "empty tag vs none": (_digests(tags=[*TAGS, (IDS[1], "", "")]), 1),
        # A value moved between two keys of the same run.
        "values swapped": (
            _digests(params=[(IDS[0], "lr", "3"), (IDS[0], "depth", "0.1"), PARAMS[2]]),
            0,
        ),
    }
    for what, (after, changed) in changes.items():
        assert [i for i in range(3) if after[i] != before[i]] == [changed], what


def test_a_null_and_an_empty_text_digest_apart() -> None:
    uri = RUNS["artifact_uri"].to_pylist()
    assert uri[1] is None
    uri[1] = ""
    after = _digests(runs=RUNS.set_column(RUNS.column_names.index("artifact_uri"), "artifact_uri",
                                          pa.array(uri, pa.string())))  # fmt: skip
    assert after[1] != _digests()[1]

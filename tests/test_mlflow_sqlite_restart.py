"""An MLflow SQLite database re-read by a fresh process: only the runs that changed are rewritten.

What the importer last wrote of each run is kept in the store (a digest per run), so a new
``mltop`` process facing a changed database compares against that rather than rewriting every
run. The database is MLflow's own (tests/fixtures/mlflow/PROVENANCE.md), changed by SQL the way
MLflow's SQL store writes it; each later import runs in a fresh Python process.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from helpers.fixtures import untar

from mltop.core.discovery import ingest
from mltop.core.entities import RunRecord
from mltop.core.importers import mlflow_sqlite
from mltop.core.store import Store, open_memory_store, open_store, string_array

FIXTURES = Path(__file__).parent / "fixtures" / "mlflow"

# Imports the folder argv[1] into the store argv[2] and prints the report's counts and problems.
IMPORT = """
import json, sys
from pathlib import Path
from mltop.core.discovery import ingest
from mltop.core.store import open_store
with open_store(Path(sys.argv[1]), Path(sys.argv[2])) as store:
    report = ingest(Path(sys.argv[1]), store)
counts = {k: [c.runs, c.points] for k, c in report.counts.items()}
print(json.dumps({"counts": counts, "removed": report.removed_runs,
                  "problems": [p.message for p in report.problems]}))
"""


def import_in_fresh_process(folder: Path, store: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT, str(folder), str(store)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1])


def sqlite_db(dest: Path) -> Path:
    return untar(FIXTURES / "small-sqlite.tar.gz", dest) / "mlflow.db"


def contents(store: Store) -> dict[str, list[tuple]]:
    """Everything the store holds of the runs, in a comparable order."""
    runs = sorted(store.runs(), key=lambda r: r.id)
    ids = [r.id for r in runs]
    params = store.param_values(ids)
    tags = {r: store.tags(r) for r in ids}
    sums = store.summaries(ids)
    return {
        "runs": [(r.id, r.name, r.status, r.start_time, r.end_time, r.parent_id) for r in runs],
        "params": sorted((r, k, v) for r in ids for k, v in params[r].items()),
        "tags": sorted((r, k, v) for r in ids for k, v in tags[r].items()),
        "metrics": sorted(  # repr: a NaN last value equals itself
            (r, k, s.count, repr(s.last), s.last_time) for r in ids for k, s in sums[r].items()
        ),
    }


def built_from_scratch(folder: Path, store_path: Path) -> dict[str, list[tuple]]:
    """What a new store made from ``folder`` holds: the oracle of an incremental import."""
    import_in_fresh_process(folder, store_path)
    with open_store(folder, store_path) as store:
        return contents(store)


def test_a_fresh_process_rewrites_only_the_run_whose_tag_changed(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path / "project")
    folder, store_path = db.parent, tmp_path / "store.duckdb"
    first = import_in_fresh_process(folder, store_path)
    assert first["problems"] == [] and first["counts"][mlflow_sqlite.KIND][0] == 16

    con = sqlite3.connect(db)
    with con:  # MLflow's set_tag on an existing key: an UPDATE of the row (SqlTag merge)
        (uuid,) = con.execute("SELECT run_uuid FROM runs WHERE name = 'rf-diabetes'").fetchone()
        con.execute(
            "UPDATE tags SET value = 'platform-2' WHERE key = 'team' AND run_uuid = ?", [uuid]
        )
    con.close()

    again = import_in_fresh_process(folder, store_path)
    assert again["problems"] == []
    assert again["counts"] == {mlflow_sqlite.KIND: [1, 0]}  # that run, and none of its points
    with open_store(folder, store_path) as store:
        (run,) = [r for r in store.runs() if r.native_id == uuid]
        assert store.tags(run.id)["team"] == "platform-2"
        held = contents(store)
    assert held == built_from_scratch(folder, tmp_path / "scratch.duckdb")
    assert import_in_fresh_process(folder, store_path)["counts"] == {}


def test_a_rescan_commits_the_runs_it_rewrites_before_it_records_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-scan holds no bulk open: the rewritten run is committed by the time the database's
    state is recorded, so the blocks it read can be let go as it goes (a first import groups its
    commits; a re-scan that kept them open held DuckDB's cache to the end)."""
    db = sqlite_db(tmp_path / "project")
    folder, store_path = db.parent, tmp_path / "store.duckdb"
    import_in_fresh_process(folder, store_path)
    con = sqlite3.connect(db)
    with con:
        (uuid,) = con.execute("SELECT run_uuid FROM runs WHERE name = 'rf-diabetes'").fetchone()
        con.execute(
            "UPDATE tags SET value = 'platform-2' WHERE key = 'team' AND run_uuid = ?", [uuid]
        )
    con.close()

    with open_store(folder, store_path) as store:
        (run,) = [r for r in store.runs() if r.native_id == uuid]
        seen: list[str] = []
        put_files = store.put_files

        def recording(*args: object, **kwargs: object) -> None:
            cursor = store.cursor()  # another connection: it sees committed rows only
            try:
                rows = cursor.execute(
                    "SELECT value FROM tags WHERE run_id = ? AND key = 'team'", [run.id]
                ).fetchall()
            finally:
                cursor.close()
            seen.extend(r[0] for r in rows)
            put_files(*args, **kwargs)

        monkeypatch.setattr(store, "put_files", recording)
        report = ingest(folder, store)
        assert not report.problems
        assert report.counts[mlflow_sqlite.KIND].runs == 1
        assert seen == ["platform-2"]


def test_a_database_replaced_by_an_unrelated_one_is_imported_right(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path / "project")
    folder, store_path = db.parent, tmp_path / "store.duckdb"
    import_in_fresh_process(folder, store_path)

    # Another database in its place: every run under a new id but one, which keeps its id and
    # gets another name, param and tag (its digest must not match what the store recorded).
    other = sqlite_db(tmp_path / "other")
    con = sqlite3.connect(other)
    with con:
        (kept,) = con.execute("SELECT run_uuid FROM runs WHERE name = 'rf-diabetes'").fetchone()
        for table in ("runs", "metrics", "latest_metrics", "params", "tags"):
            con.execute(
                f"UPDATE {table} SET run_uuid = 'x' || substr(run_uuid, 2) WHERE run_uuid <> ?",
                [kept],
            )
        con.execute("UPDATE runs SET name = 'renamed' WHERE run_uuid = ?", [kept])
        con.execute("UPDATE params SET value = value || '0' WHERE run_uuid = ?", [kept])
        con.execute("UPDATE tags SET value = 'elsewhere' WHERE key = 'team' AND run_uuid = ?",
                    [kept])  # fmt: skip
    con.close()
    shutil.copyfile(other, db)

    report = import_in_fresh_process(folder, store_path)
    assert report["problems"] == []
    with open_store(folder, store_path) as store:
        assert contents(store) == built_from_scratch(folder, tmp_path / "scratch.duckdb")
        assert {r.name for r in store.runs() if r.native_id == kept} == {"renamed"}
        assert store.table_counts()["runs"] == 16


def test_a_digest_lives_as_long_as_the_write_it_describes() -> None:
    """A run rewritten without a digest (another importer) or deleted loses the one recorded."""
    store = open_memory_store()
    runs = [RunRecord(id=i, source_kind="t", location="/x", name=i) for i in ("a", "b", "c")]
    params = pa.table(
        {
            "run_id": string_array(["a", "a", "b"]),
            "key": string_array(["lr", "lr", "lr"]),  # a repeated key: the first row is kept
            "value": string_array(["0.1", "0.2", " 1e-3 "]),
        }
    )
    store.put_runs("/x", runs, params=params, digests={"a": 1, "b": -2, "c": 2**63 - 1})
    assert store.metadata_digests(["a", "b", "c"]) == {"a": 1, "b": -2, "c": 2**63 - 1}
    assert store.param_values(["a", "b"]) == {
        "a": {"lr": ("0.1", 0.1)},
        "b": {"lr": (" 1e-3 ", 0.001)},
    }
    store.put_runs("/x", runs[:1])
    store.delete_runs(["b"])
    assert store.metadata_digests(["a", "b", "c"]) == {"c": 2**63 - 1}

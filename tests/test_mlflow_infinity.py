"""MLflow's SQL stores write ``±1.7976931348623157e308`` for an infinite metric value (SQL has
no infinity). mltop reads it back as ``±inf``: shown ``inf``, never a best value or a min/max."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

from test_import_mlflow import SQLITE, native_of, run_import, sqlite_copy

from mltop.core.importers.mlflow_common import run_id
from mltop.core.importers.mlflow_rest_mapping import as_float
from mltop.core.store import open_memory_store

MAX = 1.7976931348623157e308  # what MLflow's SqlAlchemyStore writes for inf


def with_infinities(db: Path) -> tuple[str, int]:
    """Log +inf and -inf the way MLflow's SQL store does (after the run's last step); the run's
    native id and the first step used."""
    native = native_of(db, "rf-diabetes")
    con = sqlite3.connect(db)
    with con:
        (last_step,) = con.execute(
            "SELECT max(step) FROM metrics WHERE run_uuid = ?", [native]
        ).fetchone()
        rows = [
            ("diverge", 0.5, 1795723200000, native, last_step + 1, 0),
            ("diverge", MAX, 1795723201000, native, last_step + 2, 0),
            ("diverge", -MAX, 1795723202000, native, last_step + 3, 0),
            ("diverge", MAX, 1795723203000, native, last_step + 4, 0),
        ]
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    con.close()
    return native, last_step + 1


def test_sqlite_largest_double_is_read_as_infinity_and_is_no_best(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    native, _ = with_infinities(db)
    store = open_memory_store()
    run_import(store, SQLITE, db)
    rid = run_id(SQLITE, str(db), native)
    values = store.history(rid, "diverge").column("value").to_pylist()
    assert values == [0.5, math.inf, -math.inf, math.inf]
    summary = store.summaries([rid])[rid]["diverge"]
    assert summary.last == math.inf
    assert summary.min == 0.5 and summary.max == 0.5


def test_runs_json_says_infinity_for_mlflow_largest_double(tmp_path: Path) -> None:
    db = sqlite_copy(tmp_path)
    with_infinities(db)
    result = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "runs", str(db.parent), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = {r["name"]: r for r in json.loads(result.stdout)}
    assert runs["rf-diabetes"]["metrics"]["diverge"] == "Infinity"


def test_a_server_sending_mlflow_largest_double_means_infinity() -> None:
    assert as_float(MAX) == math.inf and as_float(-MAX) == -math.inf
    assert as_float("1.7976931348623157e+308") == math.inf
    assert as_float(1e308) == 1e308  # a large value that is not the stand-in stays itself

"""trackio projects (one SQLite database per project) against the trackio CLI's own output.

Fixture: tests/fixtures/trackio/PROVENANCE.md (trackio 0.43, WAL-mode database, checkpointed).
The live-writer cases append rows with the standard library's sqlite3 in WAL mode, the way
trackio writes, and keep them in the ``-wal`` file (no checkpoint).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers.stores import snapshot

from mltop.core.discovery import ingest
from mltop.core.entities import ImportReport, Run, SourceRef, Status, stable_id
from mltop.core.importers.trackio import IMPORTER, KIND, is_trackio_db, open_readonly
from mltop.core.store import Store, open_memory_store

FIXTURES = Path(__file__).parent / "fixtures" / "trackio"
ORACLE = FIXTURES / "oracle"
DB_NAME = "corpus-digits.db"
RUNS = ("sgd-lr0.01", "sgd-lr0.1")
METRICS = ("epoch", "train/acc", "train/loss", "val/acc", "val/loss")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "trackio"
    shutil.copytree(FIXTURES / "trackio_dir", folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder / DB_NAME


def oracle(name: str) -> Any:
    return json.loads((ORACLE / name).read_text())


def import_db(store: Store, db: Path) -> ImportReport:
    report = ImportReport()
    IMPORTER.import_sources(store, [SourceRef(KIND, db)], report)
    return report


def run_by_name(store: Store, name: str) -> Run:
    matches = [r for r in store.runs() if r.name == name]
    assert len(matches) == 1, name
    return matches[0]


def iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Writer:
    """Appends rows the way trackio does, leaving them in the WAL (no checkpoint)."""

    def __init__(self, db: Path):
        self.con = sqlite3.connect(db)
        self.con.execute("PRAGMA wal_autocheckpoint=0")
        self.run_id, self.run_name = self.con.execute(
            "SELECT run_id, run_name FROM metrics WHERE run_name = 'sgd-lr0.01' LIMIT 1"
        ).fetchone()

    def log(self, step: int, metrics: dict[str, object], run_name: str | None = None) -> None:
        self.con.execute(
            "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                self.run_id if run_name is None else f"id-{run_name}",
                "2026-11-26T21:00:00.500000+00:00",
                run_name or self.run_name,
                step,
                json.dumps(metrics).encode(),
            ),
        )
        self.con.commit()

    def close(self) -> None:
        self.con.close()


# -- against the oracle --------------------------------------------------------------------------


def test_runs_params_and_alerts_match_the_trackio_cli(project: Path) -> None:
    store = open_memory_store()
    report = import_db(store, project)
    assert report.problems == []
    assert report.counts[KIND].runs == 2
    assert sorted(r.name for r in store.runs()) == oracle("list_runs.json")["runs"]
    listed = {r["name"]: r for r in oracle("get_project.json")["runs"]}
    for name in RUNS:
        run = run_by_name(store, name)
        expected = oracle(f"get_run_{name}.json")
        assert run.status == Status.FINISHED
        assert run.experiment == expected["project"]
        assert run.native_id == listed[name]["id"]
        assert run.source_kind == KIND
        config = {k: v for k, v in expected["config"].items() if not k.startswith("_")}
        assert store.params(run.id) == {k: str(v) for k, v in config.items()}
        assert store.tags(run.id)["trackio.group"] == expected["config"]["_Group"]
        assert run.start_time == iso(expected["config"]["_Created"])
        summaries = store.summaries([run.id])[run.id]
        assert sorted(summaries) == expected["metrics"]
        assert {s.last_step for s in summaries.values()} == {expected["last_step"]}
    alert = oracle("list_alerts.json")["alerts"][0]
    tags = store.tags(run_by_name(store, alert["run"]).id)
    assert tags["trackio.alerts"] == (
        f"{alert['level']}@{alert['step']} {alert['title']}: {alert['text']}"
    )
    assert "trackio.alerts" not in store.tags(run_by_name(store, "sgd-lr0.1").id)


@pytest.mark.parametrize("name", RUNS)
def test_every_metric_point_matches_trackio_get_metric(project: Path, name: str) -> None:
    store = open_memory_store()
    import_db(store, project)
    run = run_by_name(store, name)
    assert sorted(oracle(f"list_metrics_{name}.json")["metrics"]) == list(METRICS)
    for metric in METRICS:
        values = oracle(f"get_metric_{name}_{metric.replace('/', '_')}.json")["values"]
        stored = store.history(run.id, metric).to_pylist()
        assert [(p["step"], p["value"]) for p in stored] == [
            (v["step"], v["value"]) for v in values
        ]
        assert [p["ts"] for p in stored] == [iso(v["timestamp"]) for v in values]


def test_discovery_claims_the_project_files(project: Path) -> None:
    folder = project.parent
    assert is_trackio_db(project)
    detection = IMPORTER.detect(folder, [], sorted(os.listdir(folder)))
    assert detection is not None
    assert [r.location for r in detection.refs] == [project]
    assert detection.claimed == {DB_NAME, "corpus-digits.lock"}
    store = open_memory_store()
    report = ingest(folder, store, importers=[IMPORTER])
    assert report.problems == [] and report.counts[KIND].runs == 2


def test_reimport_is_idempotent_and_unchanged_rescan_reads_nothing(project: Path) -> None:
    store = open_memory_store()
    import_db(store, project)
    before = (store.table_counts(), snapshot(store))
    again = import_db(store, project)
    assert again.counts == {} and again.problems == []
    assert (store.table_counts(), snapshot(store)) == before


# -- opening without disturbing the folder -------------------------------------------------------


def test_a_checkpointed_database_is_read_without_creating_wal_or_shm(project: Path) -> None:
    before = sorted(os.listdir(project.parent))
    store = open_memory_store()
    import_db(store, project)
    assert sorted(os.listdir(project.parent)) == before


def test_rows_still_in_the_wal_of_a_live_writer_are_read(project: Path) -> None:
    store = open_memory_store()
    import_db(store, project)
    writer = Writer(project)
    try:
        writer.log(50, {"train/loss": 0.05, "val/acc": 0.97})
        writer.log(51, {"train/loss": 0.04, "val/acc": 0.98})
        assert Path(f"{project}-wal").stat().st_size > 0
        # immutable=1 would miss them: it never looks at the WAL.
        uri = f"{project.as_uri()}?immutable=1"
        with sqlite3.connect(uri, uri=True) as con:
            assert con.execute("SELECT count(*) FROM metrics").fetchone() == (100,)
        report = import_db(store, project)
        assert report.problems == [] and report.counts[KIND].points == 4
        run = run_by_name(store, "sgd-lr0.01")
        assert store.history(run.id, "train/loss").column("value").to_pylist()[-2:] == [
            0.05,
            0.04,
        ]
        assert store.summaries([run.id])[run.id]["val/acc"].last_step == 51
        assert store.file_states()[str(project)].offset == 102
    finally:
        writer.close()


def test_wal_left_by_a_killed_writer_is_read_from_a_copy(project: Path) -> None:
    writer = Writer(project)
    writer.log(50, {"train/loss": 0.05})
    # A killed writer leaves its WAL behind; without -shm, a mode=ro open would create one.
    wal = Path(f"{project}-wal").read_bytes()
    writer.close()
    Path(f"{project}-wal").write_bytes(wal)
    Path(f"{project}-shm").unlink(missing_ok=True)
    before = sorted(os.listdir(project.parent))
    with open_readonly(project) as con:
        assert con.execute("SELECT max(step) FROM metrics").fetchone() == (50,)
    store = open_memory_store()
    assert import_db(store, project).problems == []
    assert sorted(os.listdir(project.parent)) == before
    run = run_by_name(store, "sgd-lr0.01")
    assert store.summaries([run.id])[run.id]["train/loss"].last == 0.05


# -- incremental ---------------------------------------------------------------------------------


def test_new_rows_are_read_incrementally_and_equal_a_fresh_import(project: Path) -> None:
    store = open_memory_store()
    import_db(store, project)
    writer = Writer(project)
    try:
        for step in range(50, 60):
            writer.log(step, {"train/loss": 1.0 / step, "epoch": step})
            report = import_db(store, project)
            assert report.counts[KIND].points == 2
        writer.log(0, {"acc": 0.5}, run_name="sgd-new")
        report = import_db(store, project)
        assert report.counts[KIND].runs == 1 and report.counts[KIND].points == 1
    finally:
        writer.close()
    fresh = open_memory_store()
    import_db(fresh, project)
    assert snapshot(store) == snapshot(fresh)
    assert {r.name for r in store.runs()} == {*RUNS, "sgd-new"}


def test_a_replaced_database_is_read_again_and_vanished_runs_removed(
    project: Path, tmp_path: Path
) -> None:
    store = open_memory_store()
    import_db(store, project)
    other = tmp_path / "other.db"
    shutil.copy(project, other)
    con = sqlite3.connect(other)
    with con:
        con.execute("DELETE FROM metrics WHERE run_name = 'sgd-lr0.1'")
        con.execute("DELETE FROM configs WHERE run_name = 'sgd-lr0.1'")
        con.execute("DELETE FROM metrics WHERE step >= 40")
    con.close()  # the last connection checkpoints its WAL into the file
    os.replace(other, project)
    report = import_db(store, project)
    assert report.problems == []
    assert [r.name for r in store.runs()] == ["sgd-lr0.01"]
    run = run_by_name(store, "sgd-lr0.01")
    assert store.summaries([run.id])[run.id]["train/loss"].count == 40


# -- odd values ----------------------------------------------------------------------------------


def test_nan_infinity_unicode_and_non_numeric_values(project: Path) -> None:
    writer = Writer(project)
    try:
        writer.log(
            50,
            {
                "ünï/lösß": math.nan,
                "train/loss": math.inf,
                "val/loss": -math.inf,
                "quoted": "NaN",
                "text": "hello",
                "flag": True,
                "media": {"_type": "image"},
                "none": None,
            },
        )
        writer.log(0, {"x": 1.0}, run_name="ラン 1 / β")
    finally:
        writer.close()
    store = open_memory_store()
    assert import_db(store, project).problems == []
    run = run_by_name(store, "sgd-lr0.01")
    last = {k: store.history(run.id, k).to_pylist()[-1] for k in store.summaries([run.id])[run.id]}
    assert math.isnan(last["ünï/lösß"]["value"])
    assert last["train/loss"]["value"] == math.inf
    assert last["val/loss"]["value"] == -math.inf
    assert math.isnan(last["quoted"]["value"])
    assert not {"text", "flag", "media", "none"} & set(last)
    assert run_by_name(store, "ラン 1 / β").id == stable_id(KIND, str(project), "id-ラン 1 / β")


# -- bad input -----------------------------------------------------------------------------------


def assert_problems_name(report: ImportReport, db: Path) -> None:
    assert report.problems
    for problem in report.problems:
        assert problem.path == str(db)
        assert "\n" not in problem.message


def test_damaged_databases_are_reported_and_others_still_imported(
    project: Path, tmp_path: Path
) -> None:
    data = project.read_bytes()
    rng = random.Random(11)
    cases = {
        "emptied": b"",
        "garbage": bytes(rng.randrange(256) for _ in range(8192)),
        "truncated": data[: len(data) // 3],
        "header-only": data[:100],
        "not-utf8": b"\xff\xfe" * 4096,
    }
    for i in range(40):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 30)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cases[f"mutated-{i}"] = bytes(mutated)
    store = open_memory_store()
    for label, content in cases.items():
        db = tmp_path / "bad" / label / DB_NAME
        db.parent.mkdir(parents=True)
        db.write_bytes(content)
        report = import_db(store, db)
        if label in ("emptied", "garbage", "truncated", "header-only", "not-utf8"):
            assert_problems_name(report, db)
        for problem in report.problems:
            assert problem.path == str(db) and "\n" not in problem.message
    report = import_db(store, project)
    assert report.problems == [] and report.counts[KIND].runs == 2


def test_bad_rows_are_skipped_with_one_problem_and_the_rest_kept(project: Path) -> None:
    con = sqlite3.connect(project)
    with con:
        con.execute("PRAGMA journal_mode=DELETE")
        run_id = con.execute(
            "SELECT run_id FROM metrics WHERE run_name = 'sgd-lr0.01' LIMIT 1"
        ).fetchone()[0]
        for step, blob in ((60, b"\xff\xfe not json"), (61, b"[1, 2]"), (62, b'{"ok": 2.5}')):
            con.execute(
                "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics) "
                "VALUES (?, '2026-11-26T21:00:00+00:00', 'sgd-lr0.01', ?, ?)",
                (run_id, step, blob),
            )
        con.execute("UPDATE configs SET config = x'ff00' WHERE run_name = 'sgd-lr0.1'")
    con.close()
    store = open_memory_store()
    report = import_db(store, project)
    assert len(report.problems) == 2
    assert all(p.path == str(project) and "\n" not in p.message for p in report.problems)
    run = run_by_name(store, "sgd-lr0.01")
    assert store.summaries([run.id])[run.id]["ok"].last == 2.5
    assert store.summaries([run.id])[run.id]["train/loss"].count == 50
    assert store.params(run_by_name(store, "sgd-lr0.1").id) == {}

"""Damaged and unreadable sources: each is one problem line naming the file, the rest imported.

The damaged files are made from the real fixtures (trackio 0.43 and MLflow 3.17.2 databases,
see tests/fixtures/*/PROVENANCE.md) by the ways files really break: a schema page with bytes
that are not UTF-8, a copy cut short, a zero-byte file, garbage under a tracker's name.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from helpers.files import not_tracker_databases
from helpers.fixtures import untar

from mltop.core.discovery import discover, ingest
from mltop.core.entities import ImportReport, RunRecord, SourceRef
from mltop.core.importers.base import Detection
from mltop.core.store import POINTS_SCHEMA, Store, open_memory_store

FIXTURES = Path(__file__).parent / "fixtures"
TRACKIO_DB = FIXTURES / "trackio" / "trackio_dir" / "corpus-digits.db"
SCHEMA_NOT_UTF8 = "damaged SQLite database (malformed database schema (bytes that are not UTF-8))"


def trackio_copy(folder: Path, name: str = "corpus-digits.db") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copyfile(TRACKIO_DB, target)
    return target


def mlflow_copy(dest: Path) -> Path:
    return untar(FIXTURES / "mlflow" / "small-sqlite.tar.gz", dest) / "mlflow.db"


def corrupt_schema(db: Path) -> None:
    """Overwrite the first table's name in sqlite_master with bytes that are not UTF-8.

    SQLite then rejects the schema and quotes the name in its message, which Python's sqlite3
    cannot decode: the read raises UnicodeDecodeError, not sqlite3.DatabaseError.
    """
    data = bytearray(db.read_bytes())
    sql = data.find(b"CREATE TABLE ")
    name = bytes(data[sql + 13 : data.index(b" ", sql + 13)])
    at = data.rfind(b"table" + name + name, 0, sql)
    assert sql > 0 and at > 0
    data[at + 5 : at + 7] = b"\xff\xfe"
    db.write_bytes(bytes(data))


def problems_by_name(report: ImportReport) -> dict[str, str]:
    return {Path(p.path).name: p.message for p in report.problems}


def run_names(store: Store) -> set[str]:
    return {run.name for run in store.runs()}


def test_a_db_with_a_corrupt_schema_does_not_stop_the_other_sources(runs_root: Path) -> None:
    trackio_copy(runs_root / "trackio")
    bad = trackio_copy(runs_root / "other", "broken.db")
    corrupt_schema(bad)
    store = open_memory_store()
    report = ingest(runs_root, store)
    kinds = sorted((run.source_kind, run.name) for run in store.runs())
    assert kinds == [
        ("mltop", "sgd-diverged"), ("mltop", "sgd-lr0.001"), ("mltop", "sgd-lr0.01"),
        ("mltop", "sgd-lr0.1"), ("trackio", "sgd-lr0.01"), ("trackio", "sgd-lr0.1"),
    ]  # fmt: skip
    assert problems_by_name(report) == {"broken.db": SCHEMA_NOT_UTF8}


def test_a_damaged_db_beside_a_healthy_one_in_the_same_folder_costs_only_itself(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "trackio"
    trackio_copy(folder)
    corrupt_schema(trackio_copy(folder, "a-broken.db"))
    store = open_memory_store()
    report = ingest(tmp_path, store)
    assert run_names(store) == {"sgd-lr0.01", "sgd-lr0.1"}
    assert list(problems_by_name(report)) == ["a-broken.db"]


def test_cli_ingest_names_the_damaged_db_without_a_traceback(runs_root: Path) -> None:
    corrupt_schema(trackio_copy(runs_root, "broken.db"))
    done = subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "ingest", str(runs_root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "4 runs" in done.stdout and "1 problem files" in done.stdout
    assert done.stderr.strip() == f"{runs_root / 'broken.db'}: {SCHEMA_NOT_UTF8}"


# -- mlflow.db: a source by its name ----------------------------------------------------------


def test_a_zero_byte_mlflow_db_is_a_problem_line(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").write_bytes(b"")
    report = ingest(tmp_path, open_memory_store())
    assert problems_by_name(report) == {"mlflow.db": "empty file"}


def test_a_garbage_mlflow_db_is_a_problem_line(tmp_path: Path) -> None:
    (tmp_path / "mlflow.db").write_bytes(os.urandom(4096))
    report = ingest(tmp_path, open_memory_store())
    assert problems_by_name(report) == {"mlflow.db": "not a SQLite database (bad header)"}


def test_a_sqlite_mlflow_db_without_mlflows_tables_is_a_problem_line(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "mlflow.db")
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    report = ingest(tmp_path, open_memory_store())
    message = problems_by_name(report)["mlflow.db"]
    assert message.startswith("not an MLflow tracking database (no ")


def test_a_truncated_mlflow_db_is_a_problem_line_every_scan(tmp_path: Path) -> None:
    db = mlflow_copy(tmp_path)
    with open(db, "r+b") as fh:
        fh.truncate(db.stat().st_size // 3)
    store = open_memory_store()
    for _ in range(2):  # not recorded as read: the next scan says it again
        report = ingest(tmp_path, store)
        assert list(problems_by_name(report)) == ["mlflow.db"]
    assert store.runs() == []


def test_an_app_database_that_is_not_a_tracker_stays_silent(tmp_path: Path) -> None:
    not_tracker_databases(tmp_path)
    report = ingest(tmp_path, open_memory_store())
    assert report.problems == []


@pytest.mark.parametrize("name", ["x.db", "mlflow.db"])
def test_a_damaged_sqlite_file_under_any_db_name_is_reported(tmp_path: Path, name: str) -> None:
    db = trackio_copy(tmp_path, name)
    corrupt_schema(db)
    report = ingest(tmp_path, open_memory_store())
    assert list(problems_by_name(report)) == [name]


# -- JSONL metric logs ------------------------------------------------------------------------

LOG = FIXTURES / "training-logs" / "python-logging" / "run-a.metrics.jsonl"


def jsonl_copy(folder: Path, lines: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / LOG.name
    if lines is None:
        shutil.copyfile(LOG, target)
    else:
        target.write_text("\n".join(lines) + "\n")
    return target


def fixture_lines() -> list[str]:
    return LOG.read_text().splitlines()


def points_of(store: Store) -> int:
    ids = [run.id for run in store.runs()]
    return sum(s.count for by_key in store.summaries(ids).values() for s in by_key.values())


def test_a_field_named_empty_costs_that_field_not_the_file(tmp_path: Path) -> None:
    whole = open_memory_store()
    ingest(jsonl_copy(tmp_path / "whole"), whole)
    lines = fixture_lines()
    lines[2] = lines[2][:-1] + ', "": 5}'
    path = jsonl_copy(tmp_path / "odd", lines)
    store = open_memory_store()
    report = ingest(path.parent, store)
    assert problems_by_name(report) == {
        path.name: 'the field named "" left out of 1 line (first at line 3)'
    }
    (run,) = store.runs()
    assert run.status == "FINISHED"
    assert points_of(store) == points_of(whole) > 0


def test_a_jsonl_with_no_readable_line_writes_nothing_and_says_so_every_scan(
    tmp_path: Path,
) -> None:
    # The first line names a step, so the file is taken for a metric log; nothing parses.
    path = jsonl_copy(tmp_path, ['{"step": 1, "loss": 0.5', "[1, 2, 3]", '"text"'])
    store = open_memory_store()
    for _ in range(2):
        report = ingest(tmp_path, store)
        assert problems_by_name(report) == {
            path.name: "no JSON object lines with metric values (3 lines unreadable)"
        }
        assert store.runs() == []


def test_a_metric_named_filename_is_imported(tmp_path: Path) -> None:
    # DuckDB's own file-name column once took that name: every line failed to parse.
    name = "filename"
    lines = [json.dumps({"epoch": i, "time": i * 1.0, name: i / 10}) for i in range(5)]
    path = jsonl_copy(tmp_path, lines)
    store = open_memory_store()
    report = ingest(path.parent, store)
    assert report.problems == []
    (run,) = store.runs()
    summary = store.summaries([run.id])[run.id]
    assert summary[name].count == 5 and summary[name].last == 0.4


# -- trackio: a database beside its .lock ----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (a trackio project database was expected beside its .lock)"),
        (
            b"\x00garbage" * 100,
            "not a SQLite database (bad header; a trackio project was expected)",
        ),
    ],
)
def test_a_trackio_database_beside_its_lock_that_is_not_sqlite_is_a_problem_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "proj.db").write_bytes(content)
    (tmp_path / "proj.lock").write_bytes(b"")
    report = ingest(tmp_path, open_memory_store())
    assert problems_by_name(report) == {"proj.db": message}


def test_a_lone_empty_db_without_a_trackio_lock_stays_silent(tmp_path: Path) -> None:
    (tmp_path / "cache.db").write_bytes(b"")
    assert ingest(tmp_path, open_memory_store()).problems == []


# -- DVCLive TSVs -----------------------------------------------------------------------------


def dvclive_copy(dest: Path) -> Path:
    """The DVC fixture's dvclive/ folder alone: read by the DVCLive importer, outside DVC."""
    with tarfile.open(FIXTURES / "dvc" / "dvc-project.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("dvc-project/dvclive")]
        tar.extractall(dest, members=members, filter="data")
    return dest / "dvc-project" / "dvclive"


def assert_one_row_lost(
    folder: Path, tsv: Path, damage: Callable[[Path], None], problem: str
) -> None:
    """After ``damage`` to ``tsv``, importing ``folder`` reports ``problem`` on that file alone
    and keeps every point of the undamaged import but the one damaged row's."""
    whole = open_memory_store()
    ingest(folder, whole)
    damage(tsv)
    store = open_memory_store()
    report = ingest(folder, store)
    assert [(p.path, p.message) for p in report.problems] == [(str(tsv), problem)]
    assert points_of(store) == points_of(whole) - 1


def test_a_tsv_row_with_bytes_that_are_not_utf8_costs_that_row_only(tmp_path: Path) -> None:
    folder = dvclive_copy(tmp_path)

    def damage(tsv: Path) -> None:
        data = tsv.read_bytes()
        tsv.write_bytes(data[:20] + b"\xff\xfe" + data[20:])

    tsv = folder / "plots" / "metrics" / "train" / "loss.tsv"
    problem = "1 row with bytes that are not UTF-8 (first at line 2)"
    assert_one_row_lost(folder, tsv, damage, problem)


def test_an_unreadable_tsv_is_named_by_its_own_path_every_scan(tmp_path: Path) -> None:
    folder = dvclive_copy(tmp_path)
    tsv = folder / "plots" / "metrics" / "train" / "loss.tsv"
    tsv.write_bytes(b"step\tloss\n\xff\xfe\x00\n")
    store = open_memory_store()
    for _ in range(2):
        report = ingest(folder, store)
        (problem,) = report.problems
        assert problem.path == str(tsv) and problem.message.startswith("not a readable TSV")
        assert "mltop-slice" not in problem.message


# -- the app over a folder with a damaged database --------------------------------------------


async def test_the_app_shows_the_healthy_runs_and_names_the_damaged_db(
    runs_root: Path, tmp_path: Path
) -> None:
    from tui_pilot import SIZE, make_app, names, settled

    corrupt_schema(trackio_copy(runs_root, "broken.db"))
    app = make_app(runs_root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        assert sorted(names(screen)) == ["sgd-diverged", "sgd-lr0.001", "sgd-lr0.01", "sgd-lr0.1"]
        report = app.last_report
        assert report is not None
        assert [Path(p.path).name for p in report.problems] == ["broken.db"]
        notes = [str(n.message) for n in app._notifications]
        assert any("broken.db" in note and "damaged SQLite database" in note for note in notes)


# -- detection, file by file ------------------------------------------------------------------


def test_a_jsonl_nested_deeper_than_pythons_reader_does_not_hide_its_neighbour(
    tmp_path: Path,
) -> None:
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"step": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    jsonl_copy(tmp_path)
    store = open_memory_store()
    report = ingest(tmp_path, store)
    runs = {run.name: run.id for run in store.runs()}
    # The deep line is an object whose only field is a step that is no number: no metric, as
    # for any such line; the neighbour keeps every point.
    assert sorted(runs) == ["deep", "run-a"]
    assert store.point_count(runs["deep"]) == 0
    assert store.point_count(runs["run-a"]) > 0
    assert problems_by_name(report) == {}


class _RaisesOnOneName:
    """A detector that raises on one file name.

    Every real detector that raised on some file was fixed; this stand-in is the only way left to
    reach the guard that keeps the next such bug from hiding the file's neighbours.
    """

    kind = "odd"

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if "poison.txt" in filenames:
            raise KeyError("poison")
        refs = [SourceRef("odd", dirpath / f) for f in filenames if f.endswith(".txt")]
        return Detection(refs, claimed={r.location.name for r in refs}) if refs else None

    def import_sources(self, store: Store, refs: object, report: ImportReport) -> None:
        return None


def test_a_detector_that_raises_on_one_file_still_detects_the_others(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "poison.txt"):
        (tmp_path / name).write_text("x")
    found = discover(tmp_path, [_RaisesOnOneName()])
    assert sorted(ref.location.name for ref in found.refs) == ["a.txt", "b.txt"]
    assert [(Path(p.path).name, p.message) for p in found.problems] == [
        ("poison.txt", "odd detection failed: KeyError: 'poison'")
    ]


def test_a_dvclive_metrics_json_nested_too_deeply_says_so(tmp_path: Path) -> None:
    folder = dvclive_copy(tmp_path)
    (folder / "metrics.json").write_text('{"acc": ' + "[" * 100_000 + "]" * 100_000 + "}")
    report = ingest(folder, open_memory_store())
    assert [(Path(p.path).name, p.message) for p in report.problems] == [
        ("metrics.json", "nested too deeply to read")
    ]


# -- values that cannot be placed on a step ---------------------------------------------------


def test_jsonl_values_without_a_usable_step_are_counted_not_dropped_silently(
    tmp_path: Path,
) -> None:
    path = jsonl_copy(
        tmp_path,
        [
            '{"step": 1, "loss": 0.5}',
            '{"step": "x", "loss": 0.4}',
            '{"step": 99999999999999999999999, "loss": 0.3, "acc": 1}',
            '{"loss": 0.25}',
            '{"step": 4, "loss": 0.2}',
        ],
    )
    store = open_memory_store()
    report = ingest(tmp_path, store)
    assert problems_by_name(report) == {path.name: "4 values without a usable step skipped"}
    assert points_of(store) == 2


def test_a_tsv_row_with_a_step_that_is_no_number_is_counted(tmp_path: Path) -> None:
    folder = dvclive_copy(tmp_path)

    def damage(tsv: Path) -> None:
        lines = tsv.read_text().splitlines()
        lines[3] = "three\t" + lines[3].split("\t", 1)[1]
        tsv.write_text("\n".join(lines) + "\n")

    tsv = folder / "plots" / "metrics" / "val" / "acc.tsv"
    assert_one_row_lost(folder, tsv, damage, "1 value without a usable step skipped")


# -- Lightning hparams.yaml -------------------------------------------------------------------


def test_an_unclosed_deeply_nested_hparams_yaml_is_read_in_a_moment(tmp_path: Path) -> None:
    version = tmp_path / "version_0"
    shutil.copytree(FIXTURES / "lightning-csvlogger" / "lightning_logs" / "version_1", version)
    (version / "hparams.yaml").write_text("lr: " + "{" * 20_000 + "\n")
    store = open_memory_store()
    (tmp_path / "empty").mkdir()
    ingest(tmp_path / "empty", store)  # the importers' modules loaded before the clock starts
    started = time.perf_counter()
    report = ingest(tmp_path, store)
    elapsed = time.perf_counter() - started
    assert [Path(p.path).name for p in report.problems] == ["hparams.yaml"]
    assert len(store.runs()) == 1
    # Python's own YAML scanner needs about 2 s here on an idle machine; libyaml a millisecond.
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def test_a_dangling_link_named_like_a_log_is_not_an_unreadable_source(tmp_path: Path) -> None:
    (tmp_path / "x.csv").symlink_to(tmp_path / "gone" / "x.csv")
    assert ingest(tmp_path, open_memory_store()).problems == []


# -- a best value reached at several steps ----------------------------------------------------


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_a_min_or_max_reached_at_several_steps_is_shown_at_the_first(order: str) -> None:
    # The order points reach the store depends on how a file was parsed; the summary must not.
    steps = list(range(6)) if order == "ascending" else list(range(5, -1, -1))
    values = {0: 2.0, 1: 1.0, 2: 2.0, 3: 1.0, 4: 2.0, 5: 1.5}
    store = open_memory_store()
    store.put_runs(None, [RunRecord(id="r", source_kind="mltop", location="x", name="r")])
    store.add_points(
        pa.table(
            {
                "run_id": ["r"] * 6,
                "key": ["k"] * 6,
                "step": steps,
                "ts": [None] * 6,
                "value": [values[s] for s in steps],
            },
            schema=POINTS_SCHEMA,
        )
    )
    store.refresh_summaries(["r"])
    summary = store.summaries(["r"])["r"]["k"]
    assert (summary.min, summary.min_step, summary.max, summary.max_step) == (1.0, 1, 2.0, 0)

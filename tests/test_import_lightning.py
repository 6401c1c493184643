"""PyTorch Lightning CSVLogger folders: exactness against the fixture's oracle, appends, damage.

The fixture (tests/fixtures/lightning-csvlogger, see its PROVENANCE.md) holds two real
``lightning_logs/version_N`` folders; expected.json lists every non-empty metric cell of their
metrics.csv (with the ``epoch`` and ``step`` of its row) and their hparams.yaml.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest
from conftest import FIXTURES, copy_fixture, summary_rows

from mltop.core.discovery import discover
from mltop.core.entities import ImportReport, stable_id
from mltop.core.importers import lightning
from mltop.core.store import Store, open_memory_store

ORACLE = json.loads((FIXTURES / "lightning-csvlogger" / "expected.json").read_text())


def _import(store: Store, root: Path) -> ImportReport:
    found = discover(root, [lightning.IMPORTER])
    report = ImportReport()
    lightning.IMPORTER.import_sources(store, found.refs, report)
    return report


def _history(store: Store, run_id: str, key: str) -> list[tuple[int, float]]:
    table = store.history(run_id, key)
    return list(
        zip(table.column("step").to_pylist(), table.column("value").to_pylist(), strict=True)
    )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return copy_fixture("lightning-csvlogger", tmp_path)


def _run_id(logs: Path, version: str) -> str:
    return stable_id("lightning", str(logs / "lightning_logs" / version))


def test_versions_are_runs_in_the_loggers_experiment_with_hparams(logs: Path) -> None:
    store = open_memory_store()
    report = _import(store, logs)
    assert report.problems == [] and report.counts["lightning"].runs == 2
    runs = {r.name: r for r in store.runs()}
    assert set(runs) == {"version_0", "version_1"}
    for entry in ORACLE:
        run = runs[entry["version"]]
        assert run.experiment == "lightning_logs" and run.status == "FINISHED"
        params = store.params(run.id)
        assert set(params) == set(entry["hparams"])
        for key, value in entry["hparams"].items():
            if isinstance(value, bool):
                assert params[key] == ("true" if value else "false")
            else:
                assert float(params[key]) == value


def test_every_metric_cell_matches_the_oracle_and_epoch_is_a_metric_of_every_row(
    logs: Path,
) -> None:
    store = open_memory_store()
    _import(store, logs)
    for entry in ORACLE:
        run_id = _run_id(logs, entry["version"])
        expected: dict[str, list[tuple[int, float]]] = {}
        rows: dict[int, tuple[int, float]] = {}
        for point in entry["points"]:
            expected.setdefault(point["metric"], []).append((point["step"], point["value"]))
            rows[point["row"]] = (point["step"], float(point["epoch"]))
        # Lightning hands `epoch` to its loggers with every row, as TensorBoard charts it.
        expected["epoch"] = list(rows.values())
        summaries = store.summaries([run_id])[run_id]
        assert set(summaries) == set(expected)
        assert "step" not in summaries
        for key, points in expected.items():
            assert _history(store, run_id, key) == sorted(points)
        assert store.point_count(run_id) == len(entry["points"]) + len(rows)
    assert [len(e["points"]) for e in ORACLE] == [52, 60]


def test_reimport_is_idempotent(logs: Path) -> None:
    store = open_memory_store()
    _import(store, logs)
    counts = store.table_counts()
    again = _import(store, logs)
    assert again.points_added == 0 and again.runs_added == 0
    store.delete_files(list(store.file_states()))
    _import(store, logs)
    assert store.table_counts() == counts


def test_appended_rows_are_the_only_new_points(logs: Path) -> None:
    store = open_memory_store()
    _import(store, logs)
    metrics = logs / "lightning_logs" / "version_0" / "metrics.csv"
    # Lightning writes with the csv module: \r\n line ends; the last line is still being written
    with open(metrics, "a", newline="") as fh:
        fh.write("8,189,0.5,,\r\n8,194,0.25,,\r\n8,195,,0.95,")
    report = _import(store, logs)
    assert report.points_added == 2 + 2  # train_loss and epoch of each complete row
    run_id = _run_id(logs, "version_0")
    assert _history(store, run_id, "train_loss")[-2:] == [(189, 0.5), (194, 0.25)]
    with open(metrics, "a", newline="") as fh:
        fh.write("0.4\r\n")
    assert _import(store, logs).points_added == 3  # val_acc, val_loss, epoch
    assert _history(store, run_id, "val_loss")[-1] == (195, 0.4)
    fresh = open_memory_store()
    _import(fresh, logs)
    assert summary_rows(store) == summary_rows(fresh)


def test_a_growing_metrics_file_keeps_the_run_and_moves_its_clock(logs: Path) -> None:
    # The live case: only `updated` is written for the run, its params and name stay.
    store = open_memory_store()
    _import(store, logs)
    run_id = _run_id(logs, "version_0")
    before = store.run(run_id)
    params = store.params(run_id)
    metrics = logs / "lightning_logs" / "version_0" / "metrics.csv"
    with open(metrics, "a", newline="") as fh:
        fh.write("8,189,0.5,,\r\n")
    later = (before.updated or 0) + 3600
    os.utime(metrics, (later, later))
    assert _import(store, logs).points_added == 2  # train_loss and epoch
    after = store.run(run_id)
    assert after.updated == later
    assert (after.name, after.experiment, after.status) == (
        before.name,
        before.experiment,
        before.status,
    )
    assert store.params(run_id) == params


def test_a_rewritten_wider_header_replaces_the_history(logs: Path) -> None:
    store = open_memory_store()
    _import(store, logs)
    metrics = logs / "lightning_logs" / "version_0" / "metrics.csv"
    lines = metrics.read_text().splitlines()
    widened = [lines[0] + ",lr"] + [line + "," for line in lines[1:]] + ["8,190,,,,0.001"]
    metrics.write_text("\n".join(widened) + "\n")
    _import(store, logs)
    run_id = _run_id(logs, "version_0")
    assert store.point_count(run_id) == 53 + len(widened) - 1  # and one epoch point per row
    assert _history(store, run_id, "lr") == [(190, 0.001)]


def test_nan_and_infinities_survive(tmp_path: Path) -> None:
    version = tmp_path / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    (version / "hparams.yaml").write_text("lr: 0.1\n")
    (version / "metrics.csv").write_text("epoch,step,loss\n0,0,1.0\n0,1,nan\n0,2,inf\n0,3,-inf\n")
    store = open_memory_store()
    _import(store, tmp_path)
    values = [v for _, v in _history(store, _run_id(tmp_path, "version_0"), "loss")]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2:] == [math.inf, -math.inf]


def test_unusual_hparams_are_kept_as_text(tmp_path: Path) -> None:
    version = tmp_path / "my exp ü" / "version_3"
    version.mkdir(parents=True)
    (version / "hparams.yaml").write_text(
        "args: !!python/object:argparse.Namespace\n  lr: 0.1\n"
        "model:\n  layers: [32, 16]\n  name: mlp ✓\nnote: null\n"
    )
    (version / "metrics.csv").write_text("epoch,step,val loss/ü\n0,5,0.5\n")
    store = open_memory_store()
    report = _import(store, tmp_path)
    assert report.problems == []
    (run,) = store.runs()
    assert run.experiment == "my exp ü" and run.name == "version_3"
    params = store.params(run.id)
    assert params["model.layers"] == "[32, 16]" and params["model.name"] == "mlp ✓"
    assert params["args"] == "<tag:yaml.org,2002:python/object:argparse.Namespace>"
    assert list(store.summaries([run.id])[run.id]) == ["epoch", "val loss/ü"]


def test_detect_wants_metrics_beside_hparams_or_in_a_version_folder() -> None:
    imp = lightning.IMPORTER
    assert imp.detect(Path("/x/version_0"), [], ["metrics.csv"]) is not None
    assert imp.detect(Path("/x/run"), [], ["metrics.csv", "hparams.yaml"]) is not None
    assert imp.detect(Path("/x/run"), [], ["metrics.csv"]) is None
    found = imp.detect(Path("/x/version_1"), ["checkpoints"], ["metrics.csv", "hparams.yaml"])
    assert found is not None and found.claimed == {"metrics.csv", "hparams.yaml"}
    assert not found.prune


# -- damaged input ---------------------------------------------------------------------------


def _assert_one_line_problems(report: ImportReport, root: Path) -> None:
    for problem in report.problems:
        assert "\n" not in problem.message and problem.path.startswith(str(root))


def test_damaged_copies_never_raise(tmp_path: Path) -> None:
    src = FIXTURES / "lightning-csvlogger" / "lightning_logs" / "version_1"
    metrics = (src / "metrics.csv").read_bytes()
    hparams = (src / "hparams.yaml").read_bytes()
    rng = random.Random(11)
    cases: list[tuple[bytes, bytes]] = [
        (b"", hparams),
        (metrics[: len(metrics) // 2], hparams),
        (rng.randbytes(3000), hparams),
        (metrics, rng.randbytes(300)),
        (metrics.replace(b"val_acc", b"val_\xff\xfeacc"), hparams.replace(b"lr", b"l\xffr")),
        (metrics, b"lr: [unclosed\n"),
        (metrics, b"- just\n- a list\n"),
    ]
    for _ in range(200):
        data = bytearray(metrics)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(b",\n\"'x9.-\xff\x00")
        cases.append((bytes(data), hparams))
    for i, (metrics_bytes, hparams_bytes) in enumerate(cases):
        version = tmp_path / f"case{i}" / "lightning_logs" / "version_0"
        version.mkdir(parents=True)
        (version / "metrics.csv").write_bytes(metrics_bytes)
        (version / "hparams.yaml").write_bytes(hparams_bytes)
    # all copies in one import, as a scan of a big tree would read them
    store = open_memory_store()
    report = _import(store, tmp_path)
    _assert_one_line_problems(report, tmp_path)
    assert len(store.runs()) == len(cases)
    assert len({p.path for p in report.problems}) == len(report.problems)
    again = _import(store, tmp_path)
    # A file none of whose rows could be read is not recorded as read: the next scan says again
    # what is wrong with it, and with nothing else.
    assert again.points_added == 0 and again.runs_added == 0
    assert again.problems and {p.path for p in again.problems} <= {p.path for p in report.problems}


def test_bad_hparams_are_reported_and_the_metrics_still_imported(logs: Path) -> None:
    hp = logs / "lightning_logs" / "version_0" / "hparams.yaml"
    hp.write_bytes(b"lr: 0.1\n\xff\xfe: x\n")
    store = open_memory_store()
    report = _import(store, logs)
    (problem,) = report.problems
    assert problem.path == str(hp) and "not UTF-8" in problem.message
    run_id = _run_id(logs, "version_0")
    assert store.params(run_id) == {} and store.point_count(run_id) == 52 + 44  # 44 rows' epochs


def test_a_truncated_last_line_waits_for_its_newline(logs: Path) -> None:
    metrics = logs / "lightning_logs" / "version_0" / "metrics.csv"
    data = metrics.read_bytes()
    metrics.write_bytes(data[:-10])
    store = open_memory_store()
    report = _import(store, logs)
    assert report.problems == []
    run_id = _run_id(logs, "version_0")
    # the last row (val_acc, val_loss and its epoch) is incomplete
    assert store.point_count(run_id) == 50 + 43
    with open(metrics, "ab") as fh:
        fh.write(data[-10:])
    assert _import(store, logs).points_added == 3
    assert store.point_count(run_id) == 52 + 44


def test_a_broken_row_is_skipped_and_the_other_rows_kept(logs: Path) -> None:
    metrics = logs / "lightning_logs" / "version_0" / "metrics.csv"
    lines = metrics.read_bytes().split(b"\r\n")
    lines[3] = b'0,14,"2.05'  # an unterminated quote: DuckDB refuses the whole file
    metrics.write_bytes(b"\r\n".join(lines))
    store = open_memory_store()
    report = _import(store, logs)
    (problem,) = report.problems
    assert problem.path == str(metrics) and problem.message.startswith("1 malformed row skipped")
    assert store.point_count(_run_id(logs, "version_0")) == 51 + 43  # the broken row's epoch too

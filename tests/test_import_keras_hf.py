"""Keras CSVLogger files and Hugging Face Trainer output folders.

Fixtures: tests/fixtures/training-logs (see its PROVENANCE.md). The Keras oracles are the
``History.history`` dumps written by the same ``fit()`` calls (keras-resumed.csv = part 1 +
part 2); the HF oracle is the Trainer's own top-level trainer_state.json (the copy keeps only
the text files of the checkpoints, see hf-trainer/COPY.md).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, copy_fixture, summary_rows

from mltop.core.discovery import discover
from mltop.core.entities import ImportReport, stable_id
from mltop.core.importers import hf_trainer, keras_csv
from mltop.core.store import Store, open_memory_store

KERAS = FIXTURES / "training-logs" / "keras-csvlogger"
HF = FIXTURES / "training-logs" / "hf-trainer"


def _import(store: Store, root: Path, importer: object) -> ImportReport:
    found = discover(root, [importer])  # type: ignore[list-item]
    report = ImportReport()
    importer.import_sources(store, found.refs, report)  # type: ignore[attr-defined]
    return report


def _history(store: Store, run_id: str, key: str) -> list[tuple[int, float]]:
    table = store.history(run_id, key)
    steps, values = table.column("step").to_pylist(), table.column("value").to_pylist()
    return list(zip(steps, values, strict=True))


def _one_line(report: ImportReport, root: Path) -> None:
    for problem in report.problems:
        assert "\n" not in problem.message and problem.path.startswith(str(root))


# -- Keras -----------------------------------------------------------------------------------


@pytest.fixture
def keras_dir(tmp_path: Path) -> Path:
    return copy_fixture("training-logs/keras-csvlogger", tmp_path)


def _keras_id(path: Path) -> str:
    return stable_id("keras", str(path))


def _keras_oracle(name: str) -> dict[str, list[tuple[int, float]]]:
    parts = [KERAS / f"{name}.history.json", KERAS / f"{name}.history-part2.json"]
    out: dict[str, list[tuple[int, float]]] = {}
    for part in parts:
        if not part.exists():
            continue
        doc = json.loads(part.read_text())
        for key, values in doc["history"].items():
            out.setdefault(key, []).extend(zip(doc["epoch"], values, strict=True))
    return out


def test_keras_csvs_match_their_history_oracles(keras_dir: Path) -> None:
    store = open_memory_store()
    report = _import(store, keras_dir, keras_csv.IMPORTER)
    assert report.problems == [] and report.counts["keras"].runs == 3
    runs = {r.name: r for r in store.runs()}
    assert set(runs) == {"keras-adam-1e-2", "keras-adam-1e-3", "keras-resumed"}
    for name, run in runs.items():
        assert run.experiment == "keras-csvlogger" and run.status == "FINISHED"
        oracle = _keras_oracle(name)
        summaries = store.summaries([run.id])[run.id]
        # learning_rate is in History but not in the CSV (callback order; see PROVENANCE.md)
        assert set(summaries) == set(oracle) - {"learning_rate"}
        for key in summaries:
            assert _history(store, run.id, key) == oracle[key]
    resumed = runs["keras-resumed"]
    assert store.summaries([resumed.id])[resumed.id]["loss"].count == 12


def test_keras_detection_needs_csvloggers_header(keras_dir: Path) -> None:
    logging_csvs = FIXTURES / "training-logs" / "python-logging"
    names = sorted(p.name for p in logging_csvs.glob("*.csv"))
    assert names and keras_csv.IMPORTER.detect(logging_csvs, [], names) is None
    found = keras_csv.IMPORTER.detect(keras_dir, [], sorted(p.name for p in keras_dir.iterdir()))
    assert found is not None
    assert found.claimed == {"keras-adam-1e-2.csv", "keras-adam-1e-3.csv", "keras-resumed.csv"}


def test_keras_reimport_is_idempotent(keras_dir: Path) -> None:
    store = open_memory_store()
    _import(store, keras_dir, keras_csv.IMPORTER)
    counts = store.table_counts()
    assert _import(store, keras_dir, keras_csv.IMPORTER).points_added == 0
    store.delete_files(list(store.file_states()))
    _import(store, keras_dir, keras_csv.IMPORTER)
    assert store.table_counts() == counts


def test_keras_appended_epochs_are_the_only_new_points(keras_dir: Path) -> None:
    store = open_memory_store()
    _import(store, keras_dir, keras_csv.IMPORTER)
    path = keras_dir / "keras-adam-1e-2.csv"
    with open(path, "a", newline="") as fh:
        fh.write("15,0.99,0.04,0.97,0.11\r\n16,0.995,0.03,NA,0.1")
    report = _import(store, keras_dir, keras_csv.IMPORTER)
    assert report.points_added == 4
    with open(path, "a", newline="") as fh:
        fh.write("\r\n")
    assert _import(store, keras_dir, keras_csv.IMPORTER).points_added == 3
    assert _history(store, _keras_id(path), "val_accuracy")[-1] == (15, 0.97)
    assert _history(store, _keras_id(path), "loss")[-1] == (16, 0.03)
    fresh = open_memory_store()
    _import(fresh, keras_dir, keras_csv.IMPORTER)
    assert summary_rows(store) == summary_rows(fresh)


def test_keras_resume_from_an_earlier_epoch_replaces_the_orphaned_rows(keras_dir: Path) -> None:
    path = keras_dir / "keras-resumed.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:9]) + "\n")  # epochs 0..7, then a crash
    store = open_memory_store()
    _import(store, keras_dir, keras_csv.IMPORTER)
    run_id = _keras_id(path)
    assert [s for s, _ in _history(store, run_id, "loss")] == list(range(8))
    with open(path, "a") as fh:  # resumed from the checkpoint of epoch 5
        fh.write("6,0.5,0.6,0.5,0.6\n7,0.5,0.7,0.5,0.7\n")
    _import(store, keras_dir, keras_csv.IMPORTER)
    history = _history(store, run_id, "loss")
    assert [s for s, _ in history] == list(range(8))
    assert history[6:] == [(6, 0.6), (7, 0.7)]
    # the same file read from scratch gives the same history
    fresh = open_memory_store()
    _import(fresh, keras_dir, keras_csv.IMPORTER)
    assert _history(fresh, run_id, "loss") == history


def test_keras_nan_and_infinities_survive(tmp_path: Path) -> None:
    path = tmp_path / "diverged ü.csv"
    path.write_text("epoch,loss,val_loss\n0,1.0,nan\n1,inf,-inf\n")
    store = open_memory_store()
    _import(store, tmp_path, keras_csv.IMPORTER)
    (run,) = store.runs()
    assert run.name == "diverged ü"
    assert _history(store, run.id, "loss") == [(0, 1.0), (1, math.inf)]
    (first, second) = _history(store, run.id, "val_loss")
    assert math.isnan(first[1]) and second == (1, -math.inf)


def test_keras_damaged_copies_never_raise(tmp_path: Path) -> None:
    original = (KERAS / "keras-adam-1e-3.csv").read_bytes()
    header_end = original.index(b"\n") + 1
    rng = random.Random(5)
    cases = [original[:-15], original.replace(b"0.4", b"0.\xff4"), original[:header_end]]
    for _ in range(120):
        body = bytearray(original[header_end:])
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] = rng.choice(b',\n"x.-\xff\x00')
        cases.append(original[:header_end] + bytes(body))
    for i, data in enumerate(cases):
        (tmp_path / f"run-{i:03d}.csv").write_bytes(data)
    store = open_memory_store()
    report = _import(store, tmp_path, keras_csv.IMPORTER)
    _one_line(report, tmp_path)
    assert len(store.runs()) == len(cases)
    assert len({p.path for p in report.problems}) == len(report.problems)
    by_name = {r.name: r.id for r in store.runs()}
    assert store.point_count(by_name["run-000"]) == 14 * 4  # the cut last row waits
    assert store.point_count(by_name["run-002"]) == 0  # header only: training just started
    # every value that was read is one Keras wrote (or NaN/inf parsed from a damaged cell)
    good = {float(c) for line in original.splitlines()[1:] for c in line.split(b",")[1:]}
    for run_id in by_name.values():
        for key in store.summaries([run_id])[run_id]:
            for _, value in _history(store, run_id, key):
                assert value in good or not math.isfinite(value) or abs(value) < 100


def test_keras_rows_with_a_broken_cell_count_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    path.write_bytes(b"epoch,acc,loss\n0,0.5,1.0\n1,0.6\n2,0.7,0.8\nthree,0.8,0.7\n")
    store = open_memory_store()
    report = _import(store, tmp_path, keras_csv.IMPORTER)
    (problem,) = report.problems
    assert problem.path == str(path)
    assert problem.message == "2 malformed row(s) skipped (first at line 3)"
    (run,) = store.runs()
    assert _history(store, run.id, "loss") == [(0, 1.0), (2, 0.8)]


# -- Hugging Face Trainer --------------------------------------------------------------------


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    return copy_fixture("training-logs/hf-trainer", tmp_path)


def _hf_oracle(path: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, dict[int, float]] = {}
    for entry in json.loads(path.read_text())["log_history"]:
        for key, value in entry.items():
            if key != "step":
                out.setdefault(key, {})[entry["step"]] = float(value)
    return {k: sorted(v.items()) for k, v in out.items()}


def test_hf_output_dir_is_one_run_from_the_newest_state(hf_dir: Path) -> None:
    store = open_memory_store()
    report = _import(store, hf_dir, hf_trainer.IMPORTER)
    assert report.problems == [] and report.counts["hf-trainer"].runs == 1
    (run,) = store.runs()
    assert run.name == "output_dir" and run.experiment == "hf-trainer"
    assert run.status == "FINISHED"
    oracle = _hf_oracle(hf_dir / "output_dir" / "trainer_state.json")
    summaries = store.summaries([run.id])[run.id]
    assert set(summaries) == set(oracle)
    for key, points in oracle.items():
        assert _history(store, run.id, key) == points
    assert summaries["loss"].count == 10 and summaries["eval_loss"].count == 4
    assert summaries["epoch"].count == 12  # once per step, though eval entries repeat it
    assert summaries["train_loss"].last == pytest.approx(0.6797069311141968)
    assert store.params(run.id) == {
        "train_batch_size": "16",
        "num_train_epochs": "1",
        "max_steps": "20",
        "logging_steps": "2",
        "eval_steps": "5",
        "save_steps": "10",
    }
    tags = store.tags(run.id)
    assert tags["global_step"] == "20" and tags["trainer_state"] == "trainer_state.json"
    assert "best_metric" not in tags  # null in the file


def test_hf_falls_back_to_the_highest_checkpoint(hf_dir: Path) -> None:
    out = hf_dir / "output_dir"
    (out / "trainer_state.json").unlink()
    store = open_memory_store()
    _import(store, hf_dir, hf_trainer.IMPORTER)
    (run,) = store.runs()
    assert store.tags(run.id)["trainer_state"] == "checkpoint-20/trainer_state.json"
    assert "train_loss" not in store.summaries([run.id])[run.id]
    assert store.summaries([run.id])[run.id]["loss"].count == 10
    shutil.rmtree(out / "checkpoint-20")
    _import(store, hf_dir, hf_trainer.IMPORTER)
    (run,) = store.runs()
    assert store.summaries([run.id])[run.id]["loss"].count == 5
    assert run.status == "RUNNING"  # stopped at step 10 of 20, as far as the files tell


def test_hf_rewritten_state_is_reread_without_duplicates(hf_dir: Path) -> None:
    store = open_memory_store()
    _import(store, hf_dir, hf_trainer.IMPORTER)
    counts = store.table_counts()
    assert _import(store, hf_dir, hf_trainer.IMPORTER).points_added == 0
    state_path = hf_dir / "output_dir" / "trainer_state.json"
    state = json.loads(state_path.read_text())
    state["log_history"].append({"epoch": 0.7, "loss": float("nan"), "step": 22})
    state["log_history"].append({"epoch": 0.8, "grad_norm": float("inf"), "step": 24})
    state["global_step"] = 24
    state_path.write_text(json.dumps(state))
    _import(store, hf_dir, hf_trainer.IMPORTER)
    assert store.table_counts()["metrics"] == counts["metrics"] + 4
    (run,) = store.runs()
    assert math.isnan(_history(store, run.id, "loss")[-1][1])
    assert _history(store, run.id, "grad_norm")[-1] == (24, math.inf)


def test_hf_detection_claims_checkpoints_for_their_output_dir(hf_dir: Path) -> None:
    out = hf_dir / "output_dir"
    found = hf_trainer.IMPORTER.detect(
        out / "checkpoint-10", [], ["trainer_state.json", "config.json"]
    )
    assert found is not None and found.prune and [r.location for r in found.refs] == [out]
    assert hf_trainer.IMPORTER.detect(out, ["checkpoint-10"], []) is not None
    assert hf_trainer.IMPORTER.detect(hf_dir, ["output_dir"], ["console.log"]) is None
    assert len(discover(hf_dir, [hf_trainer.IMPORTER]).refs) == 1


def test_hf_damaged_states_fall_back_or_are_skipped(tmp_path: Path) -> None:
    original = (HF / "output_dir" / "trainer_state.json").read_bytes()
    checkpoint = (HF / "output_dir" / "checkpoint-20" / "trainer_state.json").read_bytes()
    rng = random.Random(9)
    damaged = [b"", original[: len(original) // 2], rng.randbytes(500), b"\xff\xfe" + original]
    damaged += [b"[1, 2]", b'{"log_history": 3}']
    for _ in range(100):
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b'{}[],:"x9\xff\x00')
        damaged.append(bytes(data))
    for i, data in enumerate(damaged):
        out = tmp_path / f"case{i:03d}" / "output_dir"
        (out / "checkpoint-20").mkdir(parents=True)
        (out / "trainer_state.json").write_bytes(data)
        (out / "checkpoint-20" / "trainer_state.json").write_bytes(checkpoint)
    store = open_memory_store()
    report = _import(store, tmp_path, hf_trainer.IMPORTER)
    _one_line(report, tmp_path)
    assert len(store.runs()) == len(damaged)
    for run in store.runs():
        # either the damaged top-level file still parsed, or the checkpoint stood in for it
        assert store.summaries([run.id])[run.id]["loss"].count >= 9
    for problem in report.problems:
        assert problem.path.endswith("output_dir/trainer_state.json")
    # all copies of the state broken: no run, and the problems name both files
    only = tmp_path / "broken" / "output_dir"
    (only / "checkpoint-5").mkdir(parents=True)
    (only / "trainer_state.json").write_bytes(b"{")
    (only / "checkpoint-5" / "trainer_state.json").write_bytes(b"\x00\x01")
    fresh = open_memory_store()
    report = _import(fresh, tmp_path / "broken", hf_trainer.IMPORTER)
    assert fresh.runs() == []
    assert sorted(p.path for p in report.problems) == [
        str(only / "checkpoint-5" / "trainer_state.json"),
        str(only / "trainer_state.json"),
    ]


def test_a_csvlogger_file_named_training_log_as_in_keras_docs_is_a_keras_run(
    keras_dir: Path, tmp_path: Path
) -> None:
    # Keras's documentation: CSVLogger('training.log'); the bytes are the fixture's, from Keras.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copyfile(keras_dir / "keras-adam-1e-2.csv", project / "training.log")
    (project / "console.log").write_text("Epoch 1/4\nloss: 0.7\n", encoding="utf-8")
    store = open_memory_store()
    report = _import(store, project, keras_csv.IMPORTER)
    assert report.problems == []
    (run,) = store.runs()
    assert (run.name, run.source_kind, run.experiment) == ("training", "keras", "project")
    oracle = _keras_oracle("keras-adam-1e-2")
    for key in store.summaries([run.id])[run.id]:
        assert _history(store, run.id, key) == oracle[key]


def test_a_checkpoint_opened_directly_is_a_run_named_after_itself(hf_dir: Path) -> None:
    out = hf_dir / "output_dir"
    checkpoint = out / "checkpoint-10"
    store = open_memory_store()
    report = _import(store, checkpoint, hf_trainer.IMPORTER)
    assert report.problems == []
    (run,) = store.runs()
    assert (run.name, run.location) == ("checkpoint-10", str(checkpoint))
    # Only the checkpoint's own state is read, not the output folder's newer one outside it.
    oracle = _hf_oracle(checkpoint / "trainer_state.json")
    for key, points in oracle.items():
        assert _history(store, run.id, key) == points
    assert store.tags(run.id)["trainer_state"] == "trainer_state.json"
    # Opened from above, the checkpoint is still part of its output folder's run.
    store = open_memory_store()
    _import(store, hf_dir, hf_trainer.IMPORTER)
    assert [r.name for r in store.runs()] == ["output_dir"]

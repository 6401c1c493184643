"""System samples in a run's ``system.csv``: read as the old ``metrics.jsonl`` lines were,
followed live, and a damaged file reported in one line while the rest of the run is kept."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

from conftest import write_run

from mltop.core.discovery import ingest
from mltop.core.live.watch import Watcher
from mltop.core.runs.system_keys import is_system_key
from mltop.core.store import Store, open_memory_store
from mltop.core.tracking import METRICS_FILE, SYSTEM_FILE, start_run

HEADER = "step,ts,system/cpu_utilization_percentage,system/process_memory_rss_megabytes\n"


def _histories(store: Store, name: str) -> dict[str, list[dict[str, object]]]:
    (run,) = [r for r in store.runs() if r.name == name]
    keys = store.summaries([run.id])[run.id]
    return {key: store.history(run.id, key).to_pylist() for key in sorted(keys)}


def _as_old_layout(folder: Path, dest: Path) -> None:
    """The run as the writer used to leave it: each sample a line of metrics.jsonl, with the
    fields the sample had, in the order the lines were written."""
    shutil.copytree(folder, dest)
    lines = [(json.loads(x)["ts"], x) for x in (folder / METRICS_FILE).read_text().splitlines()]
    with open(folder / SYSTEM_FILE, newline="") as fh:
        for row in csv.DictReader(fh):
            sample = {"step": int(row.pop("step")), "ts": float(row.pop("ts"))}
            sample |= {k: float(v) for k, v in row.items() if v != ""}
            lines.append((sample["ts"], json.dumps(sample)))
    lines.sort(key=lambda line: line[0])
    (dest / METRICS_FILE).write_text("".join(text + "\n" for _, text in lines))
    (dest / SYSTEM_FILE).unlink()


def test_samples_in_system_csv_and_in_old_metrics_lines_import_alike(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with start_run(root / "new", name="run", system_metrics=True, system_interval=0.05) as run:
        for step in range(4):
            run.log(step=step, loss=1.0 / (step + 1))
            time.sleep(0.08)
    _as_old_layout(run.folder, root / "old" / "run")
    store = open_memory_store()
    assert ingest(root, store).problems == []  # both layouts in one batch
    new = [r for r in store.runs() if "new" in r.location]
    assert len(new) == 1 and len(store.runs()) == 2
    histories = {}
    for run_row in store.runs():
        keys = store.summaries([run_row.id])[run_row.id]
        histories[Path(run_row.location).parent.name] = {
            key: (store.history(run_row.id, key).to_pylist(), keys[key]) for key in sorted(keys)
        }
    old, new_ = histories["old"], histories["new"]
    assert sorted(old) == sorted(new_) and any(is_system_key(k) for k in new_)
    for key in old:
        assert old[key][0] == new_[key][0], key
        summary_old, summary_new = old[key][1], new_[key][1]
        assert (summary_old.max, summary_old.count, summary_old.last_step) == (
            summary_new.max,
            summary_new.count,
            summary_new.last_step,
        )


def test_a_damaged_system_file_is_one_line_and_the_run_keeps_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "project"
    folder = write_run(root / "runs", "damaged", steps=5)
    (folder / SYSTEM_FILE).write_text(
        HEADER
        + "0,1790000000.0,40.0,100.0\n"
        + "1,1790000010.0,41.0\n"  # cut short: a field missing
        + "2,1790000020.0,\x1b[31mbusy,102.0,7\n"  # an escape sequence and a field too many
        + "3,1790000030.0,43.0,103.0\n"
    )
    store = open_memory_store()
    report = ingest(root, store)
    (problem,) = report.problems
    assert problem.path == str(folder / SYSTEM_FILE)
    assert "2 malformed rows skipped (first at line 3)" in problem.message
    assert "\n" not in str(problem) and "\x1b" not in str(problem)
    histories = _histories(store, "damaged")
    assert len(histories["loss"]) == 5 and len(histories["acc"]) == 5
    assert [p["value"] for p in histories["system/cpu_utilization_percentage"]] == [40.0, 43.0]


def test_an_unreadable_system_file_leaves_the_model_metrics(tmp_path: Path) -> None:
    root = tmp_path / "project"
    folder = write_run(root / "runs", "garbled", steps=3)
    (folder / SYSTEM_FILE).write_bytes(b"\x00\x01\x02 not a table\n\xff\xfe\x1b[2J junk\n")
    store = open_memory_store()
    report = ingest(root, store)
    (problem,) = report.problems
    assert problem.path == str(folder / SYSTEM_FILE) and "\n" not in str(problem)
    assert sorted(_histories(store, "garbled")) == ["acc", "loss"]


def test_a_line_being_written_waits_for_its_end(tmp_path: Path) -> None:
    root = tmp_path / "project"
    folder = write_run(root / "runs", "writing", steps=2)
    (folder / SYSTEM_FILE).write_text(HEADER + "0,1790000000.0,40.0,100.0\n1,1790000010.0,4")
    store = open_memory_store()
    assert ingest(root, store).problems == []
    assert len(_histories(store, "writing")["system/cpu_utilization_percentage"]) == 1
    with open(folder / SYSTEM_FILE, "a") as fh:
        fh.write("1.0,101.0\n")
    assert ingest(root, store).problems == []
    cpu = _histories(store, "writing")["system/cpu_utilization_percentage"]
    assert [(p["step"], p["value"]) for p in cpu] == [(0, 40.0), (1, 41.0)]


def test_a_system_file_appearing_replaced_or_removed_keeps_the_model_points(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    folder = write_run(root / "runs", "later", steps=4)
    store = open_memory_store()
    ingest(root, store)
    model = _histories(store, "later")
    # The first sample of a run already imported: its points are added, none taken away.
    (folder / SYSTEM_FILE).write_text(HEADER + "3,1790000000.0,40.0,100.0\n")
    assert ingest(root, store).problems == []
    assert _histories(store, "later") == model | {
        "system/cpu_utilization_percentage": [{"step": 3, "ts": 1790000000.0, "value": 40.0}],
        "system/process_memory_rss_megabytes": [{"step": 3, "ts": 1790000000.0, "value": 100.0}],
    }
    # Rewritten with other rows: the run is read whole, nothing doubled, nothing stale.
    time.sleep(0.01)
    (folder / SYSTEM_FILE).write_text(HEADER + "1,1790000005.0,50.0,\n2,1790000006.0,51.0,\n")
    assert ingest(root, store).problems == []
    histories = _histories(store, "later")
    assert {k: v for k, v in histories.items() if not is_system_key(k)} == model
    assert [p["value"] for p in histories["system/cpu_utilization_percentage"]] == [50.0, 51.0]
    assert "system/process_memory_rss_megabytes" not in histories  # no value in the new rows
    # Removed: its points go, the model's stay.
    (folder / SYSTEM_FILE).unlink()
    assert ingest(root, store).problems == []
    assert _histories(store, "later") == model


def test_the_watcher_follows_samples_of_a_running_job(tmp_path: Path) -> None:
    root = tmp_path / "project"
    store = open_memory_store()
    with start_run(root / "runs", name="live", system_metrics=True, system_interval=0.1) as run:
        run.log(step=0, loss=1.0)
        ingest(root, store)
        watcher = Watcher([root], store, lambda update: None)
        time.sleep(0.35)  # three samples or so
        run.log(step=1, loss=0.5)
        update = watcher.apply({str(run.folder / SYSTEM_FILE), str(run.folder / METRICS_FILE)})
        assert not update.full_scan and len(update.changed_runs) == 1
        during = _histories(store, "live")
        assert len(during["loss"]) == 2 and len(during["system/cpu_utilization_percentage"]) >= 2
    watcher.apply({str(run.folder / SYSTEM_FILE)})
    with open(run.folder / SYSTEM_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    histories = _histories(store, "live")
    assert [p["ts"] for p in histories["system/process_memory_rss_megabytes"]] == [
        float(r["ts"]) for r in rows
    ]  # every sample once, in order, however the scans cut the file
    assert len(histories["loss"]) == 2

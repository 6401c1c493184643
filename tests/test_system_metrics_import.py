"""System metrics recorded by the trackers become a family of metrics of their own.

W&B: the real offline runs in tests/fixtures/wandb-offline/ (wandb 0.31 wrote one stats record
per run: memory, disk, network, process RSS), plus stats records derived from them. MLflow: a
run logged here by MLflow itself with system metrics logging on. Lightning and mltop's writer:
see their tests below.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_import_wandb import (
    FINISHED,
    FIXTURES,
    extract,
    import_run,
    logged_last,
    oracle_records,
)

from mltop.core.common.protowire import encode_len_field, encode_varint
from mltop.core.discovery import ingest
from mltop.core.importers.wandb_offline import run_id_for
from mltop.core.runs.query import compile_query
from mltop.core.runs.runs_view import available_columns, default_columns
from mltop.core.runs.system_keys import gpu_index, is_system_key, system_groups, wandb_stats_key
from mltop.core.store import open_memory_store


@pytest.fixture
def wandb_dir(tmp_path: Path) -> Path:
    return extract(FIXTURES / "wandb-offline-runs.tar.gz", tmp_path) / "wandb"


def stats_record(num: int, seconds: int, items: dict[str, bytes]) -> bytes:
    """A StatsRecord (Record field 7) as wandb-core frames one: timestamp, then items."""
    timestamp = encode_varint(1 << 3) + encode_varint(seconds)
    body = encode_len_field(2, timestamp)
    body += b"".join(
        encode_len_field(3, encode_len_field(1, k.encode()) + encode_len_field(16, v))
        for k, v in items.items()
    )
    return encode_varint(1 << 3) + encode_varint(num) + encode_len_field(7, body)


def test_wandb_stats_records_are_system_metrics_at_their_time(wandb_dir: Path) -> None:
    folder = wandb_dir / FINISHED
    store = open_memory_store()
    assert import_run(store, folder).problems == []
    run_id = run_id_for(folder)
    oracle = next(r for r in oracle_records(FINISHED) if r["type"] == "stats")["stats"]
    summaries = store.summaries([run_id])[run_id]
    system = {k: s for k, s in summaries.items() if is_system_key(k)}
    assert set(system) == {wandb_stats_key(k) for k in oracle["item"]}
    assert system["system/proc.memory.rssMB"].last == oracle["item"]["proc.memory.rssMB"]
    # memory_percent means MLflow's system_memory_usage_percentage: one name for both trackers.
    assert system["system/system_memory_usage_percentage"].last == oracle["item"]["memory_percent"]
    point = store.history(run_id, "system/proc.memory.rssMB").to_pylist()[0]
    assert point["ts"] == _iso(oracle["timestamp"])
    # The model's metrics are untouched by them.
    assert not any(is_system_key(k) for k in summaries if k.startswith(("train/", "val/")))


def _iso(text: str) -> Any:
    from datetime import datetime

    seconds = datetime.fromisoformat(text.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
    return pytest.approx(seconds, abs=1e-6)


def test_wandb_gpu_stats_land_per_gpu_and_bad_values_are_one_line(wandb_dir: Path) -> None:
    folder = wandb_dir / FINISHED
    values = {
        "gpu.0.gpu": b"87.5",
        "gpu.1.gpu": b"3.0",
        "gpu.0.memoryAllocated": b"61.25",
        "gpu.process.0.gpu": b"87.5",
        "gpu.0.temp": b"NaN",
        "cpu": b"1e400",  # beyond a double: infinity, as json reads it
        "gpu.0.name": b'"NVIDIA A100"',  # text: not a number, left out
        "memory_percent": b"{}",
    }
    logged_last(folder, stats_record(9000, 1795723450, values))
    store = open_memory_store()
    report = import_run(store, folder)
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert "\n" not in problem.message
    assert "2 system stats value(s) that are not numbers skipped" in problem.message
    run_id = run_id_for(folder)
    summaries = store.summaries([run_id])[run_id]
    assert summaries["system/gpu_0_utilization_percentage"].last == 87.5
    assert summaries["system/gpu_1_utilization_percentage"].last == 3.0
    assert summaries["system/gpu_0_memory_usage_percentage"].last == 61.25
    assert summaries["system/gpu.process.0.gpu"].last == 87.5
    assert math.isnan(summaries["system/gpu.0.temp"].last)
    assert summaries["system/cpu"].last == math.inf
    # The rest of the run is imported as before.
    assert summaries["train/loss"].count == 50
    groups = dict(system_groups([k for k in summaries if is_system_key(k)]))
    assert groups["GPU 0"] == sorted(
        [
            "system/gpu.0.temp",
            "system/gpu.process.0.gpu",
            "system/gpu_0_memory_usage_percentage",
            "system/gpu_0_utilization_percentage",
        ]
    )
    assert groups["GPU 1"] == ["system/gpu_1_utilization_percentage"]
    # A stats record comes after the history of step 49: its points sit at that step.
    assert store.history(run_id, "system/gpu.0.temp").to_pylist()[0]["step"] == 49


def test_system_key_recognition_across_trackers() -> None:
    assert is_system_key("system/gpu_0_utilization_percentage")
    assert is_system_key("DeviceStatsMonitor.on_train_batch_end/cpu_percent")
    assert is_system_key("gpu_id: 1/utilization.gpu (%)")
    assert not is_system_key("val_loss")
    assert not is_system_key("systemic/loss")
    assert gpu_index("system/gpu_12_memory_usage_megabytes") == 12
    assert gpu_index("system/gpu.process.3.gpu") == 3
    assert gpu_index("gpu_id: 1/utilization.gpu (%)") == 1
    assert gpu_index("system/cpu_utilization_percentage") is None
    assert json.dumps(wandb_stats_key("gpu.2.powerWatts")) == '"system/gpu_2_power_usage_watts"'


# -- MLflow: a run logged by MLflow itself with system metrics on --------------------------------

MLFLOW_SCRIPT = """
import sys, time
import mlflow
mlflow.set_tracking_uri(f"sqlite:///{sys.argv[1]}/mlflow.db")
mlflow.enable_system_metrics_logging()
mlflow.set_system_metrics_sampling_interval(1)
mlflow.set_system_metrics_samples_before_logging(1)
mlflow.set_experiment("sysmetrics")
with mlflow.start_run(run_name="with-system-metrics"):
    for step in range(4):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        time.sleep(1)
"""


def test_mlflow_system_metrics_are_imported_and_filters_reach_them(tmp_path: Path) -> None:
    pytest.importorskip("psutil")  # MLflow samples nothing without it
    subprocess.run(
        [sys.executable, "-c", MLFLOW_SCRIPT, str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    store = open_memory_store()
    report = ingest(tmp_path, store)
    assert report.problems == []
    (run,) = store.runs()
    summaries = store.summaries([run.id])[run.id]
    system = sorted(k for k in summaries if is_system_key(k))
    # MLflow's CPU monitor always runs; with psutil it logs CPU and memory on every sample.
    assert "system/cpu_utilization_percentage" in system
    assert "system/system_memory_usage_megabytes" in system
    assert [k for k in summaries if not is_system_key(k)] == ["loss"]
    cpu = store.history(run.id, "system/cpu_utilization_percentage").to_pylist()
    assert len(cpu) >= 2 and all(p["ts"] is not None for p in cpu)
    # MLflow counts samples in the step: 0, 1, 2... whatever the training step is.
    assert [p["step"] for p in cpu] == list(range(len(cpu)))

    # Charted against the training step: each sample at the step the run had reached then.
    loss = store.history(run.id, "loss").to_pylist()
    expected = set()
    for point in cpu:
        reached = [p["step"] for p in loss if p["ts"] <= point["ts"]]
        expected.add(float(max(reached) if reached else loss[0]["step"]))
    key = "system/cpu_utilization_percentage"
    mapped = store.history_buckets(run.id, key, 1000, "step", ["loss"]).to_pylist()
    assert {b["x_min"] for b in mapped} == expected
    assert sum(b["n"] for b in mapped) == len(cpu)

    def names(text: str) -> list[str]:
        return [r.name for r in store.runs(compile_query(text))]

    assert names('metrics."system/cpu_utilization_percentage".max <= 100') == [run.name]
    assert names('metrics."system/cpu_utilization_percentage".max > 100') == []
    assert names('metrics."system/gpu_0_utilization_percentage".max < 20') == []  # no GPU here
    assert names("metrics.`system/system_memory_usage_megabytes`.count >= 2") == [run.name]


# -- Lightning: DeviceStatsMonitor columns in CSVLogger's metrics.csv ----------------------------

# Lightning (and torch) cannot be installed in the test environment, so this metrics.csv is
# written with the header Lightning 2.x writes for
# Trainer(logger=CSVLogger(...), callbacks=[DeviceStatsMonitor(cpu_stats=True)]) on a CPU
# machine: DeviceStatsMonitor prefixes each stat of lightning.pytorch.accelerators.cpu's
# get_cpu_stats() (cpu_vm_percent, cpu_percent, cpu_swap_percent) with
# "DeviceStatsMonitor.<hook>" and the logger's group separator "/", and logs at
# fit_loop.epoch_loop._batches_that_stepped; CSVLogger sorts the columns it has seen.
LIGHTNING_HEADER = [
    "DeviceStatsMonitor.on_train_batch_end/cpu_percent",
    "DeviceStatsMonitor.on_train_batch_end/cpu_swap_percent",
    "DeviceStatsMonitor.on_train_batch_end/cpu_vm_percent",
    "DeviceStatsMonitor.on_train_batch_start/cpu_percent",
    "DeviceStatsMonitor.on_train_batch_start/cpu_swap_percent",
    "DeviceStatsMonitor.on_train_batch_start/cpu_vm_percent",
    "epoch",
    "step",
    "train_loss",
]


def test_lightning_device_stats_columns_are_system_metrics(tmp_path: Path) -> None:
    version = tmp_path / "lightning_logs" / "version_0"
    version.mkdir(parents=True)
    rows = [",".join(LIGHTNING_HEADER)]
    for step in range(3):
        start = [f"{10.0 + step}", "0.0", f"{40.0 + step}"]
        end = [f"{20.0 + step}", "0.0", f"{41.0 + step}"]
        rows.append(",".join([*end, *start, "0", str(step), f"{1.0 / (step + 1)}"]))
    (version / "metrics.csv").write_text("\n".join(rows) + "\n")
    (version / "hparams.yaml").write_text("lr: 0.1\n")
    store = open_memory_store()
    assert ingest(tmp_path, store).problems == []
    (run,) = store.runs()
    summaries = store.summaries([run.id])[run.id]
    system = sorted(k for k in summaries if is_system_key(k))
    assert system == sorted(LIGHTNING_HEADER[:6])
    assert sorted(k for k in summaries if not is_system_key(k)) == ["epoch", "train_loss"]
    cpu = store.history(run.id, "DeviceStatsMonitor.on_train_batch_end/cpu_percent").to_pylist()
    assert [(p["step"], p["value"]) for p in cpu] == [(0, 20.0), (1, 21.0), (2, 22.0)]
    assert system_groups(system) == [("system", system)]


def test_default_columns_leave_system_metrics_to_the_picker() -> None:
    keys = [
        "system/cpu_utilization_percentage",
        "system/gpu_0_utilization_percentage",
        "DeviceStatsMonitor.on_train_batch_end/cpu_percent",
        "val_acc",
        "system/system_memory_usage_megabytes",
        "loss",
    ]
    shown = [c.name for c in default_columns([], keys) if c.kind == "metric"]
    assert shown == ["val_acc", "loss"]
    offered = {c.name for c in available_columns([], keys) if c.kind == "metric"}
    assert offered == set(keys)

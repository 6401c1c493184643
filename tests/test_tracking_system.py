"""mltop's writer with ``system_metrics=True``: samples of the process tree in a real process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mltop.core.discovery import ingest
from mltop.core.runs.query import compile_query
from mltop.core.runs.system_keys import is_system_key, system_groups
from mltop.core.store import open_memory_store
from mltop.core.tracking import METRICS_FILE, SYSTEM_FILE, start_run
from mltop.core.tracking_system import GpuSample, SystemSampler

# The training script: it logs 6 steps over ~1.5 s while a child process holds 200 MB, and
# spins the CPU, so the process tree's CPU and RSS are both well above zero. It ends the run
# once the sampler has written 3 rows (20 s at most): on a loaded machine the 1.5 s of steps
# saw as few as 2 samples at 0.2 s apart, and the test is about what samples hold.
SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from mltop.core.tracking import start_run

    child = subprocess.Popen([sys.executable, "-c",
        "import time; x = bytearray(200_000_000); x[::4096] = b'1' * len(x[::4096]); "
        "time.sleep(30)"])
    time.sleep(0.5)
    with start_run(sys.argv[1], name="sys", system_metrics=True, system_interval=0.2) as run:
        for step in range(6):
            end = time.time() + 0.25
            while time.time() < end:
                pass
            run.log(step=step, loss=1.0 / (step + 1))
        samples = os.path.join(sys.argv[1], "sys", "system.csv")
        give_up = time.time() + 20
        while time.time() < give_up:
            if os.path.exists(samples):
                with open(samples) as fh:
                    if len(fh.read().splitlines()) > 3:  # the header and 3 rows
                        break
            time.sleep(0.05)
    child.kill()
    """
)


def test_writer_samples_the_process_tree_into_system_metrics(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    subprocess.run([sys.executable, "-c", SCRIPT, str(root)], check=True, timeout=60)
    # The model's lines alone in metrics.jsonl; the samples in system.csv, keys in its header.
    rows = [json.loads(x) for x in (root / "sys" / METRICS_FILE).read_text().splitlines()]
    assert [sorted(r) for r in rows] == [["loss", "step", "ts"]] * 6
    with open(root / "sys" / SYSTEM_FILE, newline="") as fh:
        system_rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    assert len(system_rows) >= 4  # 3 while the run goes on, and one more when it ends
    assert {r["step"] for r in system_rows} <= set(range(6))  # the step reached when sampled
    assert max(r["system/process_memory_rss_megabytes"] for r in system_rows) > 200
    # The spin shows as CPU; how much depends on what else the machine runs, so only > 0.
    assert max(r["system/process_cpu_utilization_percentage"] for r in system_rows) > 0

    store = open_memory_store()
    assert ingest(tmp_path, store).problems == []
    (run,) = store.runs()
    summaries = store.summaries([run.id])[run.id]
    assert sorted(k for k in summaries if not is_system_key(k)) == ["loss"]
    assert summaries["loss"].count == 6
    assert set(k for k in summaries if is_system_key(k)) == {
        "system/process_cpu_utilization_percentage",
        "system/process_memory_rss_megabytes",
        "system/cpu_utilization_percentage",
        "system/system_memory_usage_megabytes",
        "system/system_memory_usage_percentage",
    }  # no GPU series: this machine has no NVML
    rss = store.history(run.id, "system/process_memory_rss_megabytes").to_pylist()
    assert [p["value"] for p in rss] == [
        r["system/process_memory_rss_megabytes"] for r in system_rows
    ]
    assert [p["ts"] for p in rss] == [r["ts"] for r in system_rows]

    def names(text: str) -> list[str]:
        return [r.name for r in store.runs(compile_query(text))]

    assert names('metrics."system/process_memory_rss_megabytes".max > 200') == ["sys"]
    assert names('metrics."system/gpu_0_utilization_percentage".max < 20') == []  # no GPU here


class FakeGpus:
    """No GPU or NVML driver exists on the test machines, so this stands in for NVML. Its
    figures are those ``nvidia-smi -q`` printed for GPUs 0 and 1 of an 8x A100-SXM4-80GB machine
    during training (Utilization Gpu 87 %, FB Memory Usage Used 62218 MiB of 81920 MiB, Power
    Draw 312.45 W; GPU 1: 98 %, 79890 MiB, 401.20 W); GPUs the process does not use are left
    out by the reader, as NvmlGpus does."""

    def __init__(self) -> None:
        self.asked: list[set[int]] = []

    def indices(self) -> list[int]:
        return list(range(8))

    def sample(self, pids: set[int]) -> list[GpuSample]:
        self.asked.append(pids)
        mib = 1024 * 1024 / 1e6
        return [
            GpuSample(0, 87.0, 62218 * mib, 81920 * mib, 312.45),
            GpuSample(1, 98.0, 79890 * mib, 81920 * mib, 401.20),
        ]


def test_gpu_samples_use_mlflow_keys_per_gpu(tmp_path: Path) -> None:
    gpus = FakeGpus()
    written: list[dict[str, float]] = []
    sampler = SystemSampler(written.append, 60.0, gpus)
    sampler.stop()  # never started: writes its one last sample
    (sample,) = written
    assert sample["system/gpu_0_utilization_percentage"] == 87.0
    assert sample["system/gpu_0_memory_usage_megabytes"] == pytest.approx(62218 * 1.048576)
    assert sample["system/gpu_0_memory_usage_percentage"] == pytest.approx(62218 / 81920 * 100)
    assert sample["system/gpu_1_power_usage_watts"] == 401.20
    assert os.getpid() in gpus.asked[0]
    groups = dict(system_groups(list(sample)))
    assert len(groups["GPU 0"]) == len(groups["GPU 1"]) == 4


def test_every_gpu_of_the_machine_has_columns_and_unused_ones_stay_empty(tmp_path: Path) -> None:
    with start_run(tmp_path / "runs", name="gpus") as run:
        run.log(step=0, loss=1.0)
        run.start_system_metrics(60.0, FakeGpus())
        run.log(step=1, loss=0.5)
    with open(run.folder / SYSTEM_FILE, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    assert header[:2] == ["step", "ts"] and len(header) == 2 + 5 + 8 * 4
    ((step, _, *cells),) = rows  # the run ended before the first interval: its last sample
    assert step == "1"
    named = dict(zip(header[2:], cells, strict=True))
    assert named["system/gpu_1_power_usage_watts"] == "401.2"
    assert all(v == "" for k, v in named.items() if k.startswith("system/gpu_7_"))

    store = open_memory_store()
    assert ingest(tmp_path, store).problems == []
    (stored,) = store.runs()
    groups = dict(system_groups([k for k in store.summaries([stored.id])[stored.id]]))
    assert sorted(groups) == ["GPU 0", "GPU 1", "system"]  # no series for the idle GPUs
    assert store.history(stored.id, "system/gpu_0_utilization_percentage").to_pylist() == [
        {"step": 1, "ts": float(rows[0][1]), "value": 87.0}
    ]


def test_a_run_with_system_metrics_ends_them_with_the_run(tmp_path: Path) -> None:
    with start_run(tmp_path, name="quick", system_metrics=True, system_interval=30) as run:
        run.log(loss=1.0)
    rows = (run.folder / SYSTEM_FILE).read_text().splitlines()
    # Shorter than one interval: the sample taken when the run ends is still there.
    assert len(rows) == 2 and "system/process_memory_rss_megabytes" in rows[0].split(",")
    never = start_run(tmp_path, name="never", system_metrics=True, system_interval=0)
    with pytest.raises(ValueError, match="system_interval must be > 0"), never:
        pass
    assert not (tmp_path / "never").exists()  # refused before any file is written

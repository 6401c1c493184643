"""Budget: recorded system metrics add at most 20% to the import of 1,000 runs.

Trees of 1,000 mltop run folders with the same model metrics as bench/ingest.py (5 metrics x
100 steps, one step a second), one without system metrics (the baseline) and others also
holding what ``start_run(system_metrics=True)`` writes for one GPU: a sample every 10 s (the
default of mltop's writer, MLflow and W&B) of 9 ``system/...`` keys (process CPU and RSS,
machine CPU and memory, the GPU's utilization, memory, memory share and power), as rows of
``system.csv`` under a header of the keys, over the run's duration. With one step a second
that is 10 samples a run (the budget's case); ``--slow`` adds runs whose steps take 6 s, so the
same 100 steps last 10 minutes and carry 60 samples (more system points than model points).
Runs written by earlier versions of the writer hold the same samples as lines of their own in
``metrics.jsonl``; their lines ("old layout") show what reading those still costs.
``--varied`` adds a tree whose runs each log metrics named after the run (a sweep logging
per-run names): such a batch is read as maps rather than as one wide table of every key, and
its line shows what that read costs beside the baseline.

Each tree is imported into a fresh store ``--repeat`` times, the trees taking turns so that a
load coming and going on a shared machine hits them alike; the medians of wall and CPU time
are printed side by side with their ratios to the baseline.

Usage: python bench/system_metrics.py [--runs 1000] [--repeat 5] [--slow] [--varied]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from mltop.core.discovery import ingest
from mltop.core.store import open_store
from mltop.core.tracking import (
    META_FILE,
    METRICS_FILE,
    PARAMS_FILE,
    SYSTEM_FILE,
    SYSTEM_INTERVAL,
)

MODEL = ("loss", "val_loss", "acc", "val_acc", "lr")
SYSTEM = (
    "system/process_cpu_utilization_percentage",
    "system/process_memory_rss_megabytes",
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/gpu_0_utilization_percentage",
    "system/gpu_0_memory_usage_megabytes",
    "system/gpu_0_memory_usage_percentage",
    "system/gpu_0_power_usage_watts",
)
STEPS = 100


def make_tree(
    root: Path, runs: int, step_seconds: float, system: str | None, own_names: bool = False
) -> int:
    """Run folders as mltop.core.tracking writes them; returns the number of points.

    ``system``: None (no samples), "csv" (in system.csv, as the writer records them) or
    "lines" (lines of metrics.jsonl, as earlier writers did). ``own_names``: each run's model
    metrics are named after the run (``loss_17``)."""
    base = 1_790_000_000.0
    points = 0
    for i in range(runs):
        folder = root / "runs" / f"run-{i:05d}"
        folder.mkdir(parents=True)
        start = base + i * 1000
        meta = {
            "format": "mltop-run/1", "id": f"{i:032x}", "name": f"run-{i:05d}",
            "experiment": f"exp-{i % 10}", "status": "FINISHED", "start_time": start,
            "end_time": start + STEPS * step_seconds, "host": "bench", "git_commit": None,
            "error": None, "tags": {"sweep": "bench"},
        }  # fmt: skip
        (folder / META_FILE).write_text(json.dumps(meta))
        (folder / PARAMS_FILE).write_text(json.dumps({"lr": 0.1 / (1 + i), "seed": i}))
        lines: list[tuple[float, str]] = []
        for step in range(STEPS):
            row: dict[str, float] = {"step": step, "ts": start + step * step_seconds}
            for k, name in enumerate(MODEL):
                row[f"{name}_{i}" if own_names else name] = 1.0 / (1 + step + k + i % 7)
            lines.append((row["ts"], json.dumps(row)))
            points += len(MODEL)
        rows = [",".join(("step", "ts", *SYSTEM))]
        t = SYSTEM_INTERVAL
        while system and t <= STEPS * step_seconds:
            row = {"step": min(STEPS - 1, int(t // step_seconds)), "ts": start + t}
            for k, name in enumerate(SYSTEM):
                row[name] = 40.0 + (i * 7 + k * 13 + int(t)) % 60
            if system == "lines":
                lines.append((row["ts"], json.dumps(row)))
            else:  # as Run._log_system writes a row
                rows.append(",".join(str(v) if k == "step" else repr(v) for k, v in row.items()))
            points += len(SYSTEM)
            t += SYSTEM_INTERVAL
        lines.sort(key=lambda line: line[0])  # one file, in the order the lines were written
        (folder / METRICS_FILE).write_text("\n".join(text for _, text in lines) + "\n")
        if system == "csv":
            (folder / SYSTEM_FILE).write_text("\n".join(rows) + "\n")
    return points


def import_once(root: Path, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its DuckDB threads) of one fresh import."""
    store = open_store(root.parent / f"{root.name}-store-{n}.duckdb")
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        report = ingest(root, store)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert not report.problems, report.problems[:3]
    finally:
        store.close()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--slow", action="store_true", help="also runs of 6 s a step")
    parser.add_argument("--varied", action="store_true", help="also runs of own metric names")
    args = parser.parse_args()
    cases: list[tuple[str, float, str | None, bool]] = [
        ("model metrics only (baseline)", 1.0, None, False),
        ("plus system, 1 s a step", 1.0, "csv", False),
        ("  old layout (metrics.jsonl)", 1.0, "lines", False),
    ]
    if args.slow:
        cases.append(("plus system, 6 s a step", 6.0, "csv", False))
        cases.append(("  old layout (metrics.jsonl)", 6.0, "lines", False))
    if args.varied:
        cases.append(("each run's own names (maps)", 1.0, None, True))
    with tempfile.TemporaryDirectory() as tmp:
        roots = [Path(tmp) / f"tree-{n}" for n in range(len(cases))]
        points = [
            make_tree(root, args.runs, step_seconds, system, own)
            for root, (_, step_seconds, system, own) in zip(roots, cases, strict=True)
        ]
        import_once(roots[0], -1)  # warm: module imports and the OS file cache
        times: list[list[tuple[float, float]]] = [[] for _ in cases]
        for n in range(args.repeat):
            for i, root in enumerate(roots):
                times[i].append(import_once(root, n))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.runs:,} runs, median of {args.repeat} imports into a fresh store each")
    print(f"  load average {load} (2 cores): judge by CPU time when it is high")
    print(f"  {'':<31}{'wall':>8}{'CPU':>10}{'points':>12}   ratio wall / CPU (budget 1.20)")
    base_wall = statistics.median(t[0] for t in times[0])
    base_cpu = statistics.median(t[1] for t in times[0])
    for (label, *_), runs_times, count in zip(cases, times, points, strict=True):
        wall = statistics.median(t[0] for t in runs_times)
        cpu = statistics.median(t[1] for t in runs_times)
        ratios = f"{wall / base_wall:.2f} / {cpu / base_cpu:.2f}"
        print(f"  {label:<31}{wall:6.2f} s{cpu:8.2f} s{count:>12,}   {ratios}")


if __name__ == "__main__":
    main()

"""Ingest budget: 1,000 mltop runs x 5 metrics x 100 steps (500,000 points).

Prints, in one run on this machine:
  * DuckDB's own read_json of the same metrics files (the floor for any importer),
  * `ingest` into a fresh store (goal <= 2 s),
  * a re-scan of the unchanged tree (goal <= 200 ms),
  * a re-scan after appending 10 steps to one run (goal <= 300 ms).

Usage: python bench/ingest.py [--runs 1000] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from mltop.core.discovery import ingest
from mltop.core.store import open_store
from mltop.core.tracking import META_FILE, METRICS_FILE, PARAMS_FILE

METRICS = ("loss", "val_loss", "acc", "val_acc", "lr")


def make_tree(root: Path, runs: int, steps: int) -> None:
    """Write run folders exactly as mltop.core.tracking lays them out (fast, no per-line flush)."""
    base = 1_790_000_000.0
    for i in range(runs):
        folder = root / "runs" / f"run-{i:05d}"
        folder.mkdir(parents=True)
        meta = {
            "format": "mltop-run/1",
            "id": f"{i:032x}",
            "name": f"run-{i:05d}",
            "experiment": f"exp-{i % 10}",
            "status": "FINISHED",
            "start_time": base + i,
            "end_time": base + i + steps,
            "host": "bench",
            "git_commit": None,
            "error": None,
            "tags": {"sweep": "bench"},
        }
        (folder / META_FILE).write_text(json.dumps(meta))
        (folder / PARAMS_FILE).write_text(json.dumps({"lr": 0.1 / (1 + i), "seed": i}))
        lines = []
        for step in range(steps):
            row = {"step": step, "ts": base + i + step}
            for k, name in enumerate(METRICS):
                row[name] = 1.0 / (1 + step + k + i % 7)
            lines.append(json.dumps(row))
        (folder / METRICS_FILE).write_text("\n".join(lines) + "\n")


def floor_read_json(root: Path) -> tuple[float, int]:
    con = duckdb.connect()
    pattern = str(root / "runs" / "*" / METRICS_FILE)
    start = time.perf_counter()
    n = con.execute(
        f"SELECT count(*) FROM read_json('{pattern}', format='newline_delimited', "
        "union_by_name=true, filename=true)"
    ).fetchone()[0]
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tree(root, args.runs, args.steps)
        points = args.runs * args.steps * len(METRICS)
        print(f"tree: {args.runs} runs x {len(METRICS)} metrics x {args.steps} steps = {points:,}")

        floors = [floor_read_json(root) for _ in range(args.repeat)]
        floor = statistics.median(t for t, _ in floors)
        print(f"duckdb read_json of the same files (floor): {floor * 1000:8.1f} ms")

        fulls, rescans, appends = [], [], []
        for attempt in range(args.repeat):
            store_path = root / f"store-{attempt}.duckdb"
            with open_store(root, store_path) as store:
                start = time.perf_counter()
                report = ingest(root, store)
                fulls.append(time.perf_counter() - start)
                assert store.point_count() == points + 10 * attempt, store.point_count()
                assert not report.problems, report.problems[:3]

                start = time.perf_counter()
                again = ingest(root, store)
                rescans.append(time.perf_counter() - start)
                assert again.points_added == 0

                target = root / "runs" / f"run-{attempt:05d}" / METRICS_FILE
                with open(target, "a") as fh:
                    for step in range(args.steps, args.steps + 10):
                        fh.write(json.dumps({"step": step, "ts": 0.0, "loss": 0.5}) + "\n")
                start = time.perf_counter()
                appended = ingest(root, store)
                appends.append(time.perf_counter() - start)
                assert appended.points_added == 10, appended
        full = statistics.median(fulls)
        print(
            f"mltop ingest, fresh store:               {full * 1000:8.1f} ms"
            f"   ({points / full / 1e6:.2f} M points/s, {full / floor:.1f}x the floor)"
            f"   budget 2000 ms"
        )
        print(
            f"re-scan, unchanged tree:                 {statistics.median(rescans) * 1000:8.1f} ms"
            "   budget 200 ms"
        )
        print(
            f"re-scan after appending 10 steps:        {statistics.median(appends) * 1000:8.1f} ms"
            "   budget 300 ms"
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Time mltop's import of a real MLflow SQLite store against MLflow's own client reading it.

    python bench/import_mlflow.py [--db PATH.db | --zst PATH.db.zst] [--rescans N]
                                  [--mlflow-python VENV/bin/python] [--mlflow-history-runs N]

The default store is the shared scale corpus (1,000 runs x 5 metrics x 100 steps = 500,000
points, written by MLflow 3.17.2 through its own logging API), decompressed into a temporary
folder with the ``zstd`` command or the ``zstandard`` module. Without either, and with MLflow
available, the store is generated with the corpus's ``gen_scale.py``.

MLflow is not an mltop dependency: its side runs in a subprocess of the interpreter given with
``--mlflow-python`` (a virtualenv with ``pip install mlflow``), or of this one if it has mlflow.

Figures printed:

* a full import into a fresh on-disk mltop store (the database file is dated an hour back, so it
  is read with ``immutable=1`` as any database nobody is writing);
* a re-scan of the unchanged database (goal: <= 200 ms);
* with MLflow available, MLflow's client reading the same data in the same bench run
  (``search_runs`` over all experiments, then ``get_metric_history`` for every run and metric),
  and the ratio (goal: mltop >= 10x faster). Otherwise the timings recorded with the corpus
  (scale/README.md), labelled as such.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mltop.core.entities import ImportReport, SourceRef
from mltop.core.importers import mlflow_sqlite
from mltop.core.store import open_store

SCALE = Path("/work/shared/fixtures/mlflow/scale")
DEFAULT_ZST = SCALE / "mlflow-1k-runs-5m-100s.db.zst"
GEN_SCALE = Path(__file__).resolve().parents[1] / "tests/fixtures/mlflow/recipes/gen_scale.py"
# Recorded with the corpus (scale/README.md), 2-core machine, median of 3, MLflow 3.17.2.
RECORDED = {
    "import mlflow": 2.7,
    "search_runs, all 1,000 runs": 1.9,
    "get_metric_history, 100 runs x 5 metrics": 12.6,
}


def decompress(zst: Path, out: Path) -> str:
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-d", "-f", str(zst), "-o", str(out)], check=True)
        return "zstd CLI"
    if importlib.util.find_spec("zstandard") is not None:
        import zstandard  # type: ignore[import-not-found]

        with open(zst, "rb") as src, open(out, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
        return "python zstandard"
    raise RuntimeError("neither the zstd command nor the zstandard module is available")


def generate(python: str, out: Path) -> str:
    shape = ["--runs", "1000", "--metrics", "5", "--steps", "100"]
    command = [python, str(GEN_SCALE), "--uri", f"sqlite:///{out}", *shape]
    subprocess.run(command, check=True, cwd=out.parent)
    return "generated with gen_scale.py"


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    if args.db:
        return Path(args.db), "given"
    db = work / "mlflow.db"
    zst = Path(args.zst)
    python = mlflow_python(args.mlflow_python)
    if zst.exists():
        try:
            how = decompress(zst, db)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            if python is None:
                raise SystemExit(
                    f"cannot decompress {zst}: {exc}; and mlflow is not installed"
                ) from exc
            how = generate(python, db)
    elif python is not None:
        how = generate(python, db)
    else:
        raise SystemExit(f"{zst} not found and mlflow is not installed: nothing to import")
    hour_ago = time.time() - 3600
    os.utime(db, (hour_ago, hour_ago))
    return db, how


def time_mltop(db: Path, work: Path, rescans: int) -> dict[str, float]:
    store_dir = work / "store"
    t0 = time.perf_counter()
    store = open_store(store_dir, store_dir / "store.duckdb")
    t_open = time.perf_counter() - t0
    ref = SourceRef(mlflow_sqlite.KIND, db)
    report = ImportReport()
    t0 = time.perf_counter()
    mlflow_sqlite.IMPORTER.import_sources(store, [ref], report)
    t_import = time.perf_counter() - t0
    if report.problems:
        print("problems:", *report.problems, sep="\n  ")
    count = report.counts.get(mlflow_sqlite.KIND)
    times = []
    for _ in range(rescans):
        again = ImportReport()
        t0 = time.perf_counter()
        mlflow_sqlite.IMPORTER.import_sources(store, [ref], again)
        times.append(time.perf_counter() - t0)
        assert not again.counts, "an unchanged database was re-imported"
    counts = store.table_counts()
    store.close()
    return {
        "open": t_open,
        "import": t_import,
        "runs": count.runs if count else 0,
        "points": count.points if count else 0,
        "rescan_median": statistics.median(times),
        "rescan_max": max(times),
        "stored_points": counts["metrics"],
    }


# Runs in the interpreter that has MLflow (this one, or --mlflow-python): MLflow is not an mltop
# dependency, and a separate virtualenv keeps its ~100 packages out of mltop's environment.
MLFLOW_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
t_import = time.perf_counter() - t0
db, limit = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri="sqlite:///" + db)
t0 = time.perf_counter()
exp_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
runs, token = [], None
while True:
    page = client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000,
                              page_token=token)
    runs.extend(page)
    token = page.token
    if not token:
        break
t_search = time.perf_counter() - t0
t0 = time.perf_counter()
points = calls = 0
for run in runs[:limit] if limit > 0 else runs:
    for key in run.data.metrics:
        points += len(client.get_metric_history(run.info.run_id, key))
        calls += 1
t_history = time.perf_counter() - t0
print(json.dumps({"import": t_import, "search": t_search, "history": t_history,
                  "runs": len(runs), "history_runs": min(len(runs), limit or len(runs)),
                  "calls": calls, "points": points}))
"""


def mlflow_python(given: str | None) -> str | None:
    """An interpreter that can import mlflow: --mlflow-python, else this one if it can."""
    if given:
        return given
    if importlib.util.find_spec("mlflow") is not None:
        return sys.executable
    return None


def time_mlflow(python: str, db: Path, limit: int) -> dict[str, float]:
    out = subprocess.run(
        [python, "-c", MLFLOW_SCRIPT, str(db), str(limit)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="an MLflow SQLite database to import as is")
    parser.add_argument("--zst", default=str(DEFAULT_ZST), help="a zstd-compressed database")
    parser.add_argument("--rescans", type=int, default=5)
    parser.add_argument(
        "--mlflow-python", help="an interpreter with mlflow installed (default: this one, if)"
    )
    parser.add_argument(
        "--mlflow-history-runs",
        type=int,
        default=0,
        help="read histories of only the first N runs with MLflow and extrapolate (0: all)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mltop-bench-mlflow-"))
    try:
        db, how = prepare(args, work)
        print(f"database: {db} ({db.stat().st_size / 1e6:.0f} MB, {how})")
        ours = time_mltop(db, work, args.rescans)
        print(
            f"mltop import (fresh store): {ours['import']:.2f} s for {ours['runs']:,} runs, "
            f"{ours['points']:,} points ({ours['points'] / ours['import']:,.0f} points/s); "
            f"store open {ours['open'] * 1000:.0f} ms"
        )
        print(
            f"mltop re-scan, unchanged: median {ours['rescan_median'] * 1000:.1f} ms, "
            f"max {ours['rescan_max'] * 1000:.1f} ms over {args.rescans} (goal <= 200 ms)"
        )
        python = mlflow_python(args.mlflow_python)
        if python is not None:
            theirs = time_mlflow(python, db, args.mlflow_history_runs)
            history = theirs["history"]
            scale = theirs["runs"] / max(theirs["history_runs"], 1)
            total = theirs["search"] + history * scale
            print(
                f"MLflow client (measured now, {python}): search_runs {theirs['search']:.2f} s "
                f"for {theirs['runs']:,} runs; get_metric_history x {theirs['calls']:,} calls "
                f"for {theirs['history_runs']:,} runs {history:.2f} s "
                f"({theirs['points']:,} points); import mlflow {theirs['import']:.1f} s"
            )
            label = "total" if scale == 1 else f"total, histories extrapolated x{scale:.1f}"
            print(f"MLflow reading everything ({label}): {total:.1f} s")
            print(f"ratio: mltop is {total / ours['import']:.0f}x faster (goal >= 10x)")
        else:
            per_run = RECORDED["get_metric_history, 100 runs x 5 metrics"] / 100
            runs = max(ours["runs"], 1)
            total = RECORDED["search_runs, all 1,000 runs"] + per_run * runs
            print("MLflow client: not installed here; timings RECORDED in scale/README.md:")
            for what, secs in RECORDED.items():
                print(f"  {what}: {secs} s")
            print(f"  extrapolated to all {runs:,} runs: search_runs + histories = {total:.0f} s")
            print(
                f"ratio vs the recorded MLflow figures: mltop is {total / ours['import']:.0f}x "
                "faster (goal >= 10x; not measured in this process)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

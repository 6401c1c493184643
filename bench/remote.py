#!/usr/bin/env python
"""Time mltop reading a real MLflow tracking server against MLflow's own client reading it.

    python bench/remote.py [--scale-dir DIR] [--repeat N] [--history-runs N] [--concurrency N]

The bench starts two local ``mlflow server`` processes (``--workers 1``, as the tests do) over
the shared scale stores, decompressed into a temporary folder with the ``zstd`` command or the
``zstandard`` module, and stops them at the end:

* 10,000 runs x 3 metrics: every run with its latest metric values, through mltop
  (:func:`mlflow_rest.sync_runs` into a fresh on-disk store, so the runs table could show) and
  through ``mlflow.search_runs(search_all_experiments=True)``. Goal: mltop not slower.
* 1,000 runs x 5 metrics x 100 steps: the full histories of 100 runs x 5 metrics, through
  mltop (:func:`mlflow_rest.import_histories`, bounded concurrency) and one by one through
  ``MlflowClient.get_metric_history``. Goal: mltop >= 4x faster. mltop's figure without the
  bulk endpoint (public ``metrics/get-history`` only, same concurrency) is printed too.

Each figure is the median of ``--repeat`` runs; MLflow and mltop alternate so neither always
meets a warmer server.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import mlflow_server  # noqa: E402  (the tests' server launcher: same server, same flags)

from mltop.core.entities import ImportReport  # noqa: E402
from mltop.core.importers import mlflow_rest  # noqa: E402
from mltop.core.store import open_store  # noqa: E402

SCALE = Path("/work/shared/fixtures/mlflow/scale")
SEARCH_STORE = "mlflow-10k-runs-3m-10s.db.zst"
HISTORY_STORE = "mlflow-1k-runs-5m-100s.db.zst"


def decompress(zst: Path, out: Path) -> None:
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-d", "-f", str(zst), "-o", str(out)], check=True)
    elif importlib.util.find_spec("zstandard") is not None:
        import zstandard  # type: ignore[import-not-found]

        with open(zst, "rb") as src, open(out, "wb") as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
    else:
        raise SystemExit("need the zstd command or the zstandard module to decompress the stores")
    out.chmod(0o644)  # the shared copies are read-only; MLflow opens its store read-write


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def mltop_search(url: str, work: Path, concurrency: int) -> tuple[int, int]:
    folder = Path(tempfile.mkdtemp(dir=work))
    with open_store(folder) as store, mlflow_rest.connect(url, concurrency=concurrency) as client:
        report = ImportReport()
        plan = mlflow_rest.sync_runs(store, client, report)
        assert not report.problems, report.problems
        return plan.runs_seen, store.count_runs()


def mlflow_search(url: str) -> int:
    import mlflow

    mlflow.set_tracking_uri(url)
    return len(mlflow.search_runs(search_all_experiments=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale-dir", type=Path, default=SCALE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--history-runs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=mlflow_rest.DEFAULT_CONCURRENCY)
    args = parser.parse_args()
    for name in (SEARCH_STORE, HISTORY_STORE):
        if not (args.scale_dir / name).is_file():
            raise SystemExit(f"{args.scale_dir / name}: missing (see --scale-dir)")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    t0 = time.perf_counter()
    import mlflow
    from mlflow.tracking import MlflowClient

    print(f"mlflow {mlflow.__version__} (import {time.perf_counter() - t0:.1f} s, not counted)")
    work = Path(tempfile.mkdtemp(prefix="mltop-bench-remote-"))
    try:
        with ExitStack() as stack:
            servers = {}
            started = time.perf_counter()
            for name in (SEARCH_STORE, HISTORY_STORE):
                folder = work / name.split(".")[0]
                folder.mkdir()
                decompress(args.scale_dir / name, folder / "mlflow.db")
                proc, url, log = mlflow_server.start(folder / "mlflow.db", folder)
                stack.enter_context(mlflow_server.running(proc))
                servers[name] = (proc, url, log)
            for proc, url, log in servers.values():
                mlflow_server.wait_healthy(proc, url, log)
            print(f"servers up in {time.perf_counter() - started:.1f} s (not counted)\n")

            # -- all runs with their latest metrics --
            url = servers[SEARCH_STORE][1]
            mine, theirs = [], []
            for _ in range(args.repeat):
                seconds, n = timed(lambda: mlflow_search(url))
                theirs.append(seconds)
                seconds, (seen, stored) = timed(lambda: mltop_search(url, work, args.concurrency))
                mine.append(seconds)
                assert seen == stored == n, (seen, stored, n)
            m, t = statistics.median(mine), statistics.median(theirs)
            print(f"all {n:,} runs with latest metrics (median of {args.repeat}):")
            print(f"  mlflow.search_runs(search_all_experiments=True)  {t:7.2f} s")
            print(f"  mltop sync_runs into a fresh store                {m:7.2f} s")
            verdict = "met" if m <= t else "NOT met"
            print(f"  ratio {t / m:.2f}x  (goal: mltop not slower: {verdict})\n")

            # -- full histories of N runs x 5 metrics --
            url = servers[HISTORY_STORE][1]
            folder = Path(tempfile.mkdtemp(dir=work))
            with open_store(folder) as store, mlflow_rest.connect(url) as client:
                plan = mlflow_rest.sync_runs(store, client, ImportReport())
            chosen = plan.jobs[: args.history_runs]
            pairs = [(j.native_id, k) for j in chosen for k in j.keys]
            mlflow_client = MlflowClient(url)

            def mlflow_histories() -> int:
                return sum(len(mlflow_client.get_metric_history(r, k)) for r, k in pairs)

            def mltop_histories(bulk: bool) -> tuple[float, int]:
                target = Path(tempfile.mkdtemp(dir=work))
                with (
                    open_store(target) as store,
                    mlflow_rest.connect(url, concurrency=args.concurrency, use_bulk=bulk) as c,
                ):
                    report = ImportReport()
                    sub = replace(plan, jobs=list(chosen))
                    mlflow_rest.sync_runs(store, c, ImportReport())
                    start = time.perf_counter()
                    mlflow_rest.import_histories(store, c, sub, report)
                    elapsed = time.perf_counter() - start
                    assert not report.problems, report.problems
                    summaries = store.summaries([j.run_id for j in chosen])
                    points = sum(s.count for per in summaries.values() for s in per.values())
                    return elapsed, points

            theirs, bulk, public = [], [], []
            for _ in range(args.repeat):
                seconds, n_points = timed(mlflow_histories)
                theirs.append(seconds)
                seconds, got = mltop_histories(True)
                assert got == n_points, (got, n_points)
                bulk.append(seconds)
                seconds, got = mltop_histories(False)
                assert got == n_points, (got, n_points)
                public.append(seconds)
            t, b, p = statistics.median(theirs), statistics.median(bulk), statistics.median(public)
            print(
                f"full histories of {len(chosen)} runs x 5 metrics = {len(pairs)} histories, "
                f"{n_points:,} points (median of {args.repeat}):"
            )
            print(f"  MlflowClient.get_metric_history one by one       {t:7.2f} s")
            label = f"mltop import_histories, {args.concurrency} at a time"
            print(f"  {label:<48} {b:7.2f} s")
            print(f"  mltop, public get-history endpoint only           {p:7.2f} s")
            verdict = "met" if t / b >= 4 else "NOT met"
            print(
                f"  ratio {t / b:.1f}x, public endpoint only {t / p:.1f}x  (goal >= 4x: {verdict})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the model registry is read and listed: 10,000 versions across 100 models.

Builds a real MLflow SQLite store: MLflow's own client creates the schema, 100 runs (with two
metrics each), 100 registered models and each model's first version; the other 99 versions of
each model are copies of that version's row (new version numbers, one tag each) inserted with
``sqlite3``, because creating 9,900 versions through the client would take minutes and reads
the same rows back. Each model gets ``@champion`` and ``@challenger``. Then times, on copies of
that database:

* mltop's registry import of the database (read with ``sqlite3`` + written to the store):
  :func:`mltop.core.registry.sync.sync_database` into a fresh store, against
* the baseline: ``MlflowClient.search_model_versions`` paging through all 10,000 versions
  (``max_results=10,000``, the client's largest page) — goal: mltop at least 10x faster;
* the Models screen's listing from an indexed store file: the models with their versions and
  one model's board (runs, metrics, changes against @champion), as the screen's workers read
  them (:func:`listings` without versions + :func:`model_board`) — goal ≤ 1 s;
* and the screen itself: ``M`` pressed in the app (120x40, headless) until both tables are
  drawn — goal ≤ 1 s.

Usage: ``python bench/registry.py [--models 100] [--versions 100] [--repeat 3]``. Prints the
median of the repeats beside the baseline and the goals; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def build_database(folder: Path, models: int, versions: int) -> Path:
    from mlflow.tracking import MlflowClient

    db = folder / "mlflow.db"
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.create_experiment("bench", artifact_location=(folder / "art").as_uri())
    for m in range(models):
        run = client.create_run(experiment, run_name=f"train-{m:03d}")
        run_id = run.info.run_id
        client.log_metric(run_id, "val_accuracy", 0.8 + m / (models * 10))
        client.log_metric(run_id, "val_loss", 0.5 - m / (models * 10))
        client.set_terminated(run_id)
        name = f"model-{m:03d}"
        client.create_registered_model(name, tags={"team": "bench"}, description="bench model")
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    with sqlite3.connect(db) as con:
        for v in range(2, versions + 1):
            con.execute(
                "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
                "description, user_id, current_stage, source, run_id, status, status_message, "
                "run_link, storage_location, workspace) SELECT name, ?, creation_time + ?, "
                "last_updated_time + ?, description, user_id, current_stage, source, run_id, "
                "status, status_message, run_link, storage_location, workspace "
                "FROM model_versions WHERE version = 1",
                [v, v, v],
            )
        con.execute(
            "INSERT INTO model_version_tags (key, value, name, version, workspace) "
            "SELECT 'validation_status', 'pending', name, version, workspace FROM model_versions"
        )
        for alias, version in (("champion", versions // 2), ("challenger", versions)):
            con.execute(
                "INSERT INTO registered_model_aliases (alias, version, name, workspace) "
                "SELECT ?, ?, name, workspace FROM registered_models",
                [alias, version],
            )
    return db


def median_time(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def mltop_import(db: Path, work: Path) -> tuple[float, int]:
    from mltop.core.entities import ImportReport
    from mltop.core.registry.sync import sync_database
    from mltop.core.store import open_memory_store

    copy = work / "mltop" / "mlflow.db"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(db, copy)
    counted = []

    times = []
    for _ in range(REPEAT):
        store = open_memory_store()  # opening a store is not importing: as MLflow's client
        started = time.perf_counter()
        sync_database(store, copy, ImportReport())
        times.append(time.perf_counter() - started)
        counted.append(len(store.model_versions()))
        store.close()
    return statistics.median(times), counted[-1]


def mlflow_search(db: Path, work: Path) -> tuple[float, int]:
    from mlflow.tracking import MlflowClient

    copy = work / "mlflow" / "mlflow.db"  # MLflow's client may write to a database it opens
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(db, copy)
    client = MlflowClient(f"sqlite:///{copy}")
    client.search_model_versions(max_results=1)  # engine and schema checks: not the read
    counted = []

    def once() -> None:
        found = []
        token = None
        while True:
            page = client.search_model_versions(max_results=10_000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        counted.append(len(found))

    return median_time(once, REPEAT), counted[-1]


def indexed_store(db: Path, work: Path) -> Path:
    from mltop.core.discovery import ingest
    from mltop.core.store import open_store

    project = work / "project"
    project.mkdir()
    shutil.copy(db, project / "mlflow.db")
    with open_store(project) as store:
        ingest(project, store)
    return project


def listing_time(project: Path) -> float:
    from mltop.core.compare.directions import load_directions
    from mltop.core.registry.board import model_board
    from mltop.core.registry.resolve import listings
    from mltop.core.store import open_store

    with open_store(project) as store:

        def once() -> None:
            found = listings(store, versions=False)
            model_board(store, found[0], load_directions(project))

        return median_time(once, REPEAT)


def screen_time(project: Path) -> float:
    from mltop.tui.app import MltopApp
    from mltop.tui.screens.registry.screen import ModelsScreen

    async def run() -> float:
        app = MltopApp(project, scan=False)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.store is None:
                await pilot.pause(0.01)
            started = time.perf_counter()
            await pilot.press("M")
            while not (isinstance(app.screen, ModelsScreen) and app.screen.settled):
                await pilot.pause(0.005)
            elapsed = time.perf_counter() - started
        app.close_store()
        return elapsed

    return statistics.median(asyncio.run(run()) for _ in range(REPEAT))


REPEAT = 3


def main() -> int:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--versions", type=int, default=100, help="versions per model")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    REPEAT = args.repeat
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with tempfile.TemporaryDirectory(prefix="mltop-bench-registry-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        db = build_database(work, args.models, args.versions)
        total = args.models * args.versions
        print(f"built {total:,} versions of {args.models} models in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        ours, ours_count = mltop_import(db, work)
        theirs, theirs_count = mlflow_search(db, work)
        assert ours_count == theirs_count == total, (ours_count, theirs_count)
        speedup = theirs / ours
        print(f"import {total:,} versions   mltop {ours * 1000:8.1f} ms   "
              f"MlflowClient.search_model_versions {theirs * 1000:8.1f} ms   "
              f"{speedup:5.1f}x faster (goal >= 10x)")  # fmt: skip
        project = indexed_store(db, work)
        listed = listing_time(project)
        print(f"Models listing + one model's board from the indexed store   {listed * 1000:7.1f} ms"
              "   (goal <= 1000 ms)")  # fmt: skip
        shown = screen_time(project)
        print(f"Models screen: M pressed until both tables are drawn      {shown * 1000:7.1f} ms"
              "   (goal <= 1000 ms)")  # fmt: skip
    ok = speedup >= 10 and listed <= 1.0 and shown <= 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

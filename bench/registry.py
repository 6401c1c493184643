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
  painted (the frame after both are filled) — goal ≤ 1 s.

Every figure is printed as wall time and CPU time (user + system of this process and its
children, over all its threads), the median of the repeats, beside the baseline measured the
same way in the same run, with the load average: on a busy machine wall time waits for a core,
so the import's goal is judged by CPU time.

Usage: ``python bench/registry.py [--models 100] [--versions 100] [--repeat 3]``. Exits 1 when a
goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
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


def cpu_seconds() -> float:
    """User + system time of this process (all threads) and its waited-for children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Clock:
    """Wall and CPU time of a stretch of code, collected over repeats (medians reported)."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.add(time.perf_counter() - self._wall, cpu_seconds() - self._cpu)

    def add(self, wall: float, cpu: float) -> None:
        self.walls.append(wall)
        self.cpus.append(cpu)

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    def text(self) -> str:
        return f"wall {self.wall * 1000:7.1f} ms  cpu {self.cpu * 1000:7.1f} ms"


def median_time(call: Callable[[], object], repeat: int) -> Clock:
    clock = Clock()
    for _ in range(repeat):
        with clock:
            call()
    return clock


def mltop_import(db: Path, work: Path) -> tuple[Clock, int]:
    from mltop.core.entities import ImportReport
    from mltop.core.registry.sync import sync_database
    from mltop.core.store import open_memory_store

    copy = work / "mltop" / "mlflow.db"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(db, copy)
    counted = []

    clock = Clock()
    for _ in range(REPEAT):
        store = open_memory_store()  # opening a store is not importing: as MLflow's client
        with clock:
            sync_database(store, copy, ImportReport())
        counted.append(len(store.model_versions()))
        store.close()
    return clock, counted[-1]


def mlflow_search(db: Path, work: Path) -> tuple[Clock, int]:
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


def listing_time(project: Path) -> Clock:
    from mltop.core.compare.directions import load_directions
    from mltop.core.registry.board import model_board
    from mltop.core.registry.resolve import listings
    from mltop.core.store import open_store

    with open_store(project) as store:

        def once() -> None:
            found = listings(store, versions=False)
            model_board(store, found[0], load_directions(project))

        return median_time(once, REPEAT)


def screen_time(project: Path) -> Clock:
    """M pressed until both tables are painted: the screen has its answers and drew them, and
    the frame after that was painted."""
    from mltop.tui.app import MltopApp
    from mltop.tui.screens.registry.screen import ModelsScreen

    painted = Clock()

    async def run() -> None:
        app = MltopApp(project, scan=False)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.store is None:
                await pilot.pause(0.01)
            wall, cpu = time.perf_counter(), cpu_seconds()
            await pilot.press("M")
            while not (isinstance(app.screen, ModelsScreen) and app.screen.settled):
                await pilot.pause(0.002)
            refreshed = asyncio.Event()
            app.call_after_refresh(refreshed.set)  # runs once the next frame is painted
            await refreshed.wait()
            painted.add(time.perf_counter() - wall, cpu_seconds() - cpu)
        app.close_store()

    for _ in range(REPEAT):
        asyncio.run(run())
    return painted


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
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        ours, ours_count = mltop_import(db, work)
        theirs, theirs_count = mlflow_search(db, work)
        assert ours_count == theirs_count == total, (ours_count, theirs_count)
        by_cpu, by_wall = theirs.cpu / ours.cpu, theirs.wall / ours.wall
        print(f"import {total:,} versions")
        print(f"  mltop sync_database                        {ours.text()}")
        print(f"  baseline MlflowClient.search_model_versions {theirs.text()}")
        print(f"  mltop is {by_cpu:5.1f}x faster by CPU time, {by_wall:5.1f}x by wall time "
              "(goal >= 10x, judged by CPU time)")  # fmt: skip
        project = indexed_store(db, work)
        listed = listing_time(project)
        print(f"Models listing + one model's board (indexed store)  {listed.text()}"
              "   (goal <= 1000 ms)")  # fmt: skip
        painted = screen_time(project)
        print(f"Models screen: M until both tables are painted      {painted.text()}"
              "   (goal <= 1000 ms)")  # fmt: skip
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    ok = by_cpu >= 10 and listed.wall <= 1.0 and painted.wall <= 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate the README screenshots from the real app on a freshly trained sample project.

    python tools/screenshots.py     # writes screenshots/runs.svg, run_detail.svg, compare.svg,
                                    # logs.svg, pipelines.svg, monitor.svg, host.svg,
                                    # runs_80x24.svg, models.svg

The sample project is copied to a temporary folder and trained (about 10 s), one more run is
left RUNNING as a live job would be, and the app is driven at 120x40 with Textual's test
harness: the runs table sorted by validation accuracy with two runs marked, then one run's
detail screen with its charts, then three runs of one experiment compared side by side, then
the console log of the run that diverged (its traceback highlighted, the search on "nan"), then
the sample's two workflows and its dvc pipeline lined up by lifecycle phase, with the DevOps and
MLOps metrics band under them. Then the runs table again at 80x24, the size of a default terminal
over SSH, and last the Models screen over the MLflow registry fixture of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from mltop.tui.screens.runs.screen import RunsScreen

ROOT = Path(__file__).resolve().parents[1]
SIZE = (120, 40)
SMALL = (80, 24)
LIVE_RUN = "sgd-lr0.05-live"
DETAIL_RUN = "mlp-lr0.1"
# Compared in the "digits" experiment; the first is the baseline.
COMPARE_RUNS = ("sgd-lr0.1", "sgd-lr0.01", "mlp-lr0.1")
# The sample's run that fails on purpose (learning rate too high): its log ends in a traceback.
LOGS_RUN = "mlp-lr3"


# The live run's writer, kept open until the screenshots are taken (closing it would finish it).
_LIVE: list[object] = []


def prepare(folder: Path) -> Path:
    """Train the sample project in ``folder`` and add a run that is still going."""
    from mltop.core.demo import prepare_demo
    from mltop.core.tracking import start_run

    project = prepare_demo(folder / "sample_project", log=lambda m: print(m, file=sys.stderr))
    # A job still training: its folder says RUNNING and its last line is seconds old.
    live = start_run(
        project / "runs" / "digits",
        name=LIVE_RUN,
        params={"model": "sgd", "lr": 0.05, "alpha": 0.0001, "epochs": 40, "dataset": "digits"},
        experiment="digits",
        tags={"model": "sgd", "dataset": "digits"},
    )
    run = live.__enter__()  # left open on purpose: the run stays RUNNING
    _LIVE.append(live)
    for step in range(17):
        loss = 1.6 * math.exp(-step / 5) + 0.12
        run.log(step=step, train_loss=loss, val_loss=loss + 0.04,
                train_acc=1 - loss / 2.2, val_acc=1 - (loss + 0.05) / 2.2)  # fmt: skip
    return project


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Let the app work (its workers included) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


async def settled(pilot: Pilot) -> RunsScreen:
    screen = pilot.app.runs_screen  # type: ignore[attr-defined]
    await until(pilot, lambda: screen.settled)
    return screen


async def shoot(project: Path, out: Path) -> None:
    from mltop.core.runs.runs_view import Column
    from mltop.tui.app import MltopApp
    from mltop.tui.screens.runs.detail import RunDetailScreen

    store = project.parent / "store.duckdb"
    # No live watcher: a screenshot is one still frame, and waiting on workers must end.
    app = MltopApp(project, store, live=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled(pilot)
        screen.sort_by(Column.metric("val_acc"), True)
        await settled(pilot)
        names = screen.view.table.column("name").to_pylist() if screen.view else []
        table = screen.table
        for name in ("sgd-lr0.1", "logreg-C1"):
            if name in names:
                table.move_cursor(row=names.index(name))
                await pilot.press("space")
        table.move_cursor(row=0)
        await pilot.pause()
        app.save_screenshot("runs.svg", str(out))
        experiments = screen.view.table.column("experiment").to_pylist() if screen.view else []
        row = next(
            (i for i, (n, e) in enumerate(zip(names, experiments, strict=True))
             if n == DETAIL_RUN and e == "digits"),
            0,
        )  # fmt: skip
        table.move_cursor(row=row)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen) and app.screen.details)
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        await until(pilot, lambda: all(c.series is not None for c in detail.charts.values()))
        await pilot.pause()
        app.save_screenshot("run_detail.svg", str(out))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        await shoot_compare(pilot, screen, names, experiments, out)
        await shoot_logs(pilot, screen, names, experiments, out)
        await shoot_pipelines(pilot, screen, out)
        await shoot_monitor(pilot, out)
        await shoot_host(pilot, screen, out)
    app.close_store()
    await shoot_small(project, store, out)
    await shoot_models(project.parent, out)


async def shoot_small(project: Path, store: Path, out: Path) -> None:
    """The runs table at 80x24, sorted by validation accuracy, as in the 120x40 shot."""
    from mltop.core.runs.runs_view import Column
    from mltop.tui.app import MltopApp

    app = MltopApp(project, store, live=False)
    async with app.run_test(size=SMALL) as pilot:
        screen = await settled(pilot)
        screen.sort_by(Column.metric("val_acc"), True)
        await settled(pilot)
        screen.table.move_cursor(row=0)
        await pilot.pause()
        app.save_screenshot("runs_80x24.svg", str(out))
    app.close_store()


async def shoot_compare(
    pilot: Pilot, screen: RunsScreen, names: list[str], experiments: list[str], out: Path
) -> None:
    """Compare three runs of one experiment, the cursor on a run's validation accuracy."""
    from mltop.tui.screens.compare.screen import CompareScreen

    app = pilot.app
    table = screen.table
    table.clear_marks()
    rows = {(n, e): i for i, (n, e) in enumerate(zip(names, experiments, strict=True))}
    for name in COMPARE_RUNS:
        if (name, "digits") in rows:
            table.move_cursor(row=rows[(name, "digits")])
            await pilot.press("space")
    await pilot.press("c")

    def ready() -> bool:
        compare = app.screen
        return (
            isinstance(compare, CompareScreen)
            and compare.comparison is not None
            and bool(compare.chart.series)
        )

    # Polled rather than awaited: the screen's exclusive workers may end cancelled.
    deadline = time.monotonic() + 60
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError("the compare screen did not open in time")
        await pilot.pause(0.05)
    await pilot.press("l", "l")  # the second run's column: the line under the table explains it
    await pilot.pause(0.3)
    app.save_screenshot("compare.svg", str(out))


async def back_to_runs(pilot: Pilot, screen: RunsScreen, deadline: float) -> None:
    while pilot.app.screen is not screen:  # back to the runs table from wherever the last shot was
        if time.monotonic() > deadline:
            raise TimeoutError("could not get back to the runs table")
        await pilot.press("escape")
        await pilot.pause(0.05)


async def shoot_logs(
    pilot: Pilot, screen: RunsScreen, names: list[str], experiments: list[str], out: Path
) -> None:
    """The diverged run's console log: the end of its traceback, the epochs where loss was nan."""
    from mltop.tui.screens.logs.screen import LogsScreen

    app = pilot.app
    deadline = time.monotonic() + 60
    await back_to_runs(pilot, screen, deadline)
    rows = {(n, e): i for i, (n, e) in enumerate(zip(names, experiments, strict=True))}
    screen.table.move_cursor(row=rows.get((LOGS_RUN, "digits"), 0))
    await pilot.press("l")
    while not (isinstance(app.screen, LogsScreen) and app.screen.model is not None):
        if time.monotonic() > deadline:
            raise TimeoutError("the logs screen did not open in time")
        await pilot.pause(0.05)
    await pilot.pause(0.5)  # the follow worker's first read
    await pilot.press("slash", *"nan", "enter")
    await pilot.pause(0.5)
    app.save_screenshot("logs.svg", str(out))


async def shoot_pipelines(pilot: Pilot, screen: RunsScreen, out: Path) -> None:
    """The sample repository's workflows (ci.yml, audit.yml) beside its dvc pipeline, the
    training stage selected, and at 120x40 the metrics band in its strip under the table."""
    from mltop.tui.screens.pipelines.screen import PipelinesScreen

    app = pilot.app
    deadline = time.monotonic() + 60
    await back_to_runs(pilot, screen, deadline)
    await pilot.press("p")
    # Polled rather than awaited: the screen's exclusive workers may end cancelled.
    while not (isinstance(app.screen, PipelinesScreen) and app.screen.settled):
        if time.monotonic() > deadline:
            raise TimeoutError("the pipelines screen did not open in time")
        await pilot.pause(0.05)
    await pilot.press("j")  # prepare → train: its pane shows its status, commands and files
    await pilot.pause(0.3)
    app.save_screenshot("pipelines.svg", str(out))


async def shoot_monitor(pilot: Pilot, out: Path) -> None:
    """The sample's served model against its reference (``m``): drift per feature, the band."""
    from mltop.tui.screens.monitor.screen import MonitorScreen

    app = pilot.app
    deadline = time.monotonic() + 120
    await pilot.press("m")
    while not (isinstance(app.screen, MonitorScreen) and app.screen.view is not None):
        if time.monotonic() > deadline:
            raise TimeoutError("the monitor screen did not open in time")
        await pilot.pause(0.05)
    await pilot.pause(0.3)
    app.save_screenshot("monitor.svg", str(out))


async def shoot_host(pilot: Pilot, screen: RunsScreen, out: Path) -> None:
    """The machine taking the screenshots, after ten seconds of history for the sparklines."""
    from mltop.tui.screens.system.host import HostScreen

    app = pilot.app
    await back_to_runs(pilot, screen, time.monotonic() + 60)
    await pilot.press("h")
    host = app.screen
    assert isinstance(host, HostScreen)
    await until(pilot, lambda: host.view is not None and len(host.view.history) >= 10)
    app.save_screenshot("host.svg", str(out))


async def shoot_models(folder: Path, out: Path) -> None:
    """The Models screen over the registry fixture made by the real MLflow (the sample project
    registers no models): iris-classifier's versions against @champion."""
    import tarfile

    from mltop.tui.app import MltopApp
    from mltop.tui.screens.registry.screen import ModelsScreen

    project = folder / "registry"
    with tarfile.open(ROOT / "tests/fixtures/mlflow-registry/sqlite-store.tar.gz") as tar:
        tar.extractall(project, filter="data")
    app = MltopApp(project, folder / "registry-store.duckdb", live=False)
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot)
        await until(pilot, lambda: not app.ingesting)  # type: ignore[attr-defined]
        await pilot.press("M")
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.settled)
        await pilot.press("down")  # diabetes-regressor → iris-classifier
        await until(pilot, lambda: app.screen.board.listing.model.name == "iris-classifier")
        await pilot.pause(0.3)
        app.save_screenshot("models.svg", str(out))
    app.close_store()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--project", type=Path, help="use an already trained copy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mltop-shots-") as tmp:
        # The header shows the folder as ~/...: make that the sample project's own parent.
        os.environ["HOME"] = tmp
        project = args.project or prepare(Path(tmp))
        started = time.perf_counter()
        try:
            asyncio.run(shoot(project, args.out))
        finally:
            for live in _LIVE:  # finish the live run before its folder goes away
                live.__exit__(None, None, None)  # type: ignore[attr-defined]
        shots = (
            "runs.svg, run_detail.svg, compare.svg, logs.svg, pipelines.svg, monitor.svg, "
            "host.svg, runs_80x24.svg and models.svg"
        )
        print(f"wrote {shots} in {args.out} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

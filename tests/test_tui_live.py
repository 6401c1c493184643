"""While mltop is open, runs written by a training job appear and their charts grow."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_run
from helpers.tui import on_runs, pushed, running
from tui_pilot import names, until, watching

from mltop.core.tracking import METRICS_FILE, start_run
from mltop.tui.screens.logs.screen import LogsScreen
from mltop.tui.screens.runs.detail import RunDetailScreen


async def test_a_new_run_appears_without_a_refresh(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_run(root / "runs", "first")
    async with running(root, tmp_path) as (_, pilot):
        screen = await watching(pilot)
        write_run(root / "runs", "second")
        await until(pilot, lambda: sorted(names(screen)) == ["first", "second"], timeout=30)


async def test_runs_that_appear_under_another_screen_are_listed_on_return(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    write_run(root / "runs", "first")
    async with running(root, tmp_path) as (_, pilot):
        screen = await watching(pilot)
        await pushed(pilot, "enter", RunDetailScreen)
        version = screen.store_version
        write_run(root / "runs", "second")
        await until(pilot, lambda: screen.store_version > version, timeout=30)
        assert names(screen) == ["first"]  # not reloaded for nobody
        await pilot.press("escape")
        await until(pilot, lambda: sorted(names(screen)) == ["first", "second"], timeout=30)


async def test_an_open_run_grows_as_its_job_logs(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with start_run(root / "runs", name="live", params={"lr": 0.1}) as run:
        run.log(step=0, loss=1.0)
        async with running(root, tmp_path) as (_, pilot):
            await watching(pilot)
            detail = await pushed(pilot, "enter", RunDetailScreen)
            assert isinstance(detail, RunDetailScreen)
            await until(pilot, lambda: detail.details is not None)
            assert detail.details.metrics["loss"].count == 1
            with open(run.folder / METRICS_FILE, "a") as fh:
                for step in range(1, 6):
                    fh.write(json.dumps({"step": step, "loss": 1.0 / (step + 1)}) + "\n")
                fh.write(json.dumps({"step": 6, "acc": 0.5}) + "\n")
            await until(
                pilot,
                lambda: (
                    detail.details is not None
                    and detail.details.metrics["loss"].count == 6
                    and "acc" in detail.charts
                ),
                timeout=30,
            )


async def _open_logs(pilot) -> LogsScreen:  # type: ignore[no-untyped-def]
    """Press ``l`` on the runs table and return the Logs screen it opens."""
    await pilot.press("l")
    await until(pilot, lambda: isinstance(pilot.app.screen, LogsScreen))
    logs = pilot.app.screen
    assert isinstance(logs, LogsScreen)
    return logs


async def test_l_opens_the_logs_of_the_current_run(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with start_run(root / "runs", name="talky", capture_output=True) as run:
        print("epoch 1/3 loss=0.5")
    async with on_runs(root, tmp_path) as (app, pilot, _):
        logs = await _open_logs(pilot)
        await until(pilot, lambda: bool(logs.models))
        assert logs.models[0].path == run.folder / "output.log"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogsScreen))


async def test_the_logs_header_follows_the_run_to_its_end(tmp_path: Path) -> None:
    root = tmp_path / "project"
    with start_run(root / "runs", name="talky", capture_output=True) as run:
        print("epoch 1/3 loss=0.5")
        async with running(root, tmp_path) as (_, pilot):
            await watching(pilot)
            logs = await _open_logs(pilot)
            await until(pilot, lambda: logs.run is not None)

            def header() -> str:
                return str(logs.query_one("#logs-header").render())

            assert "running" in header()
            run.finish()
            await until(pilot, lambda: "finished" in header(), timeout=30)

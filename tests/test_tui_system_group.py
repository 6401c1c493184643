"""Run detail draws what the machine did in a System group of charts, per GPU, apart from the
model's metrics, on the model's x axis."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.tui import on_runs, open_detail, running
from test_tracking_system import FakeGpus

from mltop.core.tracking import start_run
from mltop.tui.widgets.chart import LineChart


@pytest.fixture
def system_root(tmp_path: Path) -> Path:
    """A run written by mltop's writer sampling the system every 50 ms; the two GPUs' figures
    come from FakeGpus (no GPU on the test machines, see its docstring)."""
    root = tmp_path / "proj"
    with start_run(root / "runs", name="gpu-run") as run:
        run.start_system_metrics(0.05, FakeGpus())
        for step in range(8):
            run.log(step=step * 10, loss=1.0 / (step + 1), val_acc=step / 8)
            time.sleep(0.08)
    return root


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_system_charts_are_a_group_of_their_own_per_gpu(
    system_root: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    async with running(system_root, tmp_path, size) as (app, pilot):
        screen = await open_detail(pilot)
        labels = [g.label for g in screen.groups]
        assert labels == [None, "system", "GPU 0", "GPU 1"]
        keys = [[c.key for c in g.query(LineChart)] for g in screen.groups]
        assert keys[0] == ["loss", "val_acc"]
        assert "system/process_cpu_utilization_percentage" in keys[1]
        assert all("gpu_0_" in k for k in keys[2]) and len(keys[2]) == 4
        assert all("gpu_1_" in k for k in keys[3]) and len(keys[3]) == 4
        # On the step axis, system samples sit at the model's steps (0..70), mapped by time.
        util = screen.charts["system/gpu_1_utilization_percentage"].series
        assert util is not None and util.last_value == 98.0
        loss = screen.charts["loss"].series
        assert loss is not None
        cpu = screen.charts["system/process_cpu_utilization_percentage"].series
        assert cpu is not None
        assert loss.x_first <= cpu.x_first and cpu.x_last <= loss.x_last == 70
        # Down from the model's last row walks into the groups below, scrolling them in view.
        assert isinstance(app.focused, LineChart) and app.focused.key == "loss"
        gpu1 = list(screen.groups[3].query(LineChart))
        for _ in range(12):
            await pilot.press("down")
            if app.focused is gpu1[0]:
                break
        await pilot.pause()
        assert app.focused is gpu1[0]
        svg = app.export_screenshot().replace("&#160;", " ")
        assert "GPU 1 (4)" in svg  # the group's title scrolled into view with its first row
        assert "utilization_percentage" in svg  # charts titled without what the group says
        # The filter narrows groups too: a group with no chart left hides with its title.
        await pilot.press("slash")
        for char in "gpu_0":
            await pilot.press(char)
        await pilot.press("enter")
        await pilot.pause()
        shown = [g.label for g in screen.groups if g.display]
        assert shown == ["GPU 0"]
        assert screen.groups[2].title is not None and screen.groups[2].title.display


def test_arrows_walk_between_groups_by_column() -> None:
    from mltop.tui.screens.runs.chart_groups import neighbour

    groups = [["a", "b", "c"], ["d", "e"], ["f"]]
    assert neighbour(groups, "a", 0, 1, 2) == "c"
    assert neighbour(groups, "b", 0, 1, 2) == "c"  # the row below is shorter: its last chart
    assert neighbour(groups, "c", 0, 1, 2) == "d"  # last row: into the next group
    assert neighbour(groups, "e", 0, 1, 2) == "f"
    assert neighbour(groups, "f", 0, 1, 2) is None
    assert neighbour(groups, "e", 0, -1, 2) == "c"  # up into the previous group's last row
    assert neighbour(groups, "d", 0, -1, 2) == "c"
    assert neighbour(groups, "c", 1, 0, 2) == "d"  # left/right read across groups
    assert neighbour(groups, "a", -1, 0, 2) is None


async def test_compare_overlays_a_system_metric_across_runs(tmp_path: Path) -> None:
    from test_tui_compare import charted, compare_first

    root = tmp_path / "proj"
    for name in ("a", "b"):
        with start_run(root / "runs", name=name, experiment="e") as run:
            run.start_system_metrics(0.05, FakeGpus())
            for step in range(4):
                run.log(step=step, val_loss=1.0 / (step + 1) + (name == "b"))
                time.sleep(0.06)
    async with on_runs(root, tmp_path, (120, 40)) as (_, pilot, _):
        _, screen = await compare_first(pilot, 2)
        # The model's metric is charted first; system metrics follow the model's in m/M order.
        assert screen.metric == "val_loss"
        assert screen.metric_keys[0] == "val_loss"
        assert all(k.startswith("system/") for k in screen.metric_keys[1:])
        await pilot.press("m")
        key = screen.metric_keys[1]
        await charted(pilot, screen, key)
        series = screen.chart.series
        assert [s.empty for s in series] == [False, False]
        assert key.startswith("system/")


async def test_compare_overlays_mlflows_own_system_metrics_of_two_real_runs(
    tmp_path: Path,
) -> None:
    """Two runs logged by MLflow itself with system metrics on (real psutil samples)."""
    pytest.importorskip("psutil")  # MLflow samples nothing without it
    from test_system_metrics_import import MLFLOW_SCRIPT
    from test_tui_compare import charted, compare_first

    root = tmp_path / "proj"
    root.mkdir()
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", MLFLOW_SCRIPT, str(root)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    key = "system/cpu_utilization_percentage"
    async with on_runs(root, tmp_path, (120, 40)) as (_, pilot, _):
        _, screen = await compare_first(pilot, 2)
        assert screen.metric == "loss"  # the model's metric first, the machine's after it
        assert key in screen.metric_keys
        for _ in screen.metric_keys:
            if screen.metric == key:
                break
            await pilot.press("m")
        await charted(pilot, screen, key)
        assert [s.empty for s in screen.chart.series] == [False, False]
        assert {s.key for s in screen.chart.series} == {key}

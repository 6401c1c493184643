"""A running run's live GPU use and the idle flag: the tracker over time, the runs table's text
beside a running run, and the Host screen's mark, with a real training process standing for
one of the processes a real two-GPU machine reported (tests/nvml_fake.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from nvml_fake import MIB, FakeNvml
from test_tui_host import linked_row, training  # noqa: F401  (the fixture)
from tui_pilot import make_app, settled, until

from mltop.core.system.gpu import NvmlReader
from mltop.core.system.idle import IdleTracker, RunGpuUsage, idle_settings, run_gpu_usage
from mltop.core.system.processes import ProcessRow, RunLink
from mltop.tui.app import MltopApp
from mltop.tui.screens.system.host import HostScreen


def live_gpu_app(project: tuple[Path, subprocess.Popen[str]], tmp_path: Path) -> MltopApp:
    """The app over the training ``project`` (folder, child process), its runs table sampling
    GPUs every 0.2 s from a real two-GPU machine's answers, the child standing for one of its
    processes."""
    folder, child = project
    app = make_app(folder, tmp_path, live=False)
    app.runs_screen.gpu_reader = NvmlReader(FakeNvml(pids={12769: child.pid}))
    app.runs_screen.live_gpu_seconds = 0.2
    return app


def usage(util: float | None) -> dict[str, RunGpuUsage]:
    return {"r1": RunGpuUsage("r1", (0, 1), util, 61 * 1024**3)}


def test_the_live_label_reads_gpus_utilization_and_memory() -> None:
    assert usage(87.4)["r1"].label() == "GPU 0,1 · 87% · 61 GB"
    assert usage(None)["r1"].label() == "GPU 0,1 · — · 61 GB"


def test_a_run_is_flagged_only_after_its_gpus_stay_quiet_for_the_whole_window() -> None:
    tracker = IdleTracker(threshold=10, after=300)
    assert tracker.update(usage(5), now=0) == {}
    assert tracker.update(usage(9), now=299) == {}
    assert tracker.update(usage(3), now=300) == {"r1": 300}
    assert tracker.update(usage(50), now=301) == {}  # busy again: the window starts over
    assert tracker.update(usage(2), now=302) == {}
    assert tracker.update(usage(2), now=602) == {"r1": 300}
    assert tracker.update({}, now=603) == {}  # the run left its GPUs
    assert tracker.update(usage(2), now=604) == {}


def test_idle_settings_come_from_the_environment_and_a_bad_one_is_named() -> None:
    env = {"MLTOP_GPU_IDLE_PERCENT": "25", "MLTOP_GPU_IDLE_AFTER": "60"}
    assert idle_settings(env) == (25.0, 60.0, None)
    threshold, after, problem = idle_settings({"MLTOP_GPU_IDLE_AFTER": "5 minutes"})
    assert (threshold, after) == (10.0, 300.0)
    assert problem == "MLTOP_GPU_IDLE_AFTER='5 minutes' is not a non-negative number; using 300"


def test_run_usage_adds_a_runs_processes_and_averages_their_gpus() -> None:
    reading = NvmlReader(FakeNvml()).read()

    def row(pid: int, gpus: dict[int, int], run: str | None) -> ProcessRow:
        link = RunLink(run, "holds output.log open") if run else None
        return ProcessRow(pid, "python", "ana", "python t.py", "python t.py", 1.0, 1, gpus, link)

    rows = [row(1, {0: 6757 * MIB}, "r1"), row(2, {1: 3 * MIB}, "r1"), row(3, {0: MIB}, None)]
    assert run_gpu_usage(rows, reading) == {"r1": RunGpuUsage("r1", (0, 1), 0.0, 6760 * MIB)}


async def test_runs_table_shows_a_running_runs_gpus_and_idle_flag(
    training: tuple[Path, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLTOP_GPU_IDLE_AFTER", "0")
    app = live_gpu_app(training, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot)
        await until(pilot, lambda: bool(screen.table.live))
        [run] = app.store.find_runs("resnet-live")  # type: ignore[union-attr]
        label, idle = screen.table.live[run.id]
        assert label == "GPU 0 · 0% · 6.6 GB" and idle is not None
        row = screen.view.row_of(run.id)  # type: ignore[union-attr]
        drawn = screen.table.render_line(row + 1).text
        assert "GPU 0 · 0% · 6.6 GB ⚠ idle" in drawn


async def test_runs_table_stops_asking_on_a_machine_without_gpus(
    training: tuple[Path, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    project, _ = training
    app = make_app(project, tmp_path, live=False)
    app.runs_screen.live_gpu_seconds = 0.2
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await settled(pilot)
        await until(pilot, lambda: screen._gpu_monitor is not None and not screen._gpu_sampling)
        await pilot.pause(0.5)
        assert screen.table.live == {}
        assert screen._gpu_monitor.gpu_reader.read().problem is not None  # type: ignore[union-attr]


async def test_host_screen_marks_a_run_idle_on_its_gpu(
    training: tuple[Path, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, child = training
    monkeypatch.setenv("MLTOP_GPU_IDLE_AFTER", "0")
    app = make_app(project, tmp_path, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot)
        screen = HostScreen(gpu_reader=NvmlReader(FakeNvml(pids={12769: child.pid})))
        await app.push_screen(screen)
        await until(pilot, lambda: linked_row(screen, child.pid) is not None)
        await until(pilot, lambda: bool(screen.view and screen.view.idle))
        index = linked_row(screen, child.pid)
        assert index is not None
        drawn = screen.query_one("#host-processes").render_line(index + 1).text
        assert "0:6.6 GB" in drawn and "resnet-live ⚠ idle" in drawn

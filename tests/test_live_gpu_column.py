"""The runs table's live GPU column: running runs' GPUs now, a column of its own, sortable by
utilization. The store is real (runs written by mltop's writer and imported); the training
process is a real child process that one of a real two-GPU machine's processes stands for
(tests/nvml_fake.py: no GPU can run here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_host_idle import live_gpu_app
from test_tui_host import training  # noqa: F401  (the fixture)
from tui_pilot import settled, until

from mltop.core.discovery import ingest
from mltop.core.runs.runs_view import LIVE_GPU, Column, load_runs
from mltop.core.store import open_store
from mltop.core.tracking import start_run


def write_runs(root: Path, names: list[str]) -> None:
    for name in names:
        with start_run(root / "runs", name=name) as run:
            run.log(loss=0.5)


def test_sorting_by_live_gpu_puts_running_runs_first_by_utilization(tmp_path: Path) -> None:
    write_runs(tmp_path, ["a", "b", "c", "d"])
    store = open_store(tmp_path / "store.duckdb")
    try:
        ingest(tmp_path, store)
        ids = {run.name: run.id for run in store.runs()}
        live = {ids["a"]: 12.0, ids["c"]: 87.0}
        columns = [Column.attr("name")]

        def names(descending: bool, values: dict[str, float]) -> list[str]:
            view = load_runs(store, None, columns, LIVE_GPU, descending, live=values)
            return view.table.column("name").to_pylist()

        newest_first = names(True, {})
        assert newest_first == ["d", "c", "b", "a"]  # no live figure: the store's order
        assert names(True, live) == ["c", "a", "d", "b"]
        assert names(False, live) == ["a", "c", "d", "b"]  # the others stay newest first
    finally:
        store.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_running_runs_gpus_are_a_column_of_their_own_that_s_sorts_by(
    training: tuple[Path, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
    size: tuple[int, int],
) -> None:
    write_runs(training[0], ["finished-0", "finished-1"])  # newer than the running run
    app = live_gpu_app(training, tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await settled(pilot)
        await until(pilot, lambda: LIVE_GPU in screen.table.shown)
        table = screen.table
        header = table.render_line(0).text
        at = header.index("GPU")
        rows = [table.render_line(y).text for y in range(1, 4)]
        assert [row.split()[1] for row in rows] == ["finished-1", "finished-0", "resnet-live"]
        assert rows[2][at:].startswith("GPU 0 · 0% · 6.6 GB")
        assert rows[0][at : at + 10].strip() == "" and rows[1][at : at + 10].strip() == ""
        for _ in range(len(table.shown) + 1):
            if screen.sort == LIVE_GPU:
                break
            await pilot.press("s")
        await until(pilot, lambda: screen.settled and screen.sort == LIVE_GPU)
        assert "GPU ▼" in table.render_line(0).text
        assert table.render_line(1).text.split()[1] == "resnet-live"


async def test_a_live_text_wider_than_its_column_ends_in_an_ellipsis(
    training: tuple[Path, subprocess.Popen[str]],  # noqa: F811
    tmp_path: Path,
) -> None:
    app = live_gpu_app(training, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await settled(pilot)
        await until(pilot, lambda: bool(screen.table.live))
        screen._gpu_timer.stop()  # type: ignore[union-attr]  (no sample redraws this test's text)
        await until(pilot, lambda: not screen._gpu_sampling)
        [run_id] = screen.table.live
        label = "GPU 0,1,2,3,4,5,6,7 · 100% · 639.9 GB"
        screen.table.set_live({run_id: (label, 3725.0)})
        await pilot.pause()
        drawn = screen.table.render_line(1).text
        assert "GPU 0,1,2,3,4,5,6,7 · 100%… ⚠ idle 1h02m " in drawn

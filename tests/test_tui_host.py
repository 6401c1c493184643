"""The Host screen (``h``) in a real app with Pilot: the machine's readings, the GPUs (one line
here, where no driver exists; a real two-GPU machine's answers through tests/nvml_fake.py), the
processes with the run each belongs to, and ``enter`` opening that run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from nvml_fake import FakeNvml
from textual.widget import Widget
from tui_pilot import make_app, settled, until

from mltop.core.system.gpu import NvmlReader
from mltop.tui.screens.runs.detail import RunDetailScreen
from mltop.tui.screens.system.host import HostScreen
from mltop.tui.screens.system.process_list import ProcessList
from mltop.tui.widgets.keybar import KeyBar

TRAIN = textwrap.dedent(
    """
    import time
    from mltop.core.tracking import start_run

    with start_run("runs", name="resnet-live", capture_output=True) as run:
        run.log(loss=0.5)
        print("ready", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def training(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A project with a run in progress: a real child process training with mltop's writer."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN, encoding="utf-8")
    child = subprocess.Popen(
        [sys.executable, "train.py"], cwd=project, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    yield project, child
    child.kill()
    child.wait(timeout=10)


def lines(widget: Widget) -> list[str]:
    return [widget.render_line(y).text.rstrip() for y in range(widget.size.height)]


def linked_row(screen: HostScreen, pid: int) -> int | None:
    if screen.view is None:
        return None
    for index, row in enumerate(screen.view.processes):
        if row.pid == pid and row.link is not None:
            return index
    return None


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_host_screen_shows_the_machine_and_names_the_run_of_a_training_process(
    training: tuple[Path, subprocess.Popen[str]], tmp_path: Path, size: tuple[int, int]
) -> None:
    project, child = training
    app = make_app(project, tmp_path, live=False)
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HostScreen)
        await until(pilot, lambda: linked_row(screen, child.pid) is not None)
        summary = lines(screen.query_one("#host-summary"))
        assert summary[0].startswith(f"host {os.uname().nodename} · up ")
        assert [line.split()[0] for line in summary[1:6]] == [
            "CPU", "memory", "disk", "net", "GPUs",
        ]  # fmt: skip
        assert summary[5].startswith("GPUs   no NVIDIA driver (NVML: ")
        assert all(len(line) <= size[0] for line in summary)
        table = screen.query_one(ProcessList)
        index = linked_row(screen, child.pid)
        assert index is not None
        drawn = table.render_line(index + 1).text
        assert str(child.pid) in drawn and "resnet-live" in drawn and "train.py" in drawn
        keys = lines(screen.query_one(KeyBar))[0]
        assert keys.rstrip().endswith("q quit  ? help")

        table.cursor = index
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        [run] = app.store.find_runs("resnet-live")  # type: ignore[union-attr]
        assert app.screen.run_id == run.id  # type: ignore[attr-defined]


async def test_host_screen_draws_each_gpu_of_a_real_two_gpu_machine(tmp_path: Path) -> None:
    app = make_app(tmp_path, tmp_path, scan=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = HostScreen(gpu_reader=NvmlReader(FakeNvml()))
        await app.push_screen(screen)
        await until(pilot, lambda: screen.view is not None and len(screen.view.history) >= 2)
        summary = lines(screen.query_one("#host-summary"))
        gpu0 = next(
            line for line in summary if line.startswith(" GPU 0") or line.startswith("GPU 0")
        )
        gpu1 = next(line for line in summary if "GPU 1" in line)
        assert "0%" in gpu0 and "7.8/7.8 GB" in gpu0 and "45°C" in gpu0 and "5 W / 175 W" in gpu0
        assert "GeForce RTX 2070" in gpu0
        assert "25°C" in gpu1 and "12 W / 175 W" in gpu1 and "3 MB/7.8 GB" in gpu1
        assert not any("no NVIDIA driver" in line for line in summary)


async def test_enter_on_a_process_of_no_run_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path, tmp_path, scan=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("h")
        screen = app.screen
        assert isinstance(screen, HostScreen)
        await until(pilot, lambda: screen.view is not None and bool(screen.view.processes))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HostScreen)


async def test_a_process_command_line_is_shown_inert(tmp_path: Path) -> None:
    """Escape sequences and Rich markup in a command line are drawn as text, never obeyed."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN, encoding="utf-8")
    hostile = "\x1b[2J[bold red]boom[/]"
    child = subprocess.Popen(
        [sys.executable, "train.py", hostile], cwd=project, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        app = make_app(project, tmp_path, live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settled(pilot)
            await pilot.press("h")
            screen = app.screen
            assert isinstance(screen, HostScreen)
            await until(pilot, lambda: linked_row(screen, child.pid) is not None)
            index = linked_row(screen, child.pid)
            assert index is not None
            drawn = screen.query_one(ProcessList).render_line(index + 1).text
            assert "python train.py ␛[2J[bold red]boom[/]" in drawn
    finally:
        child.kill()
        child.wait(timeout=10)


async def test_host_is_in_the_palette_and_its_keys_in_help(tmp_path: Path) -> None:
    from textual.command import CommandList, CommandPalette

    from mltop.tui.screens.help import HelpScreen

    app = make_app(tmp_path, tmp_path, scan=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        commands = app.screen.query_one(CommandList)
        await until(pilot, lambda: commands.option_count > 3)
        titles = [
            str(commands.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(commands.option_count)
        ]
        assert "host" in titles
        await pilot.press("escape")
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, HostScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        ids = [ids for *_, ids in app.screen._rows]  # type: ignore[attr-defined]
        assert ids[0].startswith("host.") and "host.open_run" in ids and "app.host" in ids


async def test_closing_the_host_screen_ends_its_sampling_and_closes_nvml(tmp_path: Path) -> None:
    nvml = FakeNvml()
    app = make_app(tmp_path, tmp_path, scan=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = HostScreen(gpu_reader=NvmlReader(nvml))
        await app.push_screen(screen)
        await until(pilot, lambda: screen.view is not None and len(screen.view.history) >= 2)
        assert screen._sampler.is_alive()
        await pilot.press("escape")
        await until(pilot, lambda: not screen._sampler.is_alive())
        assert nvml.shut_down == 1

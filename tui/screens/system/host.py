"""Host (``h``): CPU per core, memory, swap, disks, network, load and GPUs, refreshed every second,
with five minutes of history as sparklines, and the processes worth knowing about with the run
each belongs to (``enter`` opens it).

Sampling happens in one thread for as long as the screen is open, through
:class:`mltop.core.system.live.HostMonitor`: a sample, then a wait for the rest of the second
(a slow ``/proc`` delays the next sample rather than queueing more), so keys and drawing never
wait for it; the screen only draws the :class:`~mltop.core.system.live.HostView` it gets back.
One thread for the screen's life rather than a Textual worker each second, which cost a thread
and the app a round of worker state messages, about a fifth of the screen's budget.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from mltop.core.common.formatting import fit_text, fmt_duration
from mltop.core.common.sanitize import inert
from mltop.core.store import StoreError
from mltop.core.system.gpu import GpuReader, NvmlReader
from mltop.core.system.idle import IdleTracker, idle_settings
from mltop.core.system.live import HostMonitor, HostView
from mltop.core.system.processes import ProcessRow, RunTraces
from mltop.core.system.readout import (
    bar,
    fmt_bytes,
    fmt_percent,
    fmt_rate,
    fmt_used,
    gpu_memory,
    gpu_power,
    gpu_temperature,
    host_title,
    sparkline,
)
from mltop.tui.commands import ScreenCommand, ScreenCommands
from mltop.tui.screens.system.process_list import ProcessList
from mltop.tui.widgets.keybar import KeyBar

if TYPE_CHECKING:
    from mltop.tui.context import AppContext

REFRESH_SECONDS = 1.0
_COLUMNS = ("PID", "user", "CPU", "memory", "GPU memory", "run", "command")


class HostSampled(Message):
    def __init__(self, view: HostView, names: dict[str, str]) -> None:
        super().__init__()
        self.view = view
        self.names = names


class HostScreen(Screen[None]):
    CSS_PATH = "host.tcss"
    COMMANDS: ClassVar = {ScreenCommands}
    HELP_TITLE = "host"
    AUTO_FOCUS = "#host-processes"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", id="host.back"),
        Binding("enter", "open_run", "open run", id="host.open_run"),
    ]

    def __init__(self, root: Path | None = None, gpu_reader: GpuReader | None = None) -> None:
        super().__init__()
        self.root = root
        threshold, after, self._setting_problem = idle_settings()
        self.monitor = HostMonitor(
            traces=self._traces,
            gpu_reader=gpu_reader if gpu_reader is not None else NvmlReader(),
            idle=IdleTracker(threshold, after),
        )
        self.view: HostView | None = None
        self.names: dict[str, str] = {}
        self._stop_sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="mltop-host", daemon=True)
        self._rows: list[int] = []
        self._drawn_width = 0

    @property
    def mltop(self) -> AppContext:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Text("reading the machine…"), id="host-summary")
        yield ProcessList(id="host-processes")
        yield KeyBar(id="host-keys")

    def on_mount(self) -> None:
        if self._setting_problem:
            self.notify(self._setting_problem, severity="warning", timeout=10, markup=False)
        self._sampler.start()

    def on_unmount(self) -> None:
        self._stop_sampling.set()  # the sampling thread closes the monitor as it ends

    # -- sampling (worker thread) ----------------------------------------------------------------

    def _traces(self) -> RunTraces:
        """The running runs' files and commands, asked of the store (worker thread)."""
        if getattr(self.app, "store", None) is None:
            return RunTraces()
        try:
            with self.mltop.store_in_use() as store:
                return RunTraces.from_rows(*store.running_run_traces())
        except StoreError:
            return RunTraces()

    def _sample(self) -> None:
        """Sample once a second until the screen closes, then close the monitor (NVML)."""
        try:
            while not self._stop_sampling.is_set():
                started = time.monotonic()
                view = self.monitor.sample()
                self.post_message(HostSampled(view, self._run_names(view)))
                self._stop_sampling.wait(max(0.0, REFRESH_SECONDS - (time.monotonic() - started)))
        finally:
            self.monitor.close()

    def _run_names(self, view: HostView) -> dict[str, str]:
        wanted = {p.link.run_id for p in view.processes if p.link} - set(self.names)
        names = dict(self.names)
        if not wanted or getattr(self.app, "store", None) is None:
            return names
        try:
            with self.mltop.store_in_use() as store:
                for run_id in wanted:
                    run = store.run(run_id)
                    names[run_id] = run.name if run is not None else run_id[:8]
        except StoreError:
            pass
        return names

    # -- drawing ---------------------------------------------------------------------------------

    @on(HostSampled)
    def _sampled(self, message: HostSampled) -> None:
        before = self.view
        self.view, self.names = message.view, message.names
        width = max(40, self.size.width - 2)
        view = message.view
        # The next sample fills the list's height: the busiest processes after those on a GPU
        # or in a run.
        room = self.query_one(ProcessList).size.height
        pinned = sum(1 for p in view.processes if p.link or p.gpu_memory)
        self.monitor.top = max(3, room - 1 - pinned)
        # The summary's height is set rather than measured: it changes only with the GPUs, so
        # the update of every second needs no layout pass of the screen.
        widget = self.query_one("#host-summary", Static)
        height = 5 + len(view.gpus.devices) + (view.gpus.problem is not None)
        if widget.styles.height is None or widget.styles.height.value != height:
            widget.styles.height = height
        widget.update(summary(view, width), layout=False)
        # The process list is re-read every few seconds, not every refresh: redraw the table
        # (the costliest part of a refresh) only when its rows, runs or idle marks changed.
        if (
            before is None
            or before.processes is not view.processes
            or before.idle.keys() != view.idle.keys()
            or self.size.width != self._drawn_width
            or any(view.idle[r] // 60 != before.idle[r] // 60 for r in view.idle)
        ):
            self._drawn_width = self.size.width
            self._fill_processes(view)

    def _fill_processes(self, view: HostView) -> None:
        table = self.query_one(ProcessList)
        pids = [p.pid for p in view.processes]
        selected = self._rows[table.cursor] if 0 <= table.cursor < len(self._rows) else None
        run_width = 24 if self.size.width >= 110 else 16
        cells = [self._cells(row, view, run_width) for row in view.processes]
        widths = [len(name) for name in _COLUMNS[:-1]]
        for row_cells in cells:
            widths = [max(w, c.cell_len) for w, c in zip(widths, row_cells, strict=False)]
        # The command takes what the other columns leave (two cells between columns).
        command_width = max(12, self.size.width - sum(widths) - 2 * len(widths) - 1)
        right = {0, 2, 3, 4}  # PID, CPU, memory and GPU memory read right-aligned

        def line(row_cells: list[Text], command: Text) -> Text:
            out = Text(" ", no_wrap=True)
            for index, (cell, width) in enumerate(zip(row_cells, widths, strict=True)):
                pad = " " * (width - cell.cell_len)
                out.append_text(Text(pad) + cell if index in right else cell + Text(pad))
                out.append("  ")
            out.append_text(command)
            return out

        header = line([Text(n, style="bold") for n in _COLUMNS[:-1]], Text("command", "bold"))
        rows = [
            line(row_cells, Text(fit_text(inert(row.short_command), command_width)))
            for row, row_cells in zip(view.processes, cells, strict=True)
        ]
        table.set_rows(header, rows, pids.index(selected) if selected in pids else None)
        self._rows = pids

    def _cells(self, row: ProcessRow, view: HostView, run_width: int) -> list[Text]:
        """Every cell of a process's row but its command."""
        run_cell = Text("")
        if row.link is not None:
            name = self.names.get(row.link.run_id, row.link.run_id[:8])
            run_cell = Text(fit_text(inert(name), run_width))
            idle = view.idle.get(row.link.run_id)
            if idle is not None:
                run_cell.append(f" ⚠ idle {fmt_duration(idle)}", style="bold yellow")
        gpu = ", ".join(f"{i}:{fmt_bytes(b)}" for i, b in sorted(row.gpu_memory.items()))
        return [
            Text(str(row.pid)),
            Text(fit_text(inert(row.user or "?"), 10)),
            Text(fmt_percent(row.cpu_percent)),
            Text(fmt_bytes(row.rss)),
            Text(gpu),
            run_cell,
        ]

    # -- actions ---------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_open_run(self) -> None:
        view = self.view
        cursor = self.query_one(ProcessList).cursor
        if view is None or not 0 <= cursor < len(view.processes):
            return
        row = view.processes[cursor]
        if row.link is None:
            self.notify(f"process {row.pid} belongs to no running run", timeout=3, markup=False)
            return
        from mltop.tui.screens.runs.detail import RunDetailScreen

        root = self.root if self.root is not None else self.mltop.root
        self.app.push_screen(RunDetailScreen(row.link.run_id, root))

    def help_extra(self) -> RenderableType:
        return Text(
            "\nA process belongs to a run when it holds one of the run's files open, or runs\n"
            "in the working directory with the command line the run recorded. A run whose\n"
            "GPUs stay under 10% for 5 minutes is marked ⚠ idle (MLTOP_GPU_IDLE_PERCENT and\n"
            "MLTOP_GPU_IDLE_AFTER set both). GPUs are read through NVML:\n"
            "pip install 'mltop[gpu]'.\n"
        )

    def commands(self) -> list[ScreenCommand]:
        return [ScreenCommand("Open the process's run", "key: enter", self.action_open_run)]


def summary(view: HostView, width: int) -> Text:
    """The lines above the process table: host, CPU, memory, disk and network, GPUs.

    Plain lines padded by hand rather than a Rich table: this is redrawn every second, and a
    table measures every cell on each draw.
    """
    snapshot = view.snapshot
    history = view.history
    spark_width = max(10, min(40, width - 70))
    text_width = max(10, width - 7 - spark_width - 1)

    def row(label: str, text: str, values: list[float], top: float | None = None) -> Text:
        line = Text(f"{label:<7}", style="bold", no_wrap=True)
        line.append(fit_text(text, text_width).ljust(text_width + 1))
        line.append(sparkline(values, spark_width, top).rjust(spark_width), style="cyan")
        return line

    cores = sparkline(list(snapshot.cpu_per_core), len(snapshot.cpu_per_core), 100)
    share = snapshot.memory_used / snapshot.memory_total * 100 if snapshot.memory_total else None
    swap = fmt_used(snapshot.swap_used, snapshot.swap_total) if snapshot.swap_total else "none"
    memory = fmt_used(snapshot.memory_used, snapshot.memory_total)
    read, write = fmt_rate(snapshot.disk_read_rate), fmt_rate(snapshot.disk_write_rate)
    recv, sent = fmt_rate(snapshot.net_recv_rate), fmt_rate(snapshot.net_sent_rate)
    title = Text(inert(host_title(snapshot)), style="bold", no_wrap=True)
    title.append(f"   ── {len(history)} s of 5 min ──", style="dim")
    lines = [
        title,
        row(
            "CPU",
            f"{bar(snapshot.cpu_percent, 12)} {fmt_percent(snapshot.cpu_percent):>4}  {cores}",
            [s.cpu_percent or 0.0 for s in history],
            100,
        ),
        row(
            "memory",
            f"{bar(share, 12)} {memory}  swap {swap}",
            [s.memory_used for s in history],
            snapshot.memory_total,
        ),
        row(
            "disk",
            f"read {read}  write {write}",
            [(s.disk_read_rate or 0) + (s.disk_write_rate or 0) for s in history],
        ),
        row(
            "net",
            f"recv {recv}  sent {sent}",
            [(s.net_recv_rate or 0) + (s.net_sent_rate or 0) for s in history],
        ),
    ]
    for device in view.gpus.devices:
        lines.append(
            row(
                f"GPU {device.index}",
                f"{bar(device.utilization, 12)} {fmt_percent(device.utilization):>4}  "
                f"{gpu_memory(device)}  {gpu_temperature(device)}  {gpu_power(device)}  "
                f"{inert(device.name)}",
                list(view.gpu_history.get(device.index, ())),
                100,
            )
        )
    if view.gpus.problem is not None:
        problem = Text("GPUs   ", style="bold", no_wrap=True)
        problem.append(fit_text(inert(view.gpus.problem), max(10, width - 7)), style="dim")
        lines.append(problem)
    return Text("\n").join(lines)

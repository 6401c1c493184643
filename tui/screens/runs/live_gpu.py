"""Running runs' GPU use in the runs table: a background sample every few seconds.

Apart from the runs screen because it is a separate loop with its own worker, message and
reader (NVML unless a test gives one), unrelated to loading, filtering or sorting runs; on a
machine without NVIDIA GPUs it stops after its first sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from mltop.core.runs.runs_view import LIVE_GPU, Column
from mltop.core.store import Store, StoreError
from mltop.tui.widgets.run_table import RunTable

if TYPE_CHECKING:
    from mltop.core.system.gpu import GpuReader
    from mltop.core.system.live import HostMonitor
    from mltop.tui.context import AppContext

#: How often running runs' GPU use is read for the table (only on a machine with NVIDIA GPUs).
LIVE_GPU_SECONDS = 5.0


class LiveGpu(Message):
    """Running runs' GPU use by run id (label, seconds idle), or None: this machine has none;
    and their GPUs' utilization, what the live column sorts by."""

    def __init__(
        self,
        live: dict[str, tuple[str, float | None]] | None,
        utilization: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.live = live
        self.utilization = utilization or {}


class LiveGpuScreen(Screen[None]):
    """A screen with a :class:`RunTable` whose running runs show their live GPU use.

    The subclass sets ``store`` once it is open and starts ``_gpu_timer`` with
    ``set_interval(self.live_gpu_seconds, self._sample_gpus)``.
    """

    store: Store | None
    # The subclass's sort and loading, which a sample may call for.
    sort: Column
    reload: Callable[[], None]

    def __init__(self) -> None:
        super().__init__()
        # Running runs' live GPU use (see _sample_gpus); the reader is NVML unless one is given.
        self.gpu_reader: GpuReader | None = None
        self.live_gpu_seconds = LIVE_GPU_SECONDS
        self._gpu_monitor: HostMonitor | None = None
        self._gpu_timer: Timer | None = None
        self._gpu_sampling = False
        # Each running run's GPU utilization, for a table sorted by the live column (replaced
        # whole at each sample: the loading thread reads it).
        self.live_utilization: dict[str, float] = {}

    def _sample_gpus(self) -> None:
        if self._gpu_sampling or self.store is None or self.app.screen is not self:
            return
        self._gpu_sampling = True
        self._gpu_worker()

    @work(thread=True, group="runs-gpu", exit_on_error=False)
    def _gpu_worker(self) -> None:
        """Which GPUs each running run's processes use, and which runs sit idle on theirs."""
        from mltop.core.system.processes import RunTraces

        live: dict[str, tuple[str, float | None]] | None = {}
        utilization: dict[str, float] = {}
        try:
            if self._gpu_monitor is None:
                self._gpu_monitor = _gpu_monitor(self.gpu_reader)
            monitor = self._gpu_monitor
            if monitor.gpu_reader.read().problem is not None:
                live = None  # no GPUs here (NVML remembers why): stop asking
                return
            try:
                with cast("AppContext", self.app).store_in_use() as store:
                    traces = RunTraces.from_rows(*store.running_run_traces())
            except StoreError:
                traces = RunTraces()
            if traces:
                monitor.traces = lambda: traces
                view = monitor.sample()
                live = {r: (u.label(), view.idle.get(r)) for r, u in view.usage.items()}
                utilization = {
                    r: u.utilization for r, u in view.usage.items() if u.utilization is not None
                }
        finally:
            self._gpu_sampling = False
            # A message, not call_from_thread: it is dropped quietly if the app has closed.
            self.post_message(LiveGpu(live, utilization))

    @on(LiveGpu)
    def _show_live(self, message: LiveGpu) -> None:
        live = message.live
        if live is None:
            if self._gpu_timer is not None:
                self._gpu_timer.stop()
            return
        ranking = _ranking(self.live_utilization)
        self.live_utilization = message.utilization
        self.query_one(RunTable).set_live(live)
        if self.sort == LIVE_GPU and _ranking(message.utilization) != ranking:
            self.reload()  # the busiest run changed: the store's answer is ordered anew


def _ranking(utilization: dict[str, float]) -> list[str]:
    """The running runs in the order the live column sorts them."""
    return sorted(utilization, key=lambda run_id: (-utilization[run_id], run_id))


def _gpu_monitor(reader: GpuReader | None) -> HostMonitor:
    """A monitor for the runs table: processes re-read at every (5 s) sample."""
    from mltop.core.system.gpu import NvmlReader
    from mltop.core.system.idle import IdleTracker, idle_settings
    from mltop.core.system.live import HostMonitor

    threshold, after, _ = idle_settings()
    return HostMonitor(
        gpu_reader=reader if reader is not None else NvmlReader(),
        idle=IdleTracker(threshold, after),
        process_every=0.0,
    )

"""One refresh of the Host screen: the host, the GPUs, the processes and the runs they belong to.

:class:`HostMonitor` owns the readers that need state between refreshes (rates, CPU percent,
the NVML handle, process links, idle timers) and the five-minute history the sparklines draw;
each :meth:`~HostMonitor.sample` returns an immutable :class:`HostView` for the UI to draw. It
is called from a worker thread; nothing in it touches the UI.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mltop.core.system.gpu import GpuReader, GpuReading, NvmlReader
from mltop.core.system.host import HISTORY_SECONDS, HostSampler, HostSnapshot
from mltop.core.system.idle import IdleTracker, RunGpuUsage, run_gpu_usage
from mltop.core.system.processes import TOP_BY_CPU, ProcessRow, ProcessWatcher, RunTraces

#: The process table refreshes less often than the numbers above it: listing every process
#: costs far more than the host counters, and a process list that changes every second is
#: hard to read (and to select in).
PROCESS_SECONDS = 3.0


@dataclass(frozen=True)
class HostView:
    """Everything one refresh shows."""

    snapshot: HostSnapshot
    gpus: GpuReading
    processes: tuple[ProcessRow, ...]
    usage: dict[str, RunGpuUsage]
    idle: dict[str, float]
    history: tuple[HostSnapshot, ...]
    gpu_history: dict[int, tuple[float, ...]]


@dataclass
class HostMonitor:
    """Samples the machine for the Host screen (and the runs table's live GPU column)."""

    traces: Callable[[], RunTraces] | None = None
    gpu_reader: GpuReader = field(default_factory=NvmlReader)
    idle: IdleTracker = field(default_factory=IdleTracker)
    process_every: float = PROCESS_SECONDS
    #: How many of the busiest other processes to list (the screen sets it to what fits).
    top: int = TOP_BY_CPU
    _host: HostSampler = field(default_factory=HostSampler)
    _watcher: ProcessWatcher | None = None
    _processes: tuple[ProcessRow, ...] = ()
    _processes_at: float = float("-inf")
    _gpu_history: dict[int, deque[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Through a lambda: the runs table sets ``traces`` anew at each sample.
        self._watcher = ProcessWatcher(lambda: self.traces() if self.traces else RunTraces())

    def sample(self) -> HostView:
        snapshot = self._host.sample()
        gpus = self.gpu_reader.read()
        now = time.monotonic()
        if now - self._processes_at >= self.process_every:
            assert self._watcher is not None
            self._watcher.top = self.top
            self._processes = tuple(self._watcher.sample(gpus))
            self._processes_at = now
        for device in gpus.devices:
            history = self._gpu_history.setdefault(device.index, deque(maxlen=HISTORY_SECONDS))
            history.append(device.utilization if device.utilization is not None else 0.0)
        usage = run_gpu_usage(self._processes, gpus)
        return HostView(
            snapshot=snapshot,
            gpus=gpus,
            processes=self._processes,
            usage=usage,
            idle=self.idle.update(usage, snapshot.time),
            history=tuple(self._host.history),
            gpu_history={i: tuple(h) for i, h in self._gpu_history.items()},
        )

    def close(self) -> None:
        self.gpu_reader.close()


def read_once(interval: float = 0.5, gpu_reader: GpuReader | None = None) -> HostView:
    """One view whose rates and CPU percentages are measured over ``interval`` seconds."""
    monitor = HostMonitor(gpu_reader=gpu_reader or NvmlReader(), process_every=0.0)
    try:
        monitor.sample()
        time.sleep(interval)
        return monitor.sample()
    finally:
        monitor.close()

"""System metrics for mltop's own writer: ``start_run(..., system_metrics=True)``.

A daemon thread samples, every ``interval`` seconds (10 by default, as MLflow and W&B do), what
the training process tree costs the machine, and hands each sample to the run, which appends it
as a row of ``system.csv`` at the step the run had reached. The keys are the file's header,
written once: a row is a few dozen bytes of numbers, where a JSON line repeating nine long keys
was four times the size of a model line and made reading the samples cost a third more than
the model metrics they sit beside (bench/system_metrics.py). The columns are fixed when the run
starts (:meth:`SystemSampler.columns`): every GPU of the machine has its four, left empty while
none of the job's processes uses it. Keys follow MLflow's ``system/...`` vocabulary so one
filter reaches both trackers' figures:

* ``system/process_cpu_utilization_percentage``: CPU of the process and all its children (one
  full core is 100, as ``top`` counts); ``system/process_memory_rss_megabytes``: their RSS.
* ``system/cpu_utilization_percentage``, ``system/system_memory_usage_megabytes`` and
  ``system/system_memory_usage_percentage``: the whole machine, as MLflow logs them.
* Where NVML can be loaded (``nvidia-ml-py``), for each GPU that one of those processes uses:
  ``system/gpu_N_utilization_percentage``, ``system/gpu_N_memory_usage_megabytes``,
  ``system/gpu_N_memory_usage_percentage`` and ``system/gpu_N_power_usage_watts``. Without a
  driver there is simply no GPU series.

GPUs are read through :class:`GpuReader`, so the sampler does not depend on NVML being present.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

#: Megabytes as MLflow counts them (10**6 bytes), so the same key holds the same number.
MB = 1e6
#: The keys of every sample, then those of each GPU (``system/gpu_N_`` + one of GPU_KEYS).
PROCESS_KEYS = (
    "system/process_cpu_utilization_percentage",
    "system/process_memory_rss_megabytes",
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
)
GPU_KEYS = (
    "utilization_percentage",
    "memory_usage_megabytes",
    "memory_usage_percentage",
    "power_usage_watts",
)


@dataclass(frozen=True)
class GpuSample:
    """One GPU's figures at one moment, in the units of MLflow's keys."""

    index: int
    utilization_percent: float
    memory_used_mb: float
    memory_total_mb: float
    power_watts: float | None = None


class GpuReader(Protocol):
    def indices(self) -> list[int]:
        """Every GPU of the machine (the columns a run's samples may fill)."""
        ...

    def sample(self, pids: set[int]) -> list[GpuSample]:
        """The GPUs on which one of ``pids`` runs, with their figures now."""
        ...


class NvmlGpus:
    """NVIDIA GPUs through NVML (the ``pynvml`` module of ``nvidia-ml-py``)."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._count = nvml.nvmlDeviceGetCount()

    @classmethod
    def load(cls) -> NvmlGpus | None:
        """The reader, or None where NVML cannot be loaded (no package, no driver, no GPU)."""
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            return cls(pynvml)
        except Exception:  # ImportError, or any NVMLError: no GPU figures, not a failure
            return None

    def indices(self) -> list[int]:
        return list(range(self._count))

    def sample(self, pids: set[int]) -> list[GpuSample]:
        nvml = self._nvml
        out = []
        for index in range(self._count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                if not any(p.pid in pids for p in procs):
                    continue
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                try:
                    power: float | None = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
                except nvml.NVMLError:
                    power = None
            except nvml.NVMLError:
                continue  # a GPU that stops answering: skip it this time
            out.append(
                GpuSample(index, float(util.gpu), memory.used / MB, memory.total / MB, power)
            )
        return out


class SystemSampler:
    """Samples the process tree of ``pid`` every ``interval`` seconds into ``write``."""

    def __init__(
        self,
        write: Callable[[dict[str, float]], None],
        interval: float,
        gpus: GpuReader | None = None,
        pid: int | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"system metrics interval must be > 0 seconds, got {interval!r}")
        self._write = write
        self._interval = float(interval)
        self._gpus = gpus
        self._root = psutil.Process(pid or os.getpid())
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mltop-system-metrics", daemon=True)
        self._tree()  # CPU percentages count from here: the first sample is a real one
        psutil.cpu_percent()

    def columns(self) -> list[str]:
        """Every key a sample of this sampler can hold, in a fixed order: the machine's GPUs are
        asked once, here."""
        gpus = self._gpus.indices() if self._gpus is not None else []
        return [*PROCESS_KEYS, *(f"system/gpu_{i}_{key}" for i in gpus for key in GPU_KEYS)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then write one last sample (a run shorter than ``interval`` still
        records one)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._write(self.sample())

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._write(self.sample())

    def _tree(self) -> list[psutil.Process]:
        """The root and its descendants, reusing Process objects so cpu_percent has a base."""
        try:
            current = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            current = [self._root]
        procs = []
        for proc in current:
            known = self._procs.get(proc.pid)
            if known is None:
                known = self._procs[proc.pid] = proc
                try:
                    known.cpu_percent()  # the base the next call measures from
                except psutil.Error:
                    continue
            procs.append(known)
        alive = {p.pid for p in procs}
        for pid in [p for p in self._procs if p not in alive]:
            del self._procs[pid]
        return procs

    def sample(self) -> dict[str, float]:
        cpu = rss = 0.0
        procs = self._tree()
        for proc in procs:
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent()
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue  # exited between the listing and the read
        memory = psutil.virtual_memory()
        figures = (cpu, rss / MB, psutil.cpu_percent(), memory.used / MB,
                   memory.used / memory.total * 100)  # fmt: skip
        out = dict(zip(PROCESS_KEYS, figures, strict=True))
        if self._gpus is not None:
            for gpu in self._gpus.sample({p.pid for p in procs}):
                prefix = f"system/gpu_{gpu.index}_"
                out[prefix + "utilization_percentage"] = gpu.utilization_percent
                out[prefix + "memory_usage_megabytes"] = gpu.memory_used_mb
                if gpu.memory_total_mb > 0:
                    share = 100.0 * gpu.memory_used_mb / gpu.memory_total_mb
                    out[prefix + "memory_usage_percentage"] = share
                if gpu.power_watts is not None:
                    out[prefix + "power_usage_watts"] = gpu.power_watts
        return out

"""A running run's live GPU use, and the flag for a run whose GPUs sit idle.

A run uses the GPUs its linked processes hold memory on; its utilization is the mean of those
GPUs' (NVML reports utilization per device, not per process). A run whose GPUs stay under
:data:`IDLE_PERCENT` for :data:`IDLE_SECONDS` is flagged: the usual sign of a job stuck in data
loading, waiting on a lock, or finished with its work but not its process. Both are set with
``MLTOP_GPU_IDLE_PERCENT`` and ``MLTOP_GPU_IDLE_AFTER`` (seconds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mltop.core.system.gpu import GpuReading
from mltop.core.system.processes import ProcessRow
from mltop.core.system.readout import fmt_bytes

IDLE_PERCENT = 10.0
IDLE_SECONDS = 300.0
PERCENT_ENV = "MLTOP_GPU_IDLE_PERCENT"
AFTER_ENV = "MLTOP_GPU_IDLE_AFTER"


@dataclass(frozen=True)
class RunGpuUsage:
    """The GPUs a run's processes are on, their mean utilization and the memory they hold."""

    run_id: str
    gpus: tuple[int, ...]
    utilization: float | None
    memory: int

    def label(self) -> str:
        """``GPU 0,1 · 87% · 61 GB``, as the runs table's live column shows it."""
        util = "—" if self.utilization is None else f"{self.utilization:.0f}%"
        gpus = ",".join(str(i) for i in self.gpus)
        return f"GPU {gpus} · {util} · {fmt_bytes(self.memory)}"


def run_gpu_usage(rows: Iterable[ProcessRow], gpus: GpuReading) -> dict[str, RunGpuUsage]:
    """Each linked run's GPU use, from its processes' GPU memory and the devices' utilization."""
    held: dict[str, dict[int, int]] = {}
    for row in rows:
        if row.link is None or not row.gpu_memory:
            continue
        per_gpu = held.setdefault(row.link.run_id, {})
        for index, memory in row.gpu_memory.items():
            per_gpu[index] = per_gpu.get(index, 0) + memory
    utilization = {d.index: d.utilization for d in gpus.devices}
    out: dict[str, RunGpuUsage] = {}
    for run_id, per_gpu in held.items():
        known = [u for i in per_gpu if (u := utilization.get(i)) is not None]
        out[run_id] = RunGpuUsage(
            run_id,
            tuple(sorted(per_gpu)),
            sum(known) / len(known) if known else None,
            sum(per_gpu.values()),
        )
    return out


def idle_settings(environ: Mapping[str, str] | None = None) -> tuple[float, float, str | None]:
    """The idle threshold (percent) and duration (seconds), and a line about a bad setting."""
    environ = os.environ if environ is None else environ
    values = {PERCENT_ENV: IDLE_PERCENT, AFTER_ENV: IDLE_SECONDS}
    problems = []
    for name in values:
        text = environ.get(name)
        if text is None or not text.strip():
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            problems.append(f"{name}={text!r} is not a non-negative number; using {values[name]:g}")
            continue
        values[name] = value
    return values[PERCENT_ENV], values[AFTER_ENV], "; ".join(problems) or None


@dataclass
class IdleTracker:
    """Follows each run's GPU utilization over time and says which runs have been idle."""

    threshold: float = IDLE_PERCENT
    after: float = IDLE_SECONDS
    _quiet_since: dict[str, float] = field(default_factory=dict)

    def update(self, usage: Mapping[str, RunGpuUsage], now: float) -> dict[str, float]:
        """Runs flagged idle now, with how long (seconds) their GPUs have been under threshold."""
        for run_id in [r for r in self._quiet_since if r not in usage]:
            del self._quiet_since[run_id]  # the run left its GPUs (or ended)
        flagged: dict[str, float] = {}
        for run_id, use in usage.items():
            if use.utilization is None:
                continue
            if use.utilization >= self.threshold:
                self._quiet_since.pop(run_id, None)
                continue
            since = self._quiet_since.setdefault(run_id, now)
            if now - since >= self.after:
                flagged[run_id] = now - since
        return flagged

"""A snapshot of the host through psutil, and the rolling history the Host screen draws.

Rates (disk and network bytes per second, CPU percent) are differences between two readings,
so a :class:`HostSampler` keeps the previous counters; the first sample after it is made has
no rates yet (``None``), the same as ``top``'s first frame. psutil reads /proc directly and
each sample costs well under a millisecond of CPU, which is what keeps a screen refreshing
once a second inside its budget.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field

import psutil

#: Samples kept for the sparklines: five minutes at one a second.
HISTORY_SECONDS = 300


@dataclass(frozen=True)
class HostSnapshot:
    """What the machine is doing at one moment (rates over the interval before it)."""

    time: float
    hostname: str
    boot_time: float
    cpu_count: int
    cpu_percent: float | None
    cpu_per_core: tuple[float, ...]
    load: tuple[float, float, float] | None
    memory_total: int
    memory_used: int
    memory_available: int
    swap_total: int
    swap_used: int
    disk_read_rate: float | None
    disk_write_rate: float | None
    net_recv_rate: float | None
    net_sent_rate: float | None

    @property
    def uptime(self) -> float:
        return max(0.0, self.time - self.boot_time)

    def as_json(self) -> dict[str, object]:
        return {
            "time": self.time,
            "hostname": self.hostname,
            "uptime_seconds": self.uptime,
            "cpu": {
                "count": self.cpu_count,
                "percent": self.cpu_percent,
                "per_core": list(self.cpu_per_core),
                "load": list(self.load) if self.load is not None else None,
            },
            "memory": {
                "total_bytes": self.memory_total,
                "used_bytes": self.memory_used,
                "available_bytes": self.memory_available,
            },
            "swap": {"total_bytes": self.swap_total, "used_bytes": self.swap_used},
            "disk": {
                "read_bytes_per_second": self.disk_read_rate,
                "write_bytes_per_second": self.disk_write_rate,
            },
            "network": {
                "recv_bytes_per_second": self.net_recv_rate,
                "sent_bytes_per_second": self.net_sent_rate,
            },
        }


@dataclass
class _Counters:
    at: float
    disk: tuple[int, int] | None
    net: tuple[int, int] | None
    cpu: list[tuple[float, float]]  # per core: (busy, total) seconds


def _cpu() -> list[tuple[float, float]]:
    # Measured here rather than with psutil.cpu_percent(), whose "since the last call" state is
    # global to the process: any other caller would shorten this sampler's interval to nothing.
    out = []
    for times in psutil.cpu_times(percpu=True):
        total = sum(times)
        idle = times.idle + getattr(times, "iowait", 0.0)
        out.append((total - idle, total))
    return out


def _busy(now: list[tuple[float, float]], before: list[tuple[float, float]]) -> tuple[float, ...]:
    shares = []
    for (busy, total), (busy0, total0) in zip(now, before, strict=False):
        elapsed = total - total0
        shares.append(min(100.0, max(0.0, (busy - busy0) / elapsed * 100)) if elapsed > 0 else 0.0)
    return tuple(shares)


def _disk() -> tuple[int, int] | None:
    counters = psutil.disk_io_counters(perdisk=False)
    return (counters.read_bytes, counters.write_bytes) if counters is not None else None


def _net() -> tuple[int, int] | None:
    counters = psutil.net_io_counters(pernic=False)
    return (counters.bytes_recv, counters.bytes_sent) if counters is not None else None


def _rate(now: int, before: int, seconds: float) -> float:
    # A counter that went backwards (a device removed, a wrap) gives no negative rate.
    return max(0, now - before) / seconds


@dataclass
class HostSampler:
    """Reads snapshots one after another, keeping the counters that rates are measured from."""

    history: deque[HostSnapshot] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    _last: _Counters | None = None

    def sample(self) -> HostSnapshot:
        now = time.time()
        counters = _Counters(now, _disk(), _net(), _cpu())
        last, self._last = self._last, counters
        per_core = _busy(counters.cpu, last.cpu) if last is not None else ()
        seconds = now - last.at if last is not None else 0.0
        disk_rates: tuple[float | None, float | None] = (None, None)
        net_rates: tuple[float | None, float | None] = (None, None)
        if last is not None and seconds > 0:
            if counters.disk is not None and last.disk is not None:
                disk_rates = (
                    _rate(counters.disk[0], last.disk[0], seconds),
                    _rate(counters.disk[1], last.disk[1], seconds),
                )
            if counters.net is not None and last.net is not None:
                net_rates = (
                    _rate(counters.net[0], last.net[0], seconds),
                    _rate(counters.net[1], last.net[1], seconds),
                )
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        try:
            load: tuple[float, float, float] | None = os.getloadavg()
        except OSError:
            load = None
        snapshot = HostSnapshot(
            time=now,
            hostname=os.uname().nodename,
            boot_time=psutil.boot_time(),
            cpu_count=len(counters.cpu),
            cpu_percent=sum(per_core) / len(per_core) if per_core else None,
            cpu_per_core=per_core,
            load=load,
            memory_total=memory.total,
            memory_used=memory.total - memory.available,
            memory_available=memory.available,
            swap_total=swap.total,
            swap_used=swap.used,
            disk_read_rate=disk_rates[0],
            disk_write_rate=disk_rates[1],
            net_recv_rate=net_rates[0],
            net_sent_rate=net_rates[1],
        )
        self.history.append(snapshot)
        return snapshot

"""NVIDIA GPUs through NVML, behind an interface small enough to stand in for in tests.

:class:`GpuReader` is what the rest of mltop asks: one :meth:`~GpuReader.read` a refresh, an
answer that is either the devices or one line saying why there are none. :class:`NvmlReader`
is the one implementation that talks to the driver, through ``nvidia-ml-py`` (the optional
extra ``mltop[gpu]``), imported only when the first reading is asked for, so machines without
a GPU never load it. A field a device does not support (power on some boards, temperature in
some VMs) reads ``None``, not an error: the rest of that device is still shown.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

#: The extra that installs NVML's Python bindings.
GPU_EXTRA_HINT = "pip install 'mltop[gpu]'"


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU (``used_memory`` in bytes; None when not reported)."""

    pid: int
    used_memory: int | None


@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML reports it. Memory in bytes, power in watts, temperature in °C."""

    index: int
    name: str
    uuid: str
    utilization: float | None
    memory_used: int | None
    memory_total: int | None
    temperature: float | None
    power_draw: float | None
    power_limit: float | None
    processes: tuple[GpuProcess, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "utilization_percent": self.utilization,
            "memory_used_bytes": self.memory_used,
            "memory_total_bytes": self.memory_total,
            "temperature_celsius": self.temperature,
            "power_draw_watts": self.power_draw,
            "power_limit_watts": self.power_limit,
            "processes": [
                {"pid": p.pid, "used_memory_bytes": p.used_memory} for p in self.processes
            ],
        }


@dataclass(frozen=True)
class GpuReading:
    """The GPUs now, or (``devices`` empty) the one line that says why none are shown."""

    devices: tuple[GpuDevice, ...] = ()
    problem: str | None = None
    driver: str | None = None

    def memory_by_pid(self) -> dict[int, dict[int, int]]:
        """GPU memory each process holds: pid -> {GPU index: bytes}."""
        out: dict[int, dict[int, int]] = {}
        for device in self.devices:
            for process in device.processes:
                held = out.setdefault(process.pid, {})
                held[device.index] = held.get(device.index, 0) + (process.used_memory or 0)
        return out


class GpuReader(Protocol):
    """What the Host screen and ``mltop host`` ask of the GPUs."""

    def read(self) -> GpuReading: ...

    def close(self) -> None: ...


@dataclass
class NvmlReader:
    """GPUs through NVML. ``nvml`` is the ``pynvml`` module (from nvidia-ml-py) unless given.

    NVML is initialised on the first read and kept until :meth:`close`; a failed start is
    remembered, so a machine without a driver pays for the attempt once, not every second.
    """

    nvml: Any = None
    _started: bool = False
    _problem: str | None = None
    _driver: str | None = None
    _handles: list[Any] = field(default_factory=list)

    def _start(self) -> None:
        if self._started or self._problem is not None:
            return
        if self.nvml is None:
            try:
                self.nvml = importlib.import_module("pynvml")
            except ImportError:
                self._problem = f"GPUs not read: nvidia-ml-py is not installed ({GPU_EXTRA_HINT})"
                return
        nvml = self.nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            self._problem = f"no NVIDIA driver (NVML: {_message(exc)})"
            return
        self._started = True
        try:
            self._driver = _text(nvml.nvmlSystemGetDriverVersion())
            count = nvml.nvmlDeviceGetCount()
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except nvml.NVMLError as exc:
            self._problem = f"NVIDIA GPUs not readable (NVML: {_message(exc)})"
            return
        if not self._handles:
            self._problem = "no NVIDIA GPU (the driver is loaded but lists none)"

    def read(self) -> GpuReading:
        self._start()
        if self._problem is not None:
            return GpuReading(problem=self._problem, driver=self._driver)
        devices = tuple(self._device(i, h) for i, h in enumerate(self._handles))
        return GpuReading(devices=devices, driver=self._driver)

    def _device(self, index: int, handle: Any) -> GpuDevice:
        nvml = self.nvml

        def ask(name: str, *args: Any) -> Any:
            try:
                return getattr(nvml, name)(handle, *args)
            except nvml.NVMLError:
                return None

        utilization = ask("nvmlDeviceGetUtilizationRates")
        memory = ask("nvmlDeviceGetMemoryInfo")
        power = ask("nvmlDeviceGetPowerUsage")
        limit = ask("nvmlDeviceGetEnforcedPowerLimit")
        temperature = ask("nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU)
        processes: dict[int, GpuProcess] = {}
        for kind in ("Compute", "Graphics"):
            for process in ask(f"nvmlDeviceGet{kind}RunningProcesses") or ():
                used = getattr(process, "usedGpuMemory", None)
                # NVML says "not available" with the largest unsigned value (Windows WDDM).
                used = used if isinstance(used, int) and 0 <= used < 2**63 else None
                if process.pid not in processes or processes[process.pid].used_memory is None:
                    processes[process.pid] = GpuProcess(int(process.pid), used)
        return GpuDevice(
            index=index,
            name=_text(ask("nvmlDeviceGetName")) or f"GPU {index}",
            uuid=_text(ask("nvmlDeviceGetUUID")) or "",
            utilization=float(utilization.gpu) if utilization is not None else None,
            memory_used=int(memory.used) if memory is not None else None,
            memory_total=int(memory.total) if memory is not None else None,
            temperature=float(temperature) if temperature is not None else None,
            power_draw=power / 1000 if power is not None else None,
            power_limit=limit / 1000 if limit is not None else None,
            processes=tuple(sorted(processes.values(), key=lambda p: p.pid)),
        )

    def close(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

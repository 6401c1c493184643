"""A stand-in for the ``pynvml`` module whose answers are read from real ``nvidia-smi -q`` output.

It stands because no GPU (and no NVIDIA driver) can run where these tests run: NVML itself
cannot be called here. Every answer comes from ``tests/fixtures/nvidia-smi/`` (what a real
driver reported on a real multi-GPU machine), converted to the units NVML's C API uses (bytes,
milliwatts), so :class:`mltop.core.system.gpu.NvmlReader` reads it exactly as it reads a driver.
The error classes are pynvml's own, so the reader's error handling meets the real exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia-smi"
MIB = 1024 * 1024


@dataclass
class SmiGpu:
    """One ``GPU <bus id>`` block of ``nvidia-smi -q``: its ``Section/Key`` fields and processes."""

    bus_id: str
    fields: dict[str, str] = field(default_factory=dict)
    processes: list[dict[str, str]] = field(default_factory=list)


def parse_smi(text: str) -> tuple[dict[str, str], list[SmiGpu]]:
    """The top-level fields (driver version...) and each GPU block of ``nvidia-smi -q`` text."""
    top: dict[str, str] = {}
    gpus: list[SmiGpu] = []
    sections: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        match = re.match(r"GPU ([0-9A-Fa-f:.]+)$", line)
        if match:
            gpus.append(SmiGpu(match.group(1)))
            sections = []
            continue
        indent = len(line) - len(line.lstrip())
        key, sep, value = line.strip().partition(":")
        key, value = key.strip(), value.strip()
        while sections and sections[-1][0] >= indent:
            sections.pop()
        if not gpus:
            top[key] = value
            continue
        gpu = gpus[-1]
        path = [name for _, name in sections]
        if path[:1] == ["Processes"]:
            if key == "Process ID":
                gpu.processes.append({})
            if gpu.processes:
                gpu.processes[-1][key] = value
            continue
        if sep and value:
            gpu.fields["/".join([*path, key])] = value
        elif not value:
            sections.append((indent, key))
    return top, gpus


def _number(text: str) -> float:
    return float(text.split()[0])


class FakeNvml:
    """The pynvml calls :class:`~mltop.core.system.gpu.NvmlReader` makes, answered from a file.

    ``unsupported`` names calls that raise NVMLError_NotSupported (as boards without power
    readings do); ``init_error`` makes ``nvmlInit`` fail as it does on a machine without a driver.
    ``pids`` lets a live process of the test stand for one of the fixture's (``{12769: pid}``),
    with the GPU memory the fixture gives it, so a run's process can be seen on a GPU.
    """

    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(
        self,
        fixture: str = "two-rtx2070.txt",
        *,
        unsupported: tuple[str, ...] = (),
        init_error: type[pynvml.NVMLError] | None = None,
        pids: dict[int, int] | None = None,
    ) -> None:
        self.top, self.gpus = parse_smi((FIXTURES / fixture).read_text(encoding="utf-8"))
        self.unsupported = unsupported
        self.init_error = init_error
        self.pids = pids or {}
        self.initialised = 0
        self.shut_down = 0

    def _check(self, name: str) -> None:
        if name in self.unsupported:
            raise pynvml.NVMLError_NotSupported()

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error()
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.shut_down += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.top["Driver Version"]

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SmiGpu:
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: SmiGpu) -> str:
        return gpu.fields["Product Name"]

    def nvmlDeviceGetUUID(self, gpu: SmiGpu) -> str:
        return gpu.fields["GPU UUID"]

    def nvmlDeviceGetUtilizationRates(self, gpu: SmiGpu) -> Any:
        self._check("nvmlDeviceGetUtilizationRates")
        fields = gpu.fields
        return SimpleNamespace(
            gpu=int(_number(fields["Utilization/Gpu"])),
            memory=int(_number(fields["Utilization/Memory"])),
        )

    def nvmlDeviceGetMemoryInfo(self, gpu: SmiGpu) -> Any:
        fields = gpu.fields
        return SimpleNamespace(
            total=int(_number(fields["FB Memory Usage/Total"])) * MIB,
            used=int(_number(fields["FB Memory Usage/Used"])) * MIB,
            free=int(_number(fields["FB Memory Usage/Free"])) * MIB,
        )

    def nvmlDeviceGetTemperature(self, gpu: SmiGpu, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        self._check("nvmlDeviceGetTemperature")
        return int(_number(gpu.fields["Temperature/GPU Current Temp"]))

    def nvmlDeviceGetPowerUsage(self, gpu: SmiGpu) -> int:
        self._check("nvmlDeviceGetPowerUsage")
        return round(_number(gpu.fields["Power Readings/Power Draw"]) * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: SmiGpu) -> int:
        self._check("nvmlDeviceGetEnforcedPowerLimit")
        return round(_number(gpu.fields["Power Readings/Enforced Power Limit"]) * 1000)

    def _processes(self, gpu: SmiGpu, kind: str) -> list[Any]:
        """nvidia-smi's processes of ``kind`` (``C`` compute, ``G`` graphics; ``C+G`` is both),
        as NVML lists them: pid (mapped through ``pids``) and memory in bytes."""
        return [
            SimpleNamespace(
                pid=self.pids.get(int(p["Process ID"]), int(p["Process ID"])),
                usedGpuMemory=int(_number(p["Used GPU Memory"])) * MIB,
            )
            for p in gpu.processes
            if p.get("Type") in (kind, "C+G")
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: SmiGpu) -> list[Any]:
        return self._processes(gpu, "C")

    def nvmlDeviceGetGraphicsRunningProcesses(self, gpu: SmiGpu) -> list[Any]:
        return self._processes(gpu, "G")

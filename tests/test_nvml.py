"""The NVML layer read through a fake whose answers are a real two-GPU machine's ``nvidia-smi -q``
(tests/nvml_fake.py says why it is a fake: no GPU runs here)."""

from __future__ import annotations

import pynvml
from nvml_fake import MIB, FakeNvml

from mltop.core.cli.host import host_json, host_tables
from mltop.core.system.gpu import GpuProcess, NvmlReader
from mltop.core.system.host import HostSampler


def test_each_gpu_reads_as_nvidia_smi_reported_it() -> None:
    reader = NvmlReader(FakeNvml())
    reading = reader.read()
    assert reading.problem is None and reading.driver == "450.102.04"
    first, second = reading.devices
    assert (first.index, first.name, first.uuid) == (
        0, "GeForce RTX 2070", "GPU-b13cc585-b683-a9a8-ac8d-7541ac69a33c",
    )  # fmt: skip
    assert first.utilization == 0.0
    assert (first.memory_used, first.memory_total) == (7977 * MIB, 7979 * MIB)
    assert first.temperature == 45.0
    assert (first.power_draw, first.power_limit) == (4.93, 175.0)
    assert first.processes == (GpuProcess(12769, 6757 * MIB), GpuProcess(12810, 1217 * MIB))
    assert (second.index, second.uuid) == (1, "GPU-5feaad6f-89e7-0a87-176f-6d96ce187460")
    assert (second.memory_used, second.memory_total) == (3 * MIB, 7982 * MIB)
    assert (second.temperature, second.power_draw) == (25.0, 11.93)
    assert second.processes == ()


def test_gpu_memory_is_attributed_to_each_process() -> None:
    reading = NvmlReader(FakeNvml()).read()
    assert reading.memory_by_pid() == {12769: {0: 6757 * MIB}, 12810: {0: 1217 * MIB}}


def test_a_reading_a_board_does_not_support_is_missing_not_zero() -> None:
    fake = FakeNvml(unsupported=("nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature"))
    first = NvmlReader(fake).read().devices[0]
    assert first.power_draw is None and first.temperature is None
    assert first.memory_total == 7979 * MIB  # the rest of the device is still read


def test_without_a_driver_the_gpus_are_one_line_and_init_is_tried_once() -> None:
    fake = FakeNvml(init_error=pynvml.NVMLError_DriverNotLoaded)
    reader = NvmlReader(fake)
    first = reader.read()
    assert first.devices == ()
    assert first.problem is not None and first.problem.startswith("no NVIDIA driver (NVML: ")
    assert "\n" not in first.problem
    fake.init_error = None
    assert reader.read().problem == first.problem and fake.initialised == 0


def test_nvml_is_started_once_and_shut_down_on_close() -> None:
    fake = FakeNvml()
    reader = NvmlReader(fake)
    for _ in range(3):
        reader.read()
    reader.close()
    assert (fake.initialised, fake.shut_down) == (1, 1)


def test_host_output_shows_each_gpu_with_its_processes() -> None:
    from rich.console import Console

    snapshot = HostSampler().sample()
    reading = NvmlReader(FakeNvml()).read()
    console = Console(width=120, record=True, color_system=None)
    for part in host_tables(snapshot, reading):
        console.print(part)
    text = console.export_text()
    gpu_rows = [line.split() for line in text.splitlines() if line.lstrip()[:2] in ("0 ", "1 ")]
    assert gpu_rows[0][:7] == ["0", "GeForce", "RTX", "2070", "0%", "7.8/7.8", "GB"]
    assert "45°C" in gpu_rows[0] and "12769" in " ".join(gpu_rows[0])
    assert "6.6 GB" in text  # 6757 MiB
    assert "none" in gpu_rows[1]
    data = host_json(snapshot, reading)
    assert [d["memory_used_bytes"] for d in data["gpus"]["devices"]] == [7977 * MIB, 3 * MIB]

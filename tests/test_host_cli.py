"""``mltop host`` on this machine, for real: no GPU here, so the GPUs are one line and the rest
of the snapshot (CPU per core, memory, swap, disk and network rates, load) is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil


def _host(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "mltop.core.cli", "host", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_host_prints_the_snapshot_and_one_line_for_the_missing_gpus() -> None:
    result = _host()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"host {os.uname().nodename} · up ")
    labels = [line.split()[0] for line in lines[1:] if line.strip()]
    assert labels[:6] == ["CPU", "memory", "swap", "disk", "network", "GPUs"]
    gpu_lines = [line for line in lines if line.startswith("GPUs")]
    assert len(gpu_lines) == 1
    assert "no NVIDIA driver (NVML: " in gpu_lines[0] or "nvidia-ml-py is not" in gpu_lines[0]
    cpu = next(line for line in lines if line.startswith("CPU"))
    assert all(f"{i}:" in cpu for i in range(psutil.cpu_count()))
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["PID", "user"])
    assert len(lines) > header + 1  # the busiest processes follow
    assert result.stderr == ""


def test_host_json_carries_every_reading_for_scripts() -> None:
    result = _host("--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["hostname"] == os.uname().nodename
    assert len(data["cpu"]["per_core"]) == psutil.cpu_count()
    assert all(0 <= p <= 100 for p in data["cpu"]["per_core"])
    assert data["memory"]["total_bytes"] == psutil.virtual_memory().total
    for group, rate in (("disk", "read"), ("disk", "write"), ("network", "recv")):
        value = data[group][f"{rate}_bytes_per_second"]
        assert value is None or value >= 0
    assert data["gpus"]["devices"] == []
    assert data["processes"] and all(isinstance(p["pid"], int) for p in data["processes"])
    assert all(p["cpu_percent"] is None or p["cpu_percent"] >= 0 for p in data["processes"])
    assert data["gpus"]["problem"].startswith(("no NVIDIA driver", "GPUs not read"))


def test_host_without_the_nvml_bindings_says_which_extra_installs_them() -> None:
    # A real interpreter in which importing pynvml fails, as on a machine without the extra.
    code = (
        "import sys; sys.modules['pynvml'] = None\n"
        "from mltop.core.cli import main; sys.exit(main(['host']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("GPUs")]
    assert "nvidia-ml-py is not installed (pip install 'mltop[gpu]')" in line


def test_host_rejects_an_unknown_option_in_one_line() -> None:
    result = _host("--bogus")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "mltop host" in result.stderr

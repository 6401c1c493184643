"""Which metric keys describe the machine (CPU, memory, disk, network, GPU) rather than the model.

Trackers record system metrics beside a run's model metrics, each in its own vocabulary:

* MLflow (``mlflow.enable_system_metrics_logging()``) logs ``system/cpu_utilization_percentage``,
  ``system/gpu_0_utilization_percentage``, ``system/gpu_0_memory_usage_megabytes``, ...
* W&B keeps them in the ``.wandb`` file's stats records (``cpu``, ``memory_percent``,
  ``gpu.0.gpu``, ``gpu.process.0.memoryAllocated``, ...). They are stored under ``system/``:
  the MLflow name where one means the same thing in the same unit (``gpu.0.gpu`` is
  ``system/gpu_0_utilization_percentage``), else ``system/`` and W&B's own key
  (``system/proc.memory.rssMB``), so one filter reaches the same figure from either tracker.
* Lightning's ``DeviceStatsMonitor`` writes columns named
  ``DeviceStatsMonitor.on_train_batch_end/cpu_percent`` (the hook, then the stat), and the
  older GPU monitors ``gpu_id: 0/utilization.gpu (%)``; they keep the names Lightning wrote.
* mltop's own writer (``start_run(system_metrics=True)``) writes MLflow's vocabulary.

Keeping them a family of their own lets the runs table leave them out of its default columns
and run detail draw them in a System group, per GPU, apart from the model's charts.
"""

from __future__ import annotations

import re

PREFIX = "system/"
LIGHTNING_PREFIX = "DeviceStatsMonitor."

_LIGHTNING_GPU = re.compile(r"^gpu_id: (\d+)/")
_MLFLOW_GPU = re.compile(r"^system/gpu_(\d+)_")
_WANDB_GPU = re.compile(r"^system/gpu\.(?:process\.)?(\d+)\.")

# W&B stats keys that mean what an MLflow system metric means, in the same unit.
_WANDB_SAME_AS_MLFLOW = {
    "memory_percent": "system_memory_usage_percentage",
    "disk./.usagePercent": "disk_usage_percentage",
}
_WANDB_GPU_SAME_AS_MLFLOW = {
    "gpu": "utilization_percentage",
    "memoryAllocated": "memory_usage_percentage",
    "powerWatts": "power_usage_watts",
    "powerPercent": "power_usage_percentage",
}
_WANDB_GPU_KEY = re.compile(r"^gpu\.(\d+)\.(\w+)$")


def is_system_key(key: str) -> bool:
    """True for a metric key that one of the trackers above records about the machine."""
    return (
        key.startswith(PREFIX)
        or key.startswith(LIGHTNING_PREFIX)
        or _LIGHTNING_GPU.match(key) is not None
    )


def gpu_index(key: str) -> int | None:
    """The GPU a system metric key is about (``system/gpu_1_...`` is 1), or None."""
    for pattern in (_MLFLOW_GPU, _WANDB_GPU, _LIGHTNING_GPU):
        match = pattern.match(key)
        if match:
            return int(match.group(1))
    return None


def wandb_stats_key(key: str) -> str:
    """The stored key of a W&B stats record's item (see the module docstring)."""
    same = _WANDB_SAME_AS_MLFLOW.get(key)
    if same is not None:
        return PREFIX + same
    match = _WANDB_GPU_KEY.match(key)
    if match and match.group(2) in _WANDB_GPU_SAME_AS_MLFLOW:
        return f"{PREFIX}gpu_{match.group(1)}_{_WANDB_GPU_SAME_AS_MLFLOW[match.group(2)]}"
    return PREFIX + key


def short_name(key: str) -> str:
    """A system key without what its group already says: ``system/gpu_0_utilization_percentage``
    is ``utilization_percentage`` under GPU 0, ``system/cpu_utilization_percentage`` is
    ``cpu_utilization_percentage`` under system; other keys are kept whole."""
    for pattern in (_MLFLOW_GPU, _WANDB_GPU):
        match = pattern.match(key)
        if match:
            rest = key[match.end() :]
            process = "process." if ".process." in match.group(0) else ""
            return process + rest if rest else key
    return key[len(PREFIX) :] if key.startswith(PREFIX) and len(key) > len(PREFIX) else key


def split_keys(keys: list[str]) -> tuple[list[str], list[str]]:
    """(model metric keys, system metric keys), each in the order given."""
    model = [k for k in keys if not is_system_key(k)]
    system = [k for k in keys if is_system_key(k)]
    return model, system


def system_groups(keys: list[str]) -> list[tuple[str, list[str]]]:
    """System keys grouped for display: the machine first, then one group per GPU, in order."""
    machine = sorted(k for k in keys if gpu_index(k) is None)
    gpus: dict[int, list[str]] = {}
    for key in keys:
        index = gpu_index(key)
        if index is not None:
            gpus.setdefault(index, []).append(key)
    groups = [("system", machine)] if machine else []
    groups += [(f"GPU {i}", sorted(gpus[i])) for i in sorted(gpus)]
    return groups

"""How the machine's numbers read, the same in ``mltop host`` and on the Host screen.

Sizes are binary (1 GB = 1024³ bytes, as ``free -h`` and nvidia-smi's MiB count them) with
three significant digits, so ``7.8 GB`` is the value rounded, never cut; a missing reading is
``—`` rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltop.core.common.formatting import fmt_duration
from mltop.core.system.gpu import GpuDevice
from mltop.core.system.host import HostSnapshot

MISSING = "—"
_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def _amount(value: float) -> str:
    """Three significant digits at most: ``7.8``, ``33.2``, ``512``; whole numbers plain."""
    if value == int(value):
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def fmt_bytes(value: float | None) -> str:
    if value is None:
        return MISSING
    size = float(value)
    unit = _UNITS[0]
    for unit in _UNITS:
        if abs(size) < 1024 or unit == _UNITS[-1]:
            break
        size /= 1024
    return f"{_amount(size)} {unit}"


def fmt_rate(value: float | None) -> str:
    return MISSING if value is None else fmt_bytes(value) + "/s"


def fmt_percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}%"


def fmt_used(used: int | None, total: int | None) -> str:
    """``used/total`` in the unit of the total (``5.1/7.8 GB``)."""
    if used is None or total is None:
        return f"{fmt_bytes(used)}/{fmt_bytes(total)}"
    total_text = fmt_bytes(total)
    unit = total_text.rsplit(" ", 1)[1]
    scale = 1024.0 ** _UNITS.index(unit)
    if 0 < used < scale / 10:
        # 3 MB of 7.8 GB would read 0.0/7.8 GB: give the small amount its own unit.
        return f"{fmt_bytes(used)}/{total_text}"
    return f"{_amount(used / scale)}/{total_text}"


def fmt_load(snapshot: HostSnapshot) -> str:
    if snapshot.load is None:
        return MISSING
    return " ".join(f"{v:.2f}" for v in snapshot.load)


def host_title(snapshot: HostSnapshot) -> str:
    return (
        f"host {snapshot.hostname} · up {fmt_duration(snapshot.uptime)} · "
        f"load {fmt_load(snapshot)} · {snapshot.cpu_count} cores"
    )


def gpu_memory(device: GpuDevice) -> str:
    return fmt_used(device.memory_used, device.memory_total)


def gpu_temperature(device: GpuDevice) -> str:
    return MISSING if device.temperature is None else f"{device.temperature:.0f}°C"


def gpu_power(device: GpuDevice) -> str:
    if device.power_draw is None:
        return MISSING
    draw = f"{device.power_draw:.0f} W"
    return draw if device.power_limit is None else f"{draw} / {device.power_limit:.0f} W"


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int, top: float | None = None) -> str:
    """The last values as one line of block characters, ``width`` cells at most.

    With more values than cells, each cell shows the largest value of its share, so a short
    spike stays visible; ``top`` is the value of a full block (default: the largest value).
    """
    if width <= 0 or not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [
            max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)])
            for i in range(width)
        ]
    ceiling = top if top is not None else max(values)
    if ceiling <= 0:
        return _BLOCKS[0] * len(values)
    last = len(_BLOCKS) - 1
    return "".join(_BLOCKS[min(last, max(0, round(v / ceiling * last)))] for v in values)


def bar(percent: float | None, width: int) -> str:
    """A gauge of ``width`` cells between ``▕`` and ``▏`` filled to ``percent``."""
    inner = max(1, width - 2)
    share = 0.0 if percent is None else min(1.0, max(0.0, percent / 100))
    eighths = round(share * inner * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if full < inner else ""
    return "▕" + ("█" * full + partial).ljust(inner)[:inner] + "▏"

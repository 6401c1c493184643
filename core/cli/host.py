"""``mltop host [--json]``: what the machine is doing now, printed once (for scripts and ``watch``).

The same snapshot as the Host screen: CPU per core, memory, swap, disk and network rates over
half a second, load, and the NVIDIA GPUs with their processes (or the one line saying why there
are none). Everything it prints goes through ``inert``: process and GPU names are text from the
machine, not markup.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from rich.table import Table
from rich.text import Text

from mltop.core.cli.output import EXIT_OK, Parser, stdout_console
from mltop.core.common.formatting import fit_text
from mltop.core.common.sanitize import inert, inert_json
from mltop.core.system.gpu import GpuReading
from mltop.core.system.host import HostSnapshot
from mltop.core.system.live import HostView, read_once
from mltop.core.system.processes import ProcessRow
from mltop.core.system.readout import (
    fmt_bytes,
    fmt_percent,
    fmt_rate,
    fmt_used,
    gpu_memory,
    gpu_power,
    gpu_temperature,
    host_title,
)

_DESCRIPTION = """\
Print what the machine is doing now: CPU per core, memory, swap, disk and network rates (measured
over half a second), load, and each NVIDIA GPU's utilization, memory, temperature, power and
processes (through NVML: pip install 'mltop[gpu]'; without a driver, one line says so), then the
processes on a GPU and the busiest by CPU."""


def host_json(
    snapshot: HostSnapshot, gpus: GpuReading, processes: tuple[ProcessRow, ...] = ()
) -> dict[str, object]:
    data = snapshot.as_json()
    data["gpus"] = {
        "driver": gpus.driver,
        "problem": gpus.problem,
        "devices": [d.as_json() for d in gpus.devices],
    }
    data["processes"] = [p.as_json() for p in processes]
    return data


def process_table(processes: tuple[ProcessRow, ...], width: int) -> Table:
    """Processes on a GPU, then the busiest by CPU: every column whole but the command, which
    takes the width left and ends in … where it is cut."""
    rows = [
        (
            str(row.pid),
            inert(row.user or "?"),
            fmt_percent(row.cpu_percent),
            fmt_bytes(row.rss),
            ", ".join(f"{i}:{fmt_bytes(b)}" for i, b in sorted(row.gpu_memory.items())),
        )
        for row in processes
    ]
    names = ("PID", "user", "CPU", "memory", "GPU memory")
    widths = [max([len(name), *(len(cells[i]) for cells in rows)]) for i, name in enumerate(names)]
    # Each column pads one cell a side; the command gets the rest (Rich would squeeze them all).
    command_width = max(12, width - sum(widths) - 2 * (len(names) + 1))
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for name, column_width in zip(names, widths, strict=True):
        justify = "left" if name == "user" else "right"
        table.add_column(name, justify=justify, no_wrap=True, width=column_width)
    table.add_column("command", no_wrap=True)
    for cells, row in zip(rows, processes, strict=True):
        command = fit_text(inert(row.short_command), command_width)
        table.add_row(*(Text(c) for c in cells), Text(command))
    return table


def host_tables(snapshot: HostSnapshot, gpus: GpuReading) -> list[Table | Text]:
    """The snapshot as the tables ``mltop host`` prints (no markup: every cell is a Text)."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="ellipsis")
    cores = "  ".join(f"{i}:{fmt_percent(p)}" for i, p in enumerate(snapshot.cpu_per_core))
    summary.add_row("CPU", Text(f"{fmt_percent(snapshot.cpu_percent)}   {cores}"))
    memory_used = fmt_used(snapshot.memory_used, snapshot.memory_total)
    share = snapshot.memory_used / snapshot.memory_total if snapshot.memory_total else None
    summary.add_row(
        "memory", Text(f"{memory_used} ({fmt_percent(None if share is None else share * 100)})")
    )
    summary.add_row(
        "swap",
        Text(fmt_used(snapshot.swap_used, snapshot.swap_total) if snapshot.swap_total else "none"),
    )
    read, write = fmt_rate(snapshot.disk_read_rate), fmt_rate(snapshot.disk_write_rate)
    summary.add_row("disk", Text(f"read {read}  write {write}"))
    recv, sent = fmt_rate(snapshot.net_recv_rate), fmt_rate(snapshot.net_sent_rate)
    summary.add_row("network", Text(f"recv {recv}  sent {sent}"))
    if gpus.problem is not None:
        summary.add_row("GPUs", Text(inert(gpus.problem)))
    out: list[Table | Text] = [Text(inert(host_title(snapshot)), style="bold"), summary]
    if gpus.devices:
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for name, justify in (
            ("GPU", "right"), ("name", "left"), ("util", "right"), ("memory", "right"),
            ("temp", "right"), ("power", "right"), ("processes (GPU memory)", "left"),
        ):  # fmt: skip
            table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
        for device in gpus.devices:
            processes = ", ".join(f"{p.pid} ({fmt_bytes(p.used_memory)})" for p in device.processes)
            table.add_row(
                str(device.index),
                Text(inert(device.name)),
                fmt_percent(device.utilization),
                gpu_memory(device),
                gpu_temperature(device),
                gpu_power(device),
                Text(processes or "none"),
            )
        out.append(table)
    return out


def cmd_host(argv: Sequence[str], out_file: TextIO | None = None) -> int:
    parser = Parser(prog="mltop host", description=_DESCRIPTION)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    view: HostView = read_once()
    if args.json:
        data = host_json(view.snapshot, view.gpus, view.processes)
        (out_file or sys.stdout).write(inert_json(data, indent=2, allow_nan=False) + "\n")
        return EXIT_OK
    out = stdout_console(out_file)
    for part in host_tables(view.snapshot, view.gpus):
        out.print(part)
    out.print(process_table(view.processes, out.width))
    return EXIT_OK

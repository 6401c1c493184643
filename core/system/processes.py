"""The processes worth a line on the Host screen, and the run each one belongs to.

A process belongs to a run when it holds one of the run's files open (``/proc/PID/fd``: its
``metrics.jsonl``, ``output.log``, tfevents or ``.wandb`` file: whatever the store knows the run
by), or when its working directory and command line are the ones the run's writer recorded.
Only RUNNING runs are candidates, so a finished run never claims a process that reuses its
folder.

Reading every process's file descriptors every second would cost more than the Host screen's
budget on a busy machine, so a process is checked when first seen and its link kept for
:data:`LINK_SECONDS` (the same pid started at the same time is the same process), and the
running runs' traces are asked of the store every :data:`TRACES_SECONDS`; processes of other
users, whose ``/proc`` entries cannot be read, are skipped quietly.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mltop.core.system.gpu import GpuReading

#: How long a process's link (or the absence of one) is trusted before it is checked again
#: (a new process is checked when first seen; this is for one that opens a run's file later).
LINK_SECONDS = 15.0
#: How often the running runs' traces are asked of the store.
TRACES_SECONDS = 10.0
#: Processes shown besides those on a GPU or linked to a run: the busiest by CPU.
TOP_BY_CPU = 8


@dataclass(frozen=True)
class RecordedCommand:
    """The working directory and command line (``sys.argv``) a run's writer recorded."""

    run_id: str
    host: str | None
    cwd: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class RunTraces:
    """What the running runs can be recognised by: their files, and their recorded commands."""

    files: dict[str, str] = field(default_factory=dict)
    commands: tuple[RecordedCommand, ...] = ()

    @classmethod
    def from_rows(
        cls,
        files: Iterable[tuple[str, str]],
        commands: Iterable[tuple[str, str | None, str, str]],
        hostname: str | None = None,
    ) -> RunTraces:
        """From :meth:`Store.running_run_traces`; commands recorded on another host are left out."""
        here = hostname or os.uname().nodename
        recorded: list[RecordedCommand] = []
        for run_id, host, cwd, cmdline in commands:
            if host and host != here:
                continue
            try:
                argv = json.loads(cmdline)
            except ValueError:
                continue
            if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
                recorded.append(RecordedCommand(run_id, host, cwd, tuple(argv)))
        return cls({path: run_id for run_id, path in files}, tuple(recorded))

    def __bool__(self) -> bool:
        return bool(self.files or self.commands)


@dataclass(frozen=True)
class RunLink:
    """Why a process belongs to a run: ``how`` reads ``holds metrics.jsonl open`` or
    ``same working directory and command line``."""

    run_id: str
    how: str


def open_paths(pid: int) -> list[str]:
    """The files ``pid`` holds open, by the path each descriptor points at (empty if unreadable)."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        try:
            return [f.path for f in psutil.Process(pid).open_files()]
        except (psutil.Error, OSError):
            return []
    paths = []
    for name in names:
        try:
            paths.append(os.readlink(f"{folder}/{name}"))
        except OSError:
            continue  # closed between the listing and the read
    return paths


def link_process(pid: int, traces: RunTraces) -> RunLink | None:
    """The running run ``pid`` belongs to, if any (see the module docstring)."""
    if not traces:
        return None
    if traces.files:
        for path in open_paths(pid):
            run_id = traces.files.get(path)
            if run_id is not None:
                return RunLink(run_id, f"holds {Path(path).name} open")
    if traces.commands:
        try:
            process = psutil.Process(pid)
            cwd, cmdline = process.cwd(), process.cmdline()
        except (psutil.Error, OSError):
            return None
        for command in traces.commands:
            argv = list(command.argv)
            # /proc has the interpreter and its flags before the script's own argv.
            if cwd == command.cwd and len(cmdline) >= len(argv) and cmdline[-len(argv) :] == argv:
                return RunLink(command.run_id, "same working directory and command line")
    return None


@dataclass(frozen=True)
class ProcessRow:
    """One process as the Host screen lists it."""

    pid: int
    name: str
    user: str | None
    command: str
    short_command: str
    cpu_percent: float | None
    rss: int | None
    gpu_memory: dict[int, int]
    link: RunLink | None

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "user": self.user,
            "command": self.command,
            "cpu_percent": self.cpu_percent,
            "rss_bytes": self.rss,
            "gpu_memory_bytes": {str(k): v for k, v in self.gpu_memory.items()},
            "run_id": self.link.run_id if self.link else None,
            "linked_by": self.link.how if self.link else None,
        }


#: Clock ticks per second, the unit of CPU times in ``/proc/PID/stat``.
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds() -> dict[tuple[int, float], float]:
    """Every process's CPU seconds (user and system), keyed by (pid, start time).

    Read from ``/proc/PID/stat`` directly, one read each: psutil's process iteration builds a
    Process object and several calls per process, about four times the cost, and this runs
    over every process of the machine every few seconds. Where there is no ``/proc``, psutil.
    """
    out: dict[tuple[int, float], float] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        for process in psutil.process_iter(["pid", "cpu_times", "create_time"]):
            info = process.info
            times = info["cpu_times"]
            if times is not None:
                out[(info["pid"], info["create_time"] or 0.0)] = times.user + times.system
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
            # The command name is in parentheses and may hold spaces: fields follow the last ")".
            fields = data[data.rfind(b")") + 2 :].split()
            out[(int(name), int(fields[19]) / _TICKS)] = (
                int(fields[11]) + int(fields[12])
            ) / _TICKS
        except (OSError, ValueError, IndexError):
            continue  # ended between the listing and the read
    return out


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        try:
            return psutil.Process(pid).uids().real
        except (psutil.Error, OSError):
            return None


@dataclass
class ProcessWatcher:
    """Samples the processes worth showing and links them to runs, keeping costs bounded.

    ``traces`` is asked for the running runs' traces at most every :data:`TRACES_SECONDS`.
    A process's name, user and command line are read when it is first shown and again every
    :data:`LINK_SECONDS` (a process may exec another program); its memory at every sample.
    """

    traces: Callable[[], RunTraces] | None = None
    top: int = TOP_BY_CPU
    _links: dict[tuple[int, float], tuple[float, RunLink | None]] = field(default_factory=dict)
    _traces: RunTraces = field(default_factory=RunTraces)
    _traces_at: float = float("-inf")
    _me: int = field(default_factory=os.getuid)
    _cpu: dict[tuple[int, float], float] = field(default_factory=dict)
    _cpu_at: float = float("-inf")
    _details: dict[tuple[int, float], tuple[float, psutil.Process, str, str | None, list[str]]] = (
        field(default_factory=dict)
    )

    def _current_traces(self, now: float) -> RunTraces:
        if self.traces is not None and now - self._traces_at >= TRACES_SECONDS:
            self._traces_at = now
            traces = self.traces()
            if traces != self._traces:
                self._links.clear()  # a run that started or ended changes every answer
            self._traces = traces
        return self._traces

    def _link(self, key: tuple[int, float], now: float) -> RunLink | None:
        cached = self._links.get(key)
        if cached is not None and now - cached[0] < LINK_SECONDS:
            return cached[1]
        link = None
        if self._me == 0 or _owner(key[0]) == self._me:
            link = link_process(key[0], self._traces)
        self._links[key] = (now, link)
        return link

    def sample(self, gpus: GpuReading | None = None) -> list[ProcessRow]:
        """Processes on a GPU, then those linked to a run, then the busiest by CPU."""
        now = time.monotonic()
        traces = self._current_traces(now)
        on_gpu = gpus.memory_by_pid() if gpus is not None else {}
        cpu, before, elapsed = _cpu_seconds(), self._cpu, now - self._cpu_at
        self._cpu, self._cpu_at = cpu, now
        # CPU percent of one core over the time since the last sample; a process first seen
        # now reads 0, as psutil's first cpu_percent does.
        rows: list[tuple[tuple[int, float], float, RunLink | None]] = []
        for key, seconds in cpu.items():
            old = before.get(key)
            percent = max(0.0, (seconds - old) / elapsed * 100) if old is not None else 0.0
            rows.append((key, percent, self._link(key, now) if traces else None))
        for stale in (self._links, self._details):
            for key in [k for k in stale if k not in cpu]:
                del stale[key]  # ended processes
        wanted = [r for r in rows if r[0][0] in on_gpu or r[2] is not None]
        wanted_pids = {r[0][0] for r in wanted}
        busiest = sorted(
            (r for r in rows if r[0][0] not in wanted_pids), key=lambda r: r[1], reverse=True
        )[: self.top]
        wanted.sort(key=lambda r: (-sum(on_gpu.get(r[0][0], {}).values()), r[0][0]))
        return [
            self._row(key, percent, link, on_gpu, now) for key, percent, link in wanted + busiest
        ]

    def _row(
        self,
        key: tuple[int, float],
        percent: float,
        link: RunLink | None,
        on_gpu: dict[int, dict[int, int]],
        now: float,
    ) -> ProcessRow:
        pid = key[0]
        memory = None
        details = self._details.get(key)
        try:
            if details is None or now - details[0] >= LINK_SECONDS:
                process = details[1] if details is not None else psutil.Process(pid)
                with process.oneshot():
                    name, user, argv = process.name(), None, []
                    try:
                        user = process.username()
                        argv = process.cmdline()
                    except (psutil.Error, OSError, KeyError):
                        pass  # not ours to read: what was read is shown
                details = self._details[key] = (now, process, name, user, argv)
            memory = details[1].memory_info()
        except (psutil.Error, OSError):
            pass  # ended meanwhile: what was read is shown
        _, _, name, user, argv = details if details is not None else (0, None, "", None, [])
        command = " ".join(argv) or name
        # The program's own name and arguments: a virtualenv's long interpreter path would
        # push the script name off a narrow screen.
        short = " ".join([Path(argv[0]).name, *argv[1:]]) if argv else command
        return ProcessRow(
            pid=pid,
            name=name,
            user=user,
            command=command,
            short_command=short,
            cpu_percent=percent,
            rss=memory.rss if memory is not None else None,
            gpu_memory=dict(on_gpu.get(pid, {})),
            link=link,
        )

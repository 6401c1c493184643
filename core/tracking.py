"""mltop's own run format and the few lines a training script needs to write it.

    from mltop.core.tracking import start_run

    with start_run("runs", name="sgd-lr0.1", params={"lr": 0.1}) as run:
        for epoch in range(20):
            run.log(step=epoch, loss=loss, val_acc=acc)

One folder per run, plain files that any tool (or ``tail -f``) can read:

* ``mltop-run.json``  metadata: name, experiment, status, start/end, host, git commit, error.
  Rewritten atomically (temp file + rename) on each status change, so a reader never sees half.
* ``params.json``     the run's parameters.
* ``metrics.jsonl``   one JSON object per ``log()`` call: ``{"step": 3, "ts": ..., "loss": 0.4}``,
  appended and flushed per line, so a live reader sees each step as it happens. Non-finite
  values are written as ``NaN``/``Infinity``, which DuckDB's ``read_json`` accepts.
* ``output.log``      the console output, when ``capture_output=True``.

* ``system.csv``      with ``system_metrics=True``: a thread appends, every 10 s
  (``system_interval``), the CPU and memory of the process tree, the machine's, and those of the
  GPUs it uses where NVML exists: a header ``step,ts,system/...`` written once, then a row per
  sample at the current step, an empty cell where a figure is missing
  (:mod:`mltop.core.tracking_system`). Runs written before kept these samples as lines of
  ``metrics.jsonl``; mltop reads both.

The status becomes FINISHED when the block ends, FAILED (with the exception message) when it
raises; a job killed with SIGKILL stays RUNNING, and mltop shows it as stale once its files stop
changing. Nothing here needs a store or a running mltop.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # imported when a run asks for system metrics: psutil is not needed otherwise
    from mltop.core.tracking_system import GpuReader, SystemSampler

FORMAT = "mltop-run/1"
META_FILE = "mltop-run.json"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.jsonl"
SYSTEM_FILE = "system.csv"
OUTPUT_FILE = "output.log"
#: Seconds between two system metric samples, as MLflow and W&B sample by default.
SYSTEM_INTERVAL = 10.0


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) >= 7 else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    try:  # numpy scalars and friends
        return value.item()
    except AttributeError:
        return str(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric values must be numbers, got {value!r}") from exc


class _Tee(io.TextIOBase):
    """Copies console output to the run's output.log while still printing it."""

    def __init__(self, stream: TextIO, log: TextIO):
        self._stream = stream
        self._log = log

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._log.write(text)
        self._log.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()
        self._log.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()


class Run:
    """A run being logged. Create it with :func:`start_run`."""

    def __init__(
        self,
        folder: Path,
        name: str,
        experiment: str,
        params: Mapping[str, Any],
        tags: Mapping[str, Any],
    ):
        self.folder = folder
        self.name = name
        self._step = 0
        self._lock = threading.Lock()  # log() and finish() share the metrics file
        self._sampler: SystemSampler | None = None
        self._system: TextIO | None = None
        self._system_columns: list[str] = []
        self._meta: dict[str, Any] = {
            "format": FORMAT,
            "id": uuid.uuid4().hex,
            "name": name,
            "experiment": experiment,
            "status": "RUNNING",
            "start_time": time.time(),
            "end_time": None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            # With the pid, what lets the Host screen tell this run's process among the others.
            "cwd": os.getcwd(),
            "argv": [str(a) for a in sys.argv],
            "git_commit": _git_commit(Path.cwd()),
            "error": None,
            "tags": {str(k): str(v) for k, v in tags.items()},
        }
        folder.mkdir(parents=True, exist_ok=False)
        (folder / PARAMS_FILE).write_text(
            json.dumps(_jsonable(dict(params)), indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        # The metrics file is open before meta.json says RUNNING: from then on the run is whole,
        # and start_run's handler can mark it KILLED or FAILED.
        self._metrics = open(folder / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._write_meta()

    @property
    def id(self) -> str:
        return str(self._meta["id"])

    def _write_meta(self) -> None:
        tmp = self.folder / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(self._meta, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.folder / META_FILE)

    def log(self, step: int | None = None, **metrics: float) -> None:
        """Append one line of metric values at ``step`` (default: one more than the last)."""
        if step is None:
            step = self._step
        self._step = int(step) + 1
        row: dict[str, Any] = {"step": int(step), "ts": round(time.time(), 6)}
        for key, value in metrics.items():
            row[key] = _number(value)
        self._write_row(row)

    def _write_row(self, row: dict[str, Any]) -> None:
        # allow_nan writes NaN/Infinity literally; DuckDB's read_json reads them back as floats.
        line = json.dumps(row, allow_nan=True) + "\n"
        with self._lock:
            if self._metrics.closed:
                return
            self._metrics.write(line)
            self._metrics.flush()

    def _log_system(self, values: dict[str, float]) -> None:
        """A system sample, as a row of system.csv at the step the run has reached (the last
        one logged); an empty cell for a figure the sample does not have."""
        cells = [str(max(self._step - 1, 0)), repr(round(time.time(), 6))]
        cells += [repr(float(values[k])) if k in values else "" for k in self._system_columns]
        system = self._system
        if system is None or system.closed:
            return
        system.write(",".join(cells) + "\n")
        system.flush()

    def start_system_metrics(self, interval: float, gpus: GpuReader | None) -> None:
        from mltop.core.tracking_system import SystemSampler

        sampler = SystemSampler(self._log_system, interval, gpus)
        self._system_columns = sampler.columns()
        self._system = open(self.folder / SYSTEM_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._system.write(",".join(["step", "ts", *self._system_columns]) + "\n")
        self._system.flush()
        self._sampler = sampler
        sampler.start()

    def set_tag(self, key: str, value: Any) -> None:
        self._meta["tags"][str(key)] = str(value)
        self._write_meta()

    def finish(self, status: str = "FINISHED", error: str | None = None) -> None:
        if self._meta["end_time"] is not None:
            return
        if self._sampler is not None:
            self._sampler.stop()
        if self._system is not None:
            self._system.close()
        with self._lock:
            self._metrics.close()
        self._meta.update(status=status, end_time=time.time(), error=error)
        self._write_meta()


def _unique_folder(root: Path, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in name).strip(".") or "run"
    folder = root / safe
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{safe}-{n}"
    return folder


@contextmanager
def start_run(
    root: str | os.PathLike[str],
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    experiment: str | None = None,
    tags: Mapping[str, Any] | None = None,
    capture_output: bool = False,
    system_metrics: bool = False,
    system_interval: float = SYSTEM_INTERVAL,
) -> Iterator[Run]:
    """Log a run into a new folder under ``root`` for the duration of the ``with`` block.

    ``experiment`` defaults to the name of ``root``. With ``capture_output`` the console output of
    the block is also written to ``output.log`` (mltop shows it in the run's logs). With
    ``system_metrics`` the process tree's CPU and memory (and its GPUs' where NVML exists) are
    sampled every ``system_interval`` seconds into the run's metrics.
    """
    if system_metrics and not system_interval > 0:
        raise ValueError(f"system_interval must be > 0 seconds, got {system_interval!r}")
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    run_name = name or time.strftime("run-%Y%m%d-%H%M%S")
    run = Run(
        _unique_folder(root_path, run_name),
        run_name,
        experiment or root_path.resolve().name,
        params or {},
        tags or {},
    )
    log_file: TextIO | None = None
    saved = (sys.stdout, sys.stderr)
    # Everything after meta.json says RUNNING is inside the handler: an interrupt while the
    # sampler starts (NVML can take seconds to load) must leave the run KILLED, not RUNNING
    # for ever.
    try:
        if system_metrics:
            from mltop.core.tracking_system import NvmlGpus

            run.start_system_metrics(system_interval, NvmlGpus.load())
        if capture_output:
            log_file = open(run.folder / OUTPUT_FILE, "a", encoding="utf-8")  # noqa: SIM115
            sys.stdout = _Tee(saved[0], log_file)  # type: ignore[assignment]
            sys.stderr = _Tee(saved[1], log_file)  # type: ignore[assignment]
        yield run
    except BaseException as exc:
        if log_file is not None:
            import traceback

            traceback.print_exc()
        kind = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        run.finish(kind, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        run.finish("FINISHED")
    finally:
        if log_file is not None:
            sys.stdout, sys.stderr = saved
            log_file.close()


__all__ = ["META_FILE", "METRICS_FILE", "PARAMS_FILE", "SYSTEM_FILE", "Run", "start_run"]

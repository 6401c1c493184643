"""Importer for W&B run folders (``wandb/offline-run-<date>_<time>-<id>/``).

wandb 0.31 keeps a run's config, history, summary and exit code only in ``run-<id>.wandb`` (see
:mod:`mltop.core.importers.wandb_records`); ``files/output.log`` holds the console. While the run
is live the .wandb file grows in 32 KiB blocks (a small run shows nothing until it ends), so the
run appears as soon as its folder exists (name and start from the folder name) and its console
log is recorded from the start; history follows block by block.

Each scan reads only the bytes after the last whole record seen. What those records change is
merged with what the store already holds for the run (params, tags, the current step), so a
growing file is never re-parsed from the start; a replaced or truncated file is.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from mltop.core.common.regular_files import is_regular, open_regular
from mltop.core.entities import (
    FileState,
    ImportReport,
    Run,
    RunRecord,
    SourceRef,
    Status,
    stable_id,
)
from mltop.core.importers import wandb_records as wr
from mltop.core.importers.base import Change, Detection, classify, file_state
from mltop.core.importers.params import flatten_params
from mltop.core.runs.system_keys import wandb_stats_key
from mltop.core.store import Store

KIND = "wandb-offline"
RUN_DIR = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-([A-Za-z0-9_-]+)$")
OUTPUT_LOG = Path("files") / "output.log"
# The wandb/ folder's own logs are symlinks into the latest run: never training logs.
WANDB_DIR_LOGS = frozenset({"debug.log", "debug-internal.log", "debug-cli.log"})
# Summary keys that are wandb's bookkeeping, not metrics.
_INTERNAL_PREFIX = "_"
_QUOTED_SPECIAL = {b'"NaN"': math.nan, b'"Infinity"': math.inf, b'"-Infinity"': -math.inf}


def experiment_id(project: str) -> str:
    """Runs of one W&B project group together, whichever wandb/ folder they sit in."""
    return stable_id(KIND, "project", project)


def run_id_for(folder: Path | str) -> str:
    """``folder`` as :meth:`Store.id_path` gives it."""
    return stable_id(KIND, str(folder))


def wandb_file(folder: Path, filenames: Sequence[str] | None = None) -> Path | None:
    names = filenames if filenames is not None else _listdir(folder)
    found = sorted(n for n in names if n.startswith("run-") and n.endswith(".wandb"))
    return folder / found[0] if found else None


def _listdir(folder: Path) -> list[str]:
    try:
        return [p.name for p in folder.iterdir()]
    except OSError:
        return []


def number(raw: bytes) -> float | None:
    """A history/summary value_json as a float; None for text, bools, media and tables.

    Python's json writes NaN and infinities as bare ``NaN``/``Infinity``, which ``float``
    accepts; quoted forms are accepted too so a NaN never turns into a missing point.
    """
    if not raw:
        return None
    if raw[0] in b'{["tfn':  # object, array, string, true/false/null
        return _QUOTED_SPECIAL.get(raw)
    try:
        return float(raw)
    except ValueError:
        return None


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", errors="replace")


def _folder_start(folder: Path) -> float | None:
    """The start time in a run folder's name (local time, as wandb names it)."""
    match = RUN_DIR.match(folder.name)
    if not match:
        return None
    try:
        return time.mktime(datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").timetuple())
    except (ValueError, OverflowError):
        return None


def _folder_run_id(folder: Path) -> str:
    match = RUN_DIR.match(folder.name)
    return match.group(2) if match else folder.name


@dataclass
class _Reading:
    """What the records of one read say about a run, on top of what was known before it."""

    info: wr.RunInfo | None = None
    env: wr.Environment | None = None
    exit: wr.Exit | None = None
    config: dict[str, object] = field(default_factory=dict)
    config_removed: list[str] = field(default_factory=list)
    summary: dict[str, tuple[float, int]] = field(default_factory=dict)
    pending_summary: list[tuple[str, float, int]] = field(default_factory=list)
    history_keys: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    times: list[float | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    step: int = -1
    last_time: float | None = None
    bad_records: int = 0
    first_error: str = ""
    bad_stats: int = 0
    first_bad_stat: str = ""

    def saw_time(self, when: float | None) -> None:
        if when is not None and (self.last_time is None or when > self.last_time):
            self.last_time = when

    def feed(self, chunks: wr.Chunks, start: int) -> int:
        """Read these records; return the offset the next read should start from.

        wandb-core writes a log call's summary record just before its history record, so a
        read that ends between the two would take a history key for a summary-only one. The
        summary updates after the last history record are therefore left for the next read
        (the offset returned points before them), unless the run has exited.
        """
        safe = start
        for payload, end in zip(chunks.payloads, chunks.ends, strict=True):
            try:
                kind = self._record(payload)
            except wr.ProtoError as exc:
                self.bad_records += 1
                self.first_error = self.first_error or str(exc)
                continue
            if kind == wr.HISTORY:
                self._settle_summary()
                safe = end
        if self.exit is not None or not self.pending_summary:
            self._settle_summary()
            safe = chunks.end
        return safe

    def _settle_summary(self) -> None:
        for key, value, step in self.pending_summary:
            self.summary[key] = (value, step)
        self.pending_summary.clear()

    def _record(self, payload: bytes) -> int:
        kind, body = wr.record_type(payload)
        if kind == wr.HISTORY:
            self._history(wr.decode_history(body))
        elif kind == wr.SUMMARY:
            updates = wr.decode_updates(body)
            for key, raw in updates.update:
                if key.startswith(_INTERNAL_PREFIX):
                    continue
                value = number(raw)
                if value is not None:
                    self.pending_summary.append((key, value, max(self.step, 0)))
        elif kind == wr.RUN:
            self.info = wr.decode_run(body)
            self._config(self.info.config, [])
        elif kind == wr.CONFIG:
            updates = wr.decode_updates(body)
            self._config(updates.update, updates.remove)
        elif kind == wr.STATS:
            self._stats(wr.decode_stats(body))
        elif kind == wr.EXIT:
            self.exit = wr.decode_exit(body)
        elif kind == wr.ENVIRONMENT:
            env = wr.decode_environment(body)
            if self.env is None or (env.host or env.os or env.program):
                self.env = env if self.env is None else _merge_env(self.env, env)
        return kind

    def _config(self, update: list[tuple[str, bytes]], remove: list[str]) -> None:
        for key in remove:
            self.config_removed.append(key)
            for name in [k for k in self.config if k == key or k.startswith(key + ".")]:
                del self.config[name]
        for key, raw in update:
            if key == "_wandb" or key.startswith("_wandb."):
                continue
            for name in [k for k in self.config if k == key or k.startswith(key + ".")]:
                del self.config[name]
            flatten_params(_json(raw), key, self.config)

    def _history(self, history: wr.History) -> None:
        step = history.step
        when: float | None = None
        metrics: list[tuple[str, float]] = []
        for key, raw in history.items:
            if key.startswith(_INTERNAL_PREFIX):
                if key == "_timestamp":
                    when = number(raw)
                elif key == "_step" and step is None:
                    value = number(raw)
                    step = int(value) if value is not None and math.isfinite(value) else None
                continue
            value = number(raw)
            if value is not None:
                metrics.append((key, value))
        if step is None:
            step = self.step + 1
        self.step = max(self.step, step)
        self.saw_time(when)
        for key, value in metrics:
            self.history_keys.add(key)
            self.keys.append(key)
            self.steps.append(step)
            self.times.append(when)
            self.values.append(value)

    def _stats(self, stats: wr.Stats) -> None:
        """System metrics: points under ``system/`` at the step the run had reached when
        wandb sampled them (stats records carry a time, no step), so they chart on either axis.
        """
        step = max(self.step, 0)
        for key, raw in stats.items:
            value = number(raw)
            if value is None:
                self.bad_stats += 1
                self.first_bad_stat = self.first_bad_stat or key
                continue
            self.keys.append(wandb_stats_key(key))
            self.steps.append(step)
            self.times.append(stats.timestamp)
            self.values.append(value)


def _merge_env(old: wr.Environment, new: wr.Environment) -> wr.Environment:
    for name in ("host", "os", "python", "program", "root", "git_remote", "git_commit"):
        if not getattr(new, name):
            setattr(new, name, getattr(old, name))
    new.started_at = new.started_at or old.started_at
    return new


@dataclass
class _Prior:
    """What the store holds for a run before an incremental read."""

    run: Run
    params: dict[str, str]
    tags: dict[str, str]
    counts: dict[str, int]
    step: int
    last_time: float | None


class WandbOfflineImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if wandb_file(dirpath, filenames) is not None:
            return Detection([SourceRef(KIND, dirpath)], claimed=set(filenames), prune=True)
        if any(RUN_DIR.match(d) for d in dirnames):
            claimed = {f for f in filenames if f in WANDB_DIR_LOGS}
            if claimed:
                return Detection([], claimed=claimed)
        return None

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        for ref in refs:
            try:
                self._import_run(store, ref, known, report)
            except OSError as exc:
                report.problem(ref.location, f"cannot read W&B run ({exc.strerror or exc})")
            except Exception as exc:  # one odd run must not stop the others
                report.problem(ref.location, f"W&B run not imported ({type(exc).__name__}: {exc})")

    # -- one run ---------------------------------------------------------------------------------

    def _import_run(
        self, store: Store, ref: SourceRef, known: dict[str, FileState], report: ImportReport
    ) -> None:
        folder = ref.location
        source = str(folder)
        run_id = run_id_for(store.id_path(folder))
        path = wandb_file(folder)
        if path is None:
            return
        log = folder / OUTPUT_LOG
        change, st = classify(path, known.get(str(path)))
        log_change, log_st = classify(log, known.get(str(log)))
        if change is Change.DELETED or st is None:
            return
        if change is Change.UNCHANGED and log_change is Change.UNCHANGED:
            return
        updated = max(st.st_mtime, log_st.st_mtime if log_st is not None else 0.0)
        log_states = [file_state(log, log_st, log_st.st_size, run_id, source)] if log_st else []

        existing = store.run(run_id)
        prior: _Prior | None = None
        if existing is not None and change in (Change.UNCHANGED, Change.APPENDED):
            prior = self._prior(store, existing)
        if change is Change.UNCHANGED and prior is not None:
            # Only the console grew (the usual state of a live run): refresh its clock.
            with store.transaction():
                store.set_run_status(run_id, prior.run.status, prior.run.end_time, updated)
                store.put_files(source, log_states)
            return

        start = known[str(path)].offset if prior is not None and change is Change.APPENDED else 0
        with open_regular(path) as fh:
            fh.seek(start)
            data = fh.read()
        if start == 0:
            reason = wr.header_problem(data)
            if reason is not None:
                report.problem(path, reason)
                return
        chunks = wr.read_chunks(data, start, base=start)
        if chunks.problems:
            more = f" (+{len(chunks.problems) - 1} more)" if len(chunks.problems) > 1 else ""
            report.problem(path, f"{chunks.problems[0]}{more}")
        reading = _Reading()
        if prior is not None:
            reading.step = prior.step
            reading.last_time = prior.last_time
        resume = reading.feed(chunks, start)
        if reading.bad_records:
            report.problem(
                path,
                f"{reading.bad_records} undecodable record(s) skipped ({reading.first_error})",
            )

        if reading.bad_stats:
            report.problem(
                path,
                f"{reading.bad_stats} system stats value(s) that are not numbers skipped "
                f"(first: {reading.first_bad_stat})",
            )

        record, exp_name, params, tags = self._run_record(folder, run_id, reading, prior, updated)
        points = self._points(run_id, reading)
        summary_points, summary_keys = self._summary_points(run_id, reading, prior)
        state = file_state(path, st, resume, run_id, source)
        with store.transaction():
            store.put_experiments([(record.experiment_id, KIND, "", exp_name, exp_name)])
            store.put_runs(source, [record], params, tags)
            if prior is None:
                store.delete_points([run_id])
            elif summary_keys:
                store.delete_points([run_id], summary_keys)
            added = store.add_points(points) + store.add_points(summary_points)
            store.update_summaries([run_id], [points, summary_points])
            store.put_files(source, [state, *log_states])
            store.put_logs(run_id, [str(log)] if is_regular(log) else [])
        report.add(KIND, runs=0 if existing is not None else 1, points=added)

    def _prior(self, store: Store, run: Run) -> _Prior:
        run_id = run.id
        summaries = store.summaries([run_id]).get(run_id, {})
        steps = [s.last_step for s in summaries.values() if s.last_step is not None]
        times = [s.last_time for s in summaries.values() if s.last_time is not None]
        return _Prior(
            run=run,
            params=store.params(run_id),
            tags=store.tags(run_id),
            counts={key: s.count for key, s in summaries.items()},
            step=max(steps) if steps else -1,
            last_time=max(times) if times else None,
        )

    def _run_record(
        self,
        folder: Path,
        run_id: str,
        reading: _Reading,
        prior: _Prior | None,
        updated: float,
    ) -> tuple[RunRecord, str, list[tuple[str, str, object]], list[tuple[str, str, object]]]:
        info, env = reading.info, reading.env
        old = prior.run if prior is not None else None

        params: dict[str, object] = dict(prior.params) if prior is not None else {}
        for key in reading.config_removed:
            for name in [k for k in params if k == key or k.startswith(key + ".")]:
                del params[name]
        if info is not None:
            # The run record carries the whole initial config: it replaces what was assumed.
            params = {}
        params.update(reading.config)

        tags: dict[str, object] = dict(prior.tags) if prior is not None else {}
        if info is not None:
            tags = {label: "" for label in info.tags}
            for key, value in (
                ("wandb.group", info.group),
                ("wandb.job_type", info.job_type),
                ("wandb.notes", info.notes),
                ("wandb.entity", info.entity),
                ("wandb.sweep_id", info.sweep_id),
            ):
                if value:
                    tags[key] = value
        if env is not None and env.program:
            tags["wandb.program"] = env.program

        native = (info.run_id if info else "") or (old.native_id if old else None)
        native = native or _folder_run_id(folder)
        name = (info.display_name if info else "") or (old.name if old else "") or native
        if info is not None:
            project = info.project
        elif old is not None and old.experiment:
            project = old.experiment
        else:
            project = ""
        project = project or "wandb"
        start = (info.start_time if info else None) or (env.started_at if env else None)
        start = start or (old.start_time if old else None) or _folder_start(folder)
        host = (info.host if info else "") or (env.host if env else "") or (old.host if old else "")
        commit = (info.git_commit if info else "") or (env.git_commit if env else "")
        commit = commit or (old.git_commit if old else "") or ""

        status, end, error = Status.RUNNING, None, None
        if reading.exit is not None:
            code = reading.exit.exit_code
            status = Status.FINISHED if code == 0 else Status.FAILED
            error = None if code == 0 else f"exit code {code}"
            end = reading.last_time
            if start is not None and reading.exit.runtime:
                end = max(end or 0.0, start + reading.exit.runtime)
            end = end or updated
        elif old is not None and old.status != Status.RUNNING:
            status, end, error = Status(old.status), old.end_time, old.error

        record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=str(folder),
            name=name,
            status=status,
            experiment_id=experiment_id(project),
            native_id=native,
            start_time=start,
            end_time=end,
            git_commit=commit or None,
            host=host or None,
            error=error,
            updated=updated,
            source=str(folder),
        )
        return (
            record,
            project,
            [(run_id, k, v) for k, v in params.items()],
            [(run_id, k, v) for k, v in tags.items()],
        )

    def _points(self, run_id: str, reading: _Reading) -> pa.Table:
        n = len(reading.keys)
        return pa.table(
            {
                "run_id": pa.array([run_id] * n, pa.string()),
                "key": pa.array(reading.keys, pa.string()),
                "step": pa.array(reading.steps, pa.int64()),
                "ts": pa.array(reading.times, pa.float64()),
                "value": pa.array(reading.values, pa.float64()),
            }
        )

    def _summary_points(
        self, run_id: str, reading: _Reading, prior: _Prior | None
    ) -> tuple[pa.Table, list[str]]:
        """Summary values that no history carries (``run.summary["test_acc"] = ...``).

        Each becomes one point at the step current when it was set. A key with history is left
        to its history (its summary is the last logged value, or an aggregate like max).
        """
        counts = prior.counts if prior is not None else {}
        keys = [
            k for k in reading.summary if k not in reading.history_keys and counts.get(k, 0) <= 1
        ]
        table = pa.table(
            {
                "run_id": pa.array([run_id] * len(keys), pa.string()),
                "key": pa.array(keys, pa.string()),
                "step": pa.array([reading.summary[k][1] for k in keys], pa.int64()),
                "ts": pa.array([reading.last_time] * len(keys), pa.float64()),
                "value": pa.array([reading.summary[k][0] for k in keys], pa.float64()),
            }
        )
        return table, keys


IMPORTER = WandbOfflineImporter()

"""Importer for TensorBoard logdirs: every folder holding ``*tfevents*`` files is one run.

Runs are named as TensorBoard names them: by their path relative to the logdir, taken to be the
nearest ancestor folder without event files (``runs/`` for ``runs/mlp-lr0.1``). A folder nested
in another run (``add_hparams`` writes ``<run>/<time>/``) stays a run of its own, as in
TensorBoard, with the outer run as its parent.

What TensorBoard shows is what mltop imports: scalars in both encodings, from all event files of
a run in file-name order, and when a writer restarted with ``purge_step`` (a SessionLog START at
step S) every earlier point at step S or later is dropped, as TensorBoard's loader does. The
hparams plugin's session becomes the run's params and its end status the run's status. An event
file records no start of the run: it starts at the earliest trusted wall time of its records (a
writer whose clock was not set, or an old file far before the rest, is not trusted: see
:mod:`mltop.core.importers.run_start`).

Event files only grow, so a re-scan reads the bytes after the last complete record of each
file, and a new event file is read on its own. Anything that can change what was read before (a
restart, a rewritten or deleted file, new hparams) re-reads the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from mltop.core.common.regular_files import open_regular
from mltop.core.entities import (
    FileState,
    ImportReport,
    Run,
    RunRecord,
    SourceRef,
    Status,
    stable_id,
)
from mltop.core.importers.base import Change, Detection, classify, file_state, states_by_run
from mltop.core.importers.run_start import trusted_start
from mltop.core.importers.tfevents import EventColumns, decode
from mltop.core.store import POINTS_SCHEMA, RunQuery, Store

KIND = "tensorboard"
EVENT_MARK = "tfevents"  # TensorBoard's own test for an event file name
BATCH_RUNS = 200
BATCH_POINTS = 2_000_000
MAX_LOGDIR_DEPTH = 16


def is_event_file(name: str) -> bool:
    return EVENT_MARK in name


def experiment_id(logdir: Path | str) -> str:
    """``logdir`` as :meth:`Store.id_path` gives it."""
    return stable_id("tensorboard-experiment", str(logdir))


@dataclass
class _FileRead:
    path: Path
    columns: EventColumns
    offset: int  # where the decoded bytes started in the file


@dataclass
class _RunUpdate:
    """One run's share of a write batch."""

    run_id: str
    record: RunRecord | None = None  # a full (re)write of the run row
    params: dict[str, object] = field(default_factory=dict)
    tags: list[tuple[str, str, object]] = field(default_factory=list)
    experiment: tuple[str, str] | None = None
    points: pa.Table | None = None
    replace_points: bool = False
    status_update: tuple[str, float | None, float | None] | None = None
    delete_run: bool = False
    states: list[FileState] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    is_new: bool = False


@dataclass
class _Plan:
    """What changed in one run folder since the last scan, before reading anything."""

    ref: SourceRef
    run_id: str
    changes: list[tuple[Path, Change, os.stat_result | None]]
    deleted: list[str]
    is_new: bool
    incremental: bool


def _plan(
    store: Store, ref: SourceRef, known: dict[str, FileState], by_run: dict[str, list[FileState]]
) -> _Plan | None:
    """Classify a run's event files (one stat each); None when nothing changed."""
    folder = ref.location
    run_id = stable_id(KIND, store.id_path(folder))
    paths = [folder / n for n in _event_files(folder)]
    current = {str(p) for p in paths}
    previous = by_run.get(run_id, [])
    deleted = [s.path for s in previous if s.path not in current]
    changes: list[tuple[Path, Change, os.stat_result | None]] = []
    for path in paths:
        change, st = classify(path, known.get(str(path)))
        if st is not None:
            changes.append((path, change, st))
    if not deleted and all(c is Change.UNCHANGED for _, c, _ in changes):
        return None
    incremental = (
        bool(previous)
        and not deleted
        and all(c in (Change.UNCHANGED, Change.APPENDED, Change.NEW) for _, c, _ in changes)
        and _new_files_sort_last(changes)
    )
    return _Plan(ref, run_id, changes, deleted, not previous, incremental)


def _existing_runs(store: Store, run_ids: list[str]) -> dict[str, Run]:
    out: dict[str, Run] = {}
    for start in range(0, len(run_ids), 1000):
        chunk = run_ids[start : start + 1000]
        query = RunQuery(f"r.id IN ({', '.join('?' * len(chunk))})", tuple(chunk))
        out.update((run.id, run) for run in store.runs(query))
    return out


class TensorBoardImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        events = {name for name in filenames if is_event_file(name)}
        if not events:
            return None
        # Not pruned: nested folders (add_hparams sub-runs, train/ and validation/) are runs too.
        return Detection([SourceRef(KIND, dirpath)], claimed=events)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        by_run = states_by_run(known)
        has_events: dict[Path, bool] = {}
        plans: list[_Plan] = []
        for ref in {ref.key: ref for ref in refs}.values():
            try:
                plan = _plan(store, ref, known, by_run)
            except Exception as exc:  # one broken run must not stop the others
                report.problem(ref.location, f"cannot import: {type(exc).__name__}: {exc}")
                continue
            if plan is not None:
                plans.append(plan)
        # Runs that may only need new points: one query for all of them, not one per run.
        existing = _existing_runs(store, [p.run_id for p in plans if p.incremental])
        batch: list[_RunUpdate] = []
        pending_points = 0
        for plan in plans:
            try:
                update = self._read_run(
                    store, plan, existing.get(plan.run_id), known, has_events, report
                )
            except Exception as exc:  # one broken run must not stop the others
                report.problem(plan.ref.location, f"cannot import: {type(exc).__name__}: {exc}")
                continue
            batch.append(update)
            pending_points += update.points.num_rows if update.points is not None else 0
            if len(batch) >= BATCH_RUNS or pending_points >= BATCH_POINTS:
                self._write(store, batch, report)
                batch, pending_points = [], 0
        if batch:
            self._write(store, batch, report)

    # -- reading ---------------------------------------------------------------------------------

    def _read_run(
        self,
        store: Store,
        plan: _Plan,
        run: Run | None,
        known: dict[str, FileState],
        has_events: dict[Path, bool],
        report: ImportReport,
    ) -> _RunUpdate:
        update = _RunUpdate(plan.run_id, deleted_files=plan.deleted, is_new=plan.is_new)
        source = str(plan.ref.location)
        # A run with no trusted start yet (every stamp so far before 2000) is read whole until
        # one comes: new records alone cannot say where the run starts.
        if plan.incremental and run is not None and run.start_time is not None:
            reads = read_event_files(plan.changes, known, report, only_changed=True)
            if not any(_rewrites_history(r.columns) for r in reads):
                return self._append(run, plan.run_id, source, reads, plan.changes, update)
        reads = read_event_files(plan.changes, known, report, only_changed=False)
        return self._full(store, plan.ref, plan.run_id, reads, plan.changes, has_events, update)

    def _append(
        self,
        run: Run,
        run_id: str,
        source: str,
        reads: list[_FileRead],
        changes: list[tuple[Path, Change, os.stat_result | None]],
        update: _RunUpdate,
    ) -> _RunUpdate:
        """New records only: add their points, move the run's last-seen time."""
        update.points = _points_table(run_id, [r.columns for r in reads], purge=False)
        update.states = _states(changes, reads, run_id, source, include_unchanged=False)
        walls = [r.columns.last_wall for r in reads if r.columns.last_wall is not None]
        updated = max([*walls, *([run.updated] if run.updated is not None else [])], default=None)
        update.status_update = (run.status, run.end_time, updated)
        return update

    def _full(
        self,
        store: Store,
        ref: SourceRef,
        run_id: str,
        reads: list[_FileRead],
        changes: list[tuple[Path, Change, os.stat_result | None]],
        has_events: dict[Path, bool],
        update: _RunUpdate,
    ) -> _RunUpdate:
        folder = ref.location
        source = str(folder)
        update.states = _states(changes, reads, run_id, source, include_unchanged=True)
        update.replace_points = True
        if not any(r.columns.record_count for r in reads):
            # No readable event in any file (empty, or all garbage): no run, or no longer one.
            update.delete_run = not update.is_new
            update.is_new = False
            return update
        columns = [r.columns for r in reads]
        update.points = _points_table(run_id, columns, purge=True)
        logdir = _logdir_of(folder, has_events)
        parent = folder.parent
        parent_id = (
            stable_id(KIND, store.id_path(parent)) if _holds_events(parent, has_events) else None
        )
        firsts = [c.first_wall for c in columns if c.first_wall is not None]
        start = trusted_start(np.concatenate([*(c.walls for c in columns), np.array(firsts)]))
        update.tags = start.tags(run_id)
        lasts = [c.last_wall for c in columns if c.last_wall is not None]
        status_word = next((c.session_status for c in reversed(columns) if c.session_status), None)
        hparams = next((c.hparams for c in reversed(columns) if c.hparams is not None), None)
        update.params = {k: _param_value(v) for k, v in (hparams or {}).items()}
        name = _relative_name(folder, logdir)
        exp_id = experiment_id(store.id_path(logdir))
        update.experiment = (exp_id, logdir.name or str(logdir))
        update.record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=source,
            name=name,
            status=Status.parse(status_word, Status.FINISHED),
            experiment_id=exp_id,
            start_time=start.start,
            end_time=None,
            parent_id=parent_id,
            updated=max(lasts) if lasts else None,
            source=source,
        )
        return update

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, store: Store, batch: list[_RunUpdate], report: ImportReport) -> None:
        """Write whole runs in one transaction: all of them or none."""
        records = [u.record for u in batch if u.record is not None]
        params = [(u.run_id, k, v) for u in batch if u.record for k, v in u.params.items()]
        tags = [t for u in batch if u.record for t in u.tags]
        experiments = {u.experiment[0]: u.experiment[1] for u in batch if u.experiment}
        tables = [u.points for u in batch if u.points is not None and u.points.num_rows]
        replaced = [u.run_id for u in batch if u.replace_points]
        gone = [u.run_id for u in batch if u.delete_run]
        changed = [u.run_id for u in batch if not u.delete_run]
        with store.transaction():
            store.put_experiments([(e, KIND, "", None, name) for e, name in experiments.items()])
            store.put_runs(None, records, params, tags)
            for u in batch:
                if u.status_update is not None:
                    store.set_run_status(u.run_id, *u.status_update)
            if replaced:
                store.delete_points(replaced)
            if gone:
                store.delete_runs(gone)
            added = store.add_points(pa.concat_tables(tables)) if tables else 0
            store.update_summaries(changed, tables)
            store.delete_files([p for u in batch for p in u.deleted_files])
            store.put_files(None, [s for u in batch for s in u.states])
        report.add(KIND, runs=sum(1 for u in batch if u.is_new), points=added)


# -- helpers -------------------------------------------------------------------------------------


def read_event_files(
    changes: list[tuple[Path, Change, os.stat_result | None]],
    known: dict[str, FileState],
    report: ImportReport,
    *,
    only_changed: bool,
) -> list[_FileRead]:
    """Decode event files (only their new bytes when ``only_changed``); damage is reported."""
    reads: list[_FileRead] = []
    plugins: dict[str, str] = {}
    for path, change, _ in changes:
        if only_changed and change is Change.UNCHANGED:
            continue
        old = known.get(str(path))
        offset = old.offset if only_changed and change is Change.APPENDED and old else 0
        try:
            with open_regular(path) as fh:
                fh.seek(offset)
                buf = fh.read()
        except OSError as exc:
            report.problem(path, f"cannot read ({exc.strerror or exc})")
            continue
        columns = decode(buf, 0, plugins)
        _report_damage(path, columns, offset, report)
        reads.append(_FileRead(path, columns, offset))
    return reads


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _event_files(folder: Path) -> list[str]:
    """Names of the event files in ``folder``, in the order TensorBoard reads them."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if is_event_file(e.name) and e.is_file())
    except OSError:
        return []


def _holds_events(folder: Path, cache: dict[Path, bool]) -> bool:
    found = cache.get(folder)
    if found is None:
        found = cache[folder] = any(is_event_file(n) for n in _listdir(folder))
    return found


def _logdir_of(folder: Path, cache: dict[Path, bool]) -> Path:
    """The nearest ancestor without event files: what ``tensorboard --logdir`` was given."""
    current = folder
    for _ in range(MAX_LOGDIR_DEPTH):
        parent = current.parent
        if parent == current or not _holds_events(parent, cache):
            return parent
        current = parent
    return current.parent


def _relative_name(folder: Path, logdir: Path) -> str:
    try:
        return str(folder.relative_to(logdir)) or folder.name
    except ValueError:
        return folder.name


def _new_files_sort_last(changes: list[tuple[Path, Change, os.stat_result | None]]) -> bool:
    """A new file read on its own is only right when it comes after every file already read."""
    last_known = max((p.name for p, c, _ in changes if c is not Change.NEW), default="")
    return all(p.name > last_known for p, c, _ in changes if c is Change.NEW)


def _rewrites_history(columns: EventColumns) -> bool:
    """New records that change what earlier ones mean: a restart, or the run's hparams."""
    return bool(
        columns.restarts or columns.hparams is not None or columns.session_status is not None
    )


def _report_damage(path: Path, columns: EventColumns, offset: int, report: ImportReport) -> None:
    parts = []
    if columns.corrupt_at is not None:
        where = offset + columns.corrupt_at
        parts.append(f"corrupt record header at byte {where}, the rest of the file is unreadable")
    if columns.unreadable:
        parts.append(f"{columns.unreadable} malformed record(s) skipped")
    if columns.bad_checksums:
        parts.append(f"{columns.bad_checksums} record(s) with a bad checksum skipped")
    if parts:
        kept = columns.record_count - columns.unreadable - columns.bad_checksums
        report.problem(path, "; ".join(parts) + f" ({max(kept, 0)} good record(s) kept)")


def _states(
    changes: list[tuple[Path, Change, os.stat_result | None]],
    reads: list[_FileRead],
    run_id: str,
    source: str,
    *,
    include_unchanged: bool,
) -> list[FileState]:
    ends = {r.path: r.offset + r.columns.end for r in reads}
    out = []
    for path, change, st in changes:
        if st is None or path not in ends:
            continue
        if change is Change.UNCHANGED and not include_unchanged:
            continue
        out.append(file_state(path, st, ends[path], run_id, source))
    return out


def _points_table(run_id: str, columns: list[EventColumns], *, purge: bool) -> pa.Table:
    """One Arrow table of all points, with TensorBoard's restart purge applied across files."""
    names: list[str] = []
    index: dict[str, int] = {}
    parts_tag, parts_step, parts_wall, parts_value, parts_rec = [], [], [], [], []
    restarts: list[tuple[int, int]] = []
    base = 0
    for col in columns:
        remap = np.empty(len(col.tag_names), dtype=np.int32)
        for i, name in enumerate(col.tag_names):
            if name not in index:
                index[name] = len(names)
                names.append(name)
            remap[i] = index[name]
        parts_tag.append(remap[col.tag_ids] if len(col.tag_ids) else col.tag_ids)
        parts_step.append(col.steps)
        parts_wall.append(col.walls)
        parts_value.append(col.values)
        parts_rec.append(col.records + base)
        restarts.extend((base + r, s) for r, s in col.restarts)
        base += col.record_count
    if not parts_tag:
        return POINTS_SCHEMA.empty_table()
    tags = np.concatenate(parts_tag).astype(np.int32)
    steps = np.concatenate(parts_step)
    walls = np.concatenate(parts_wall)
    values = np.concatenate(parts_value)
    if purge and restarts:
        records = np.concatenate(parts_rec)
        keep = np.ones(len(steps), dtype=bool)
        for record, step in restarts:
            keep &= ~((records < record) & (steps >= step))
        tags, steps, walls, values = tags[keep], steps[keep], walls[keep], values[keep]
    n = len(steps)
    run_col = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int32)), pa.array([run_id], pa.string())
    )
    key_col = pa.DictionaryArray.from_arrays(pa.array(tags), pa.array(names, pa.string()))
    ts_col = pa.array(walls, pa.float64(), mask=np.isnan(walls))
    table = pa.table(
        {
            "run_id": run_col.cast(pa.string()),
            "key": key_col.cast(pa.string()),
            "step": pa.array(steps, pa.int64()),
            "ts": ts_col,
            "value": pa.array(values, pa.float64()),
        }
    )
    return table


def _param_value(value: object) -> object:
    """hparams numbers are doubles on the wire: show 32.0 as the 32 the script passed."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


IMPORTER = TensorBoardImporter()

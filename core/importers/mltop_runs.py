"""Importer for mltop's own run folders (written by :mod:`mltop.core.tracking`).

A folder with ``mltop-run.json`` is one run. Its ``metrics.jsonl`` grows while the job runs, so
only new complete lines are read on each scan, and all changed runs of a scan are parsed in one
DuckDB ``read_json``. Runs are written in batches of whole runs, each batch in one transaction,
a few batches committed together (``Store.bulk``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.common.collector import collector_held
from mltop.core.common.regular_files import is_regular
from mltop.core.entities import (
    FileState,
    ImportReport,
    RunRecord,
    SourceRef,
    Status,
    stable_id,
)
from mltop.core.importers.base import (
    HEAD_BYTES,
    Change,
    Detection,
    Seen,
    classify,
    file_state,
    fingerprint,
    listed_files,
    source_texts,
    stat_table,
)
from mltop.core.importers.linefiles import LineBatch, LineFile, read_line_files
from mltop.core.importers.params import flatten_params, json_object, read_json_bytes
from mltop.core.store import Store
from mltop.core.tracking import META_FILE, METRICS_FILE, OUTPUT_FILE, PARAMS_FILE, SYSTEM_FILE

KIND = "mltop"
#: Runs written per transaction, and the metric bytes read for one (a few long histories make a
#: batch as well as thousands of short ones). Batches are big because a commit costs a write
#: of every table's last rows: a first import of 100,000 runs in batches of 500 wrote 5x the
#: size of the store it made.
BATCH_RUNS = 5000
BATCH_BYTES = 64 * 1024 * 1024
#: A batch writing this many runs whole commits straight into the store file (see
#: :meth:`Store.transaction`).
LARGE_BATCH = 1000
LOG_SUFFIXES = (".log", ".out", ".err")
MAX_META_BYTES = 4 * 1024 * 1024
#: The files of a run folder whose state the store records.
RUN_FILES = (META_FILE, PARAMS_FILE, METRICS_FILE, SYSTEM_FILE)
#: Run folders whose stats are held and compared with the recorded digests at a time.
COMPARE_RUNS = 10_000
_RUN_NAMES = tuple(os.sep + name for name in RUN_FILES)
_BITS = tuple(1 << i for i in range(8))


def experiment_id(name: str) -> str:
    return stable_id("mltop-experiment", name)


def _float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


class Folder(NamedTuple):
    """A run folder that changed: its path as text, and what the comparison's stat found of
    each of its :data:`RUN_FILES` (None where there was no file). Its files are read with
    these, not stat'ed again."""

    path: str
    seen: tuple[Seen | None, ...]


#: A changed run folder as it waits for its batch: its path, then the size, mtime and inode of
#: each of :data:`RUN_FILES` (three Nones for a file that was not there). A first import of
#: 100,000 runs holds one per run until its batch: one plain tuple of atoms (which Python's
#: collector stops tracking) where a :class:`Folder` with its stats was six objects, twice the
#: memory; the :class:`Folder` is made when its batch is read.
Compared = tuple[Any, ...]
_ABSENT = (None, None, None)


def _folder(compared: Compared) -> Folder:
    seen = tuple(
        None if compared[k] is None else Seen(*compared[k : k + 3])
        for k in range(1, len(compared), 3)
    )
    return Folder(compared[0], seen)


def _changed_folders(store: Store, refs: Sequence[SourceRef]) -> list[tuple[Compared, int]]:
    """The run folders with a file that is new, gone or changed since the last scan, each with
    the size of its metrics and system files (0 when there is none).

    One stat per file and, per :data:`COMPARE_RUNS` folders, one comparison of their digests
    with the digests of what the store recorded, folded once per scan
    (:meth:`~mltop.core.store.Store.folder_digests`): an unchanged folder of a hundred
    thousand runs costs what listing it costs, with no per-file state in Python and a bounded
    batch of stats in memory at a time. Folders are handled as path text, and what the stats
    found is kept only for the folders that changed.
    """
    folders = source_texts(refs)
    listed = listed_files(refs)
    changed: list[tuple[Compared, int]] = []
    # A store that records no file (a first import) has nothing to compare the stats with:
    # every folder with a file is new.
    recorded = store.folder_digests(_RUN_NAMES) if store.holds_files() else None
    for start in range(0, len(folders), COMPARE_RUNS):
        end = start + COMPARE_RUNS
        changed += _changed_among(store, folders[start:end], listed[start:end], recorded)
    if recorded is not None:
        # The comparisons' joins freed ~10 MB that DuckDB's allocator would keep for a while,
        # through the rest of the scan.
        store.return_freed_memory()
    return changed


T = TypeVar("T")


def _batches(changed: Sequence[tuple[T, int]]) -> list[list[T]]:
    """Changed run folders cut into batches of at most :data:`BATCH_RUNS` runs and
    :data:`BATCH_BYTES` of metrics (a run bigger than that is a batch of its own)."""
    batches: list[list[T]] = []
    batch: list[T] = []
    size = 0
    for ref, metrics_bytes in changed:
        if batch and (len(batch) >= BATCH_RUNS or size + metrics_bytes > BATCH_BYTES):
            batches.append(batch)
            batch, size = [], 0
        batch.append(ref)
        size += metrics_bytes
    if batch:
        batches.append(batch)
    return batches


def _changed_among(
    store: Store, folders: list[str], listed: bytes, recorded: pa.Table | None
) -> list[tuple[Compared, int]]:
    """The folders among ``folders`` with a changed file, each with its metrics and system
    bytes (``recorded`` is None when the store records no file: every file there is new).

    A file the discovery walk did not list in its folder (``listed``, see
    :func:`~mltop.core.importers.base.listed_files`) is not there: looking for it again was
    a failed stat and an exception a folder (most folders have no ``system.csv``), about a
    tenth of a re-scan. One that appears after the walk is read by the next scan.
    """
    width = len(RUN_FILES)
    paths = [folder + name for folder in folders for name in _RUN_NAMES]
    # Typed arrays, not lists: no Python int or float per stat (~6 MB of a chunk's 75,000).
    sizes = array("q", bytes(8 * len(paths)))
    mtimes = array("d", bytes(8 * len(paths)))
    inodes = array("q", bytes(8 * len(paths)))
    there = bytearray(len(paths))  # 1 where the file is there; a gone file's state is null
    stat = os.stat
    bits = _BITS[:width]
    i = 0
    for mask in listed:
        for bit in bits:
            if mask & bit:
                try:
                    st = stat(paths[i])
                except OSError:
                    pass
                else:
                    sizes[i] = st.st_size
                    mtimes[i] = st.st_mtime
                    inodes[i] = st.st_ino
                    there[i] = 1
            i += 1
    differ: dict[str, bool] = {}
    if recorded is not None:
        now = stat_table(folders, paths, sizes, mtimes, inodes, there)
        differ = dict(store.changed_runs(now, recorded))
        del now
        if not differ:
            return []
    metrics_at, system_at = RUN_FILES.index(METRICS_FILE), RUN_FILES.index(SYSTEM_FILE)
    out = []
    for i, folder in enumerate(folders):
        at = i * width
        if recorded is not None and folder not in differ:
            continue
        # A folder with none of its files there is new only when the store holds nothing of
        # it; one it holds lost its files and is read again (and said so).
        if not differ.get(folder) and not any(there[at : at + width]):
            continue
        record: list[Any] = [folder]
        for k in range(at, at + width):
            record += (sizes[k], mtimes[k], inodes[k]) if there[k] else _ABSENT
        out.append((tuple(record), sizes[at + metrics_at] + sizes[at + system_at]))
    return out


def _first_seen(folder: str, known: dict[str, FileState]) -> bool:
    """No file of this run folder was ever recorded: the store holds nothing of the run."""
    base = folder + os.sep
    return not any(base + name in known for name in RUN_FILES)


class MltopRunsImporter:
    kind = KIND
    #: A folder holding this file is one run: discovery records it without calling detect,
    #: noting which of these files it listed there.
    folder_marker = META_FILE
    folder_files = RUN_FILES

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if META_FILE not in filenames:
            return None
        return Detection([SourceRef(KIND, dirpath)], claimed=set(filenames), prune=True)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        with store.one_worker_thread():
            changed = _changed_folders(store, refs)
            if not changed:
                return
            # Each file state of a run folder is recorded with the folder as its source.
            known = store.file_states(sources=(compared[0] for compared, _ in changed))
            with collector_held(), store.bulk():
                for batch in _batches(changed):
                    self._import_batch(store, batch, known, report)

    def _import_batch(
        self,
        store: Store,
        compared: Sequence[Compared],
        known: dict[str, FileState],
        report: ImportReport,
    ) -> None:
        metric_files: list[LineFile] = []
        system_files: list[LineFile] = []
        meta_changed: dict[str, Folder] = {}
        # The stats of each run's metadata files; their states are made only for the runs read.
        meta_stats: dict[str, list[tuple[str, os.stat_result | Seen]]] = {}
        folder_of: dict[str, Folder] = {}
        for folder in map(_folder, compared):
            run_id = stable_id(KIND, store.id_path(folder.path))
            folder_of[run_id] = folder
            changed = False
            stats: list[tuple[str, os.stat_result | Seen]] = []
            # Paths as text: a Path per file was a tenth of a first import's time.
            base = folder.path + os.sep
            meta_seen, params_seen, metrics_seen, system_seen = folder.seen  # RUN_FILES' order
            for name, seen in ((META_FILE, meta_seen), (PARAMS_FILE, params_seen)):
                path = base + name
                change, st = classify(path, known.get(path), seen)
                if change is not Change.UNCHANGED:
                    changed = True
                if st is not None:
                    stats.append((path, st))
            metrics = base + METRICS_FILE
            old = known.get(metrics)
            metric_files.append(LineFile(metrics, run_id, old, folder.path, metrics_seen))
            system = base + SYSTEM_FILE
            if system_seen is not None or system in known:
                old = known.get(system)
                system_files.append(LineFile(system, run_id, old, folder.path, system_seen))
            if changed:
                meta_changed[run_id] = folder
            meta_stats[run_id] = stats

        batch, restarted = _read_metric_files(metric_files, system_files, report)
        if not meta_changed and not batch.changed_runs:
            return
        # A run whose metrics grew while its metadata stayed is the live case (a job logging
        # every second): only its points, file offsets and `updated` are written, unless a log
        # file appeared or vanished in its folder, which needs the whole run re-read.
        reread = restarted
        grown_only = {
            run_id: batch.mtimes.get(run_id)
            for run_id in batch.changed_runs
            if run_id not in meta_changed and run_id not in reread
        }
        if grown_only:
            recorded = store.log_paths(grown_only)
            for run_id in list(grown_only):
                if _log_files(folder_of[run_id].path) != recorded.get(run_id, []):
                    del grown_only[run_id]
        for run_id in batch.changed_runs:
            if run_id not in grown_only:
                meta_changed.setdefault(run_id, folder_of[run_id])

        records: list[RunRecord] = []
        experiments: dict[str, str] = {}
        params: list[tuple[str, str, object]] = []
        tags: list[tuple[str, str, object]] = []
        logs: dict[str, list[str]] = {}
        skipped: set[str] = set()
        meta_states: list[FileState] = []
        for run_id, folder in meta_changed.items():
            heads: dict[str, str] = {}
            stats = meta_stats[run_id]
            parsed = self._read_run(folder, run_id, report, heads, {p for p, _ in stats})
            if parsed is None:
                skipped.add(run_id)
                continue
            meta_states += [
                file_state(path, st, st.st_size, run_id, folder.path, head=heads.get(path))
                for path, st in stats
            ]
            record, exp_name, run_params, run_tags, run_logs = parsed
            records.append(record)
            if record.experiment_id is not None:
                experiments[record.experiment_id] = exp_name
            params.extend((run_id, k, v) for k, v in run_params.items())
            tags.extend((run_id, k, v) for k, v in run_tags.items())
            logs[run_id] = run_logs

        points = batch.points
        if skipped:
            keep = pc.invert(
                pc.is_in(points.column("run_id"), value_set=pa.array(sorted(skipped), pa.string()))
            )
            points = points.filter(keep)
        states = [s for s in batch.states if s.run_id not in skipped] + meta_states
        with store.transaction(large=len(records) >= LARGE_BATCH):
            store.mark_new_runs(r.id for r in records if _first_seen(r.location, known))
            store.put_experiments(
                [(eid, KIND, "", None, name) for eid, name in experiments.items()]
            )
            store.put_runs(None, records, params, tags)
            store.touch_runs({r: t for r, t in grown_only.items() if t is not None})
            replaced = restarted - skipped
            # A run seen for the first time has no stored points: deleting them would scan the
            # whole metrics table for nothing, and its summaries fold from this batch alone
            # (the cost per batch of a first import stays flat as the store fills).
            replaced -= {r for r in replaced if _first_seen(folder_of[r].path, known)}
            if replaced:
                store.delete_points(replaced)
            added = store.add_points(points)
            store.update_summaries(batch.changed_runs - skipped, [points])
            store.delete_files([str(lf.path) for lf in batch.deleted])
            store.put_files(None, states)
            store.put_logs(logs)
        new_runs = sum(1 for r in records if r.location + os.sep + META_FILE not in known)
        report.add(KIND, runs=new_runs, points=added)

    def _read_run(
        self,
        folder: Folder,
        run_id: str,
        report: ImportReport,
        heads: dict[str, str],
        present: set[str],
    ) -> tuple[RunRecord, str, dict[str, object], dict[str, object], list[str]] | None:
        """The run of a folder, or None when its metadata cannot be read (said in ``report``).

        ``heads`` receives the fingerprint of each metadata file read (by path), from the bytes
        read; ``present`` holds the paths of the metadata files a stat found.
        """
        path = folder.path
        base = path + os.sep
        meta_path = base + META_FILE
        try:
            raw = read_json_bytes(meta_path, MAX_META_BYTES)
            meta = json_object(raw)
        except (OSError, ValueError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"cannot read ({exc})"
            report.problem(meta_path, reason)
            return None
        heads[meta_path] = fingerprint(raw[:HEAD_BYTES])
        run_params: dict[str, object] = {}
        params_path = base + PARAMS_FILE
        if params_path in present:
            try:
                raw = read_json_bytes(params_path, MAX_META_BYTES)
                heads[params_path] = fingerprint(raw[:HEAD_BYTES])
                flatten_params(json_object(raw), out=run_params)
            except (OSError, ValueError) as exc:
                report.problem(params_path, str(exc))
        raw_tags = meta.get("tags")
        run_tags: dict[str, object] = (
            {str(k): v for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
        )
        run_tags.update(_process_tags(meta))
        try:
            names = os.listdir(path)
        except OSError:
            names = []
        # The run's files were stat'ed by the comparison: only the folder's other entries are.
        mtimes = {n: s.st_mtime for n, s in zip(RUN_FILES, folder.seen, strict=True) if s}
        updated = max(
            (m for m in (mtimes.get(n) or _mtime(base + n) for n in names) if m is not None),
            default=None,
        )
        run_logs = _log_names(path, names)
        name = meta.get("name")
        experiment = _experiment_name(meta, path)
        record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=path,
            name=str(name) if name not in (None, "") else os.path.basename(path),
            status=Status.parse(meta.get("status"), Status.RUNNING),
            experiment_id=experiment_id(experiment),
            native_id=str(meta["id"]) if meta.get("id") is not None else None,
            start_time=_float(meta.get("start_time")),
            end_time=_float(meta.get("end_time")),
            git_commit=str(meta["git_commit"]) if meta.get("git_commit") else None,
            host=str(meta["host"]) if meta.get("host") else None,
            error=str(meta["error"]) if meta.get("error") else None,
            updated=updated,
        )
        return record, experiment, run_params, run_tags, run_logs


def _read_metric_files(
    metric_files: Sequence[LineFile], system_files: Sequence[LineFile], report: ImportReport
) -> tuple[LineBatch, set[str]]:
    """What changed in the runs' ``metrics.jsonl`` and ``system.csv``, as one batch, with the
    runs whose stored points must be deleted before the batch's go in.

    A run's points are deleted whole, so a run that has both files and one of them was
    replaced or is gone is read whole: both files from the start. A new ``system.csv`` in a
    known run (its first sample) only adds points.
    """
    restarted: set[str] = set()
    if system_files:
        pair_of = {lf.run_id: lf for lf in metric_files}
        whole: dict[str, list[LineFile]] = {}
        for samples in system_files:
            pair = [pair_of[samples.run_id], samples]
            if any(lf.old is not None for lf in pair) and _restarts(pair):
                restarted.add(samples.run_id)
                whole[samples.run_id] = [_from_start(lf) for lf in pair]
        if whole:
            metric_files = [whole.get(lf.run_id, [lf])[0] for lf in metric_files]
            system_files = [whole.get(lf.run_id, [lf, lf])[1] for lf in system_files]
    batch = read_line_files(metric_files, "jsonl", report)
    paired = {lf.run_id for lf in system_files}
    restarted |= (batch.replaced_runs - paired) | {lf.run_id for lf in batch.deleted}
    if not system_files:
        return batch, restarted
    system = read_line_files(system_files, "csv", report, delimiter=",", plain_csv=True)
    restarted |= {lf.run_id for lf in system.deleted}
    batch.points = pa.concat_tables([batch.points, system.points])
    batch.states += system.states
    batch.replaced_runs |= system.replaced_runs
    batch.deleted += system.deleted
    batch.changed_runs |= system.changed_runs
    for run_id, mtime in system.mtimes.items():
        batch.mtimes[run_id] = max(batch.mtimes.get(run_id, 0.0), mtime)
    return batch, restarted


def _restarts(files: Sequence[LineFile]) -> bool:
    """Whether a recorded file of these was replaced or is gone since the last scan."""
    return any(
        lf.old is not None
        and classify(lf.path, lf.old, lf.seen)[0] in (Change.REPLACED, Change.DELETED)
        for lf in files
    )


def _from_start(lf: LineFile) -> LineFile:
    """The file read from its start, as a new one; a gone file keeps its state, so the read
    says it is gone."""
    return dataclasses.replace(lf, old=None) if os.path.exists(lf.path) else lf


def _process_tags(meta: dict[str, object]) -> dict[str, object]:
    """The writer's working directory and command line, as the tags that link a live process
    to its run (mltop.core.system.processes); absent or malformed, no tag."""
    cwd, argv = meta.get("cwd"), meta.get("argv")
    if not isinstance(cwd, str) or not isinstance(argv, list) or not argv:
        return {}
    if not all(isinstance(a, str) for a in argv):
        return {}
    return {"mltop.cwd": cwd, "mltop.cmdline": json.dumps(argv)}


def _log_names(folder: str, names: Sequence[str]) -> list[str]:
    """The run's log files; only regular ones, since the log view opens and follows them."""
    return sorted(
        path
        for path in (
            os.path.join(folder, n) for n in names if n == OUTPUT_FILE or n.endswith(LOG_SUFFIXES)
        )
        if is_regular(path)
    )


def _log_files(folder: str) -> list[str]:
    try:
        return _log_names(folder, os.listdir(folder))
    except OSError:
        return []


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _experiment_name(meta: dict[str, Any], folder: str) -> str:
    name = meta.get("experiment")
    return str(name) if name not in (None, "") else os.path.basename(os.path.dirname(folder))


IMPORTER = MltopRunsImporter()

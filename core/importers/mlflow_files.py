"""MLflow's file store: an ``mlruns/`` tree of experiment and run folders.

Layout (as MLflow writes it)::

    mlruns/<experiment_id>/meta.yaml                     experiment name, lifecycle
    mlruns/<experiment_id>/<run_id>/meta.yaml            status code, times, run name, lifecycle
    mlruns/<experiment_id>/<run_id>/metrics/<key>        "timestamp value step" lines, appended
    mlruns/<experiment_id>/<run_id>/params/<key>         the value, as the whole file
    mlruns/<experiment_id>/<run_id>/tags/<key>           the value, as the whole file
    mlruns/.trash/<experiment_id>/...                    deleted experiments

A key with ``/`` is a sub-folder (``metrics/val/roc_auc``). Experiment folders also hold
``models/``, ``datasets/`` and ``tags/``: a run folder is one with its own ``meta.yaml``.

Incremental: every file read is recorded. A re-scan lists and stats each file and compares the
stats with the records in the store, a chunk of runs at a time, by a digest per run (see
:mod:`mltop.core.importers.mlflow_files_tree`); only a run with a changed file is planned. There
a metric file that grew is read from its recorded offset (complete lines only), a replaced one
is re-read, an untouched one is not opened; the run's small files (meta, params, tags) are
re-read and its row rewritten; its histories change only by the new lines. Changed runs are
written as the listing goes, a batch at a time, so a first import of a hundred thousand runs
holds one batch in memory, not the tree.

Metric lines are read here (one ``read`` per file, from its recorded offset) and parsed in bulk
by :mod:`mltop.core.importers.mlflow_metric_lines`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from mltop.core.common.collector import collector_held
from mltop.core.common.flat_yaml import read_flat_mapping
from mltop.core.common.regular_files import FileTooLarge, read_limited
from mltop.core.common.safe_yaml import YamlRefused, load_yaml
from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef
from mltop.core.importers import mlflow_common as common
from mltop.core.importers.base import (
    HEAD_BYTES,
    Detection,
    file_state,
    fingerprint,
    head_fingerprint,
    read_complete,
)
from mltop.core.importers.mlflow_files_tree import (
    TRASH,
    ExperimentDir,
    MetricRead,
    RunDir,
    RunPlan,
    Stat,
    experiment_dirs,
    fill_keys,
    list_runs,
    looks_like_store,
    plan_run,
    rewritten,
)
from mltop.core.importers.mlflow_metric_lines import LINE_HELP, check_text, parse_resilient
from mltop.core.store import POINTS_SCHEMA, Store

KIND = "mlflow-files"
MAX_META_BYTES = 1 << 20
# MLflow caps params and tags at a few thousand characters; a file far larger is not one.
MAX_VALUE_BYTES = 1 << 20
RACY_SECONDS = 2.0  # see settled()
#: Runs (and metric bytes) read and written per store transaction, a few of which commit
#: together (Store.bulk): each commit writes every table's last rows again, and a first import
#: of 100,000 runs in commits of 500 wrote several times the size of the store it made. A
#: transaction of LARGE_BATCH runs goes straight into the file. Batches of 5,000 held 130-190 MB
#: more than the import's start at the peak of their write; at 30,000 runs, 2,000 committed
#: each wrote 6.3x the store at a 417 MB peak, 1,000 in a bulk 2.5x at 385 MB.
BATCH_RUNS = 1000
BATCH_BYTES = 32 << 20
LARGE_BATCH = 1000


class UnitError(Exception):
    """One file cannot be used; the message is one line for the report."""


# -- small files ------------------------------------------------------------------------------


def read_yaml(path: str | Path) -> dict[str, Any]:
    return read_meta(path)


def read_meta(path: str | Path) -> dict[str, Any]:
    """An MLflow meta.yaml's mapping."""
    try:
        # Read from the descriptor, sized by its stat: a file object's read(1 MiB + 1)
        # allocated the whole MiB first, three quarters of reading a 400-byte meta.yaml.
        data = read_limited(path, MAX_META_BYTES, "an MLflow meta.yaml")
    except FileTooLarge as exc:
        raise UnitError("larger than 1 MiB: not an MLflow meta.yaml") from exc
    except OSError as exc:
        raise UnitError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnitError(f"not UTF-8 text (byte {exc.start})") from exc
    doc: Any = read_flat_mapping(text)  # MLflow's own meta.yaml, without the general loader
    if doc is not None:
        return doc
    try:
        doc = load_yaml(text)
    except YamlRefused as exc:
        raise UnitError(f"refused: {exc}") from exc
    except yaml.YAMLError as exc:
        raise UnitError(f"not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(doc, dict):
        raise UnitError("not an MLflow meta.yaml (not a mapping)")
    return doc


def read_value(path: str | Path) -> str:
    """A param or tag value: the whole file, as MLflow wrote it (no stripping)."""
    try:
        data = read_limited(path, MAX_VALUE_BYTES, "an MLflow param or tag")
    except OSError as exc:
        raise UnitError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnitError(f"not UTF-8 text (byte {exc.start})") from exc


def state_of(
    path: str | Path, st: Stat, offset: int, run_id: str | None, start: bytes
) -> FileState:
    """The state to record after reading ``path`` up to ``offset``, hashing the head from
    bytes already read from the file's start when they cover it.

    Saves opening every file a second time on a first import (17,000 files for 1,000 runs).
    """
    n = min(st.st_size, HEAD_BYTES)
    head = fingerprint(start[:n]) if len(start) >= n else head_fingerprint(Path(path), st.st_size)
    return FileState(str(path), st.st_size, st.st_mtime, st.st_ino, offset, head, run_id)


def small_state(run: RunDir, run_id: str, st: Stat) -> FileState:
    """The state recorded for a run's small files together (no head: they are never appended)."""
    return FileState(run.small_state, st.st_size, st.st_mtime, st.st_ino, st.st_size, "", run_id)


def settled(state: FileState) -> FileState:
    """The state to record for a file rewritten in place (meta.yaml, a param, a tag).

    Such a file can be rewritten with the same size within one tick of the file system clock
    after it was read, and would then look untouched forever. A file changed in the last
    RACY_SECONDS is recorded with an mtime no file has, so the next scan reads it again.
    """
    if time.time() - state.mtime < RACY_SECONDS:
        return dataclasses.replace(state, mtime=-1.0)
    return state


# -- writing ----------------------------------------------------------------------------------


@dataclass
class RunData:
    record: RunRecord
    params: list[tuple[str, str]]
    tags: dict[str, str]
    states: list[FileState]


def read_run(
    plan: RunPlan, source: str, experiment_deleted: bool, report: ImportReport, id_source: str
) -> RunData | None:
    """The run's row, params and tags from its small files; None when meta.yaml is unusable."""
    run = plan.run
    try:
        meta = read_meta(run.meta)
        if "run_id" not in meta and "run_uuid" not in meta:
            raise UnitError("not an MLflow run meta.yaml (no run_id)")
    except UnitError as exc:
        report.problem(run.meta, str(exc))
        return None
    values: dict[str, dict[str, str]] = {"params": {}, "tags": {}}
    failed = False
    for group, files in (("params", run.params), ("tags", run.tags)):
        for path, key in files:
            try:
                values[group][key] = read_value(path)
            except UnitError as exc:
                report.problem(path, str(exc))
                failed = True
    # One state for meta.yaml, params and tags (mlflow_files_tree.SMALL_FILES), as listed; none
    # while one of them cannot be read, so that each scan tries the run's small files again.
    small = plan.stats.get(run.small_state)
    states = [] if small is None or failed else [settled(small_state(run, plan.run_id, small))]
    tags = values["tags"]
    mtimes = [st.st_mtime for st in plan.stats.values()]
    record = common.make_record(
        kind=KIND,
        source=source,
        native_id=run.native,
        experiment_native_id=run.experiment.native,
        name=meta.get("run_name"),
        status=meta.get("status"),
        lifecycle=common.lifecycle_of(meta.get("lifecycle_stage"), experiment_deleted),
        start_ms=meta.get("start_time"),
        end_ms=meta.get("end_time"),
        artifact_uri=meta.get("artifact_uri"),
        tags=tags,
        updated=max(mtimes) if mtimes else None,
        id_source=id_source,
    )
    return RunData(record, sorted(values["params"].items()), tags, states)


@dataclass
class MetricBatch:
    """What one pass over the changed metric files of a batch of runs produced."""

    points: pa.Table
    states: list[FileState]  # to record: files read (to their last complete line)
    touched: set[str]  # run ids whose histories changed
    # Files read from the start that could not be parsed: their key's points were dropped, so
    # their recorded state goes too, and the next scan reads them whole again.
    forget: list[str]


def read_metrics(plans: Sequence[RunPlan], report: ImportReport) -> MetricBatch:
    """New lines of the planned metric files of these runs, in one DuckDB pass."""
    chunks: dict[int, bytes] = {}
    names: dict[int, Path] = {}
    owners: list[tuple[str, str]] = []
    ends: dict[int, tuple[MetricRead, int, str]] = {}
    states: list[FileState] = []
    forget: list[str] = []
    touched = {p.run_id for p in plans if p.drop_keys}
    for plan in plans:
        for read in plan.reads:
            try:
                data, end = read_complete(read.path, read.offset)
            except OSError as exc:
                report.problem(read.path, f"cannot read: {exc.strerror or exc}")
                forget += [str(read.path)] if read.offset == 0 else []
                continue
            why = check_text(data)
            if why is not None:
                report.problem(read.path, why)
                forget += [str(read.path)] if read.offset == 0 else []
                continue
            index = len(owners)
            owners.append((plan.run_id, read.key))
            chunks[index] = data
            names[index] = read.path
            ends[index] = (read, end, plan.run_id)
    tables, failed = parse_resilient(chunks, names, report) if chunks else ([], set())
    for index, (read, end, run_id) in ends.items():
        if index in failed:
            forget += [str(read.path)] if read.offset == 0 else []
            continue
        start = chunks[index] if read.offset == 0 else b""
        states.append(state_of(read.path, read.st, end, run_id, start))
        touched.add(run_id)
    if not tables:
        return MetricBatch(POINTS_SCHEMA.empty_table(), states, touched, forget)
    lines = pa.concat_tables(tables)
    bad = lines.filter(pc.invert(lines["ok"]))
    if bad.num_rows:
        counts = pc.value_counts(bad["f"]).to_pylist()
        for item in counts:
            n = item["counts"]
            report.problem(names[item["values"]], f"{n} line{'s' * (n != 1)} skipped: {LINE_HELP}")
    good = lines.filter(lines["ok"])
    f = good["f"]
    run_ids = pa.array([o[0] for o in owners], pa.string()).take(f)
    keys = pa.array([o[1] for o in owners], pa.string()).take(f)
    points = pa.table(
        {
            "run_id": run_ids,
            "key": keys,
            "step": good["step"],
            "ts": good["ts"],
            "value": good["value"],
        }
    ).cast(POINTS_SCHEMA)
    return MetricBatch(points, states, touched, forget)


def _experiments(
    source: str, dirs: list[ExperimentDir], report: ImportReport, id_source: str
) -> tuple[list[common.ExperimentRow], set[str], list[FileState]]:
    """Experiment rows, the native ids of deleted experiments, and their meta.yaml states."""
    rows: list[common.ExperimentRow] = []
    deleted: set[str] = set()
    states = []
    for exp in dirs:
        name = exp.native
        is_deleted = exp.in_trash
        try:
            st = os.stat(exp.meta)
        except OSError:
            st = None
        if st is not None:
            try:
                meta = read_yaml(exp.meta)
                name = str(meta.get("name") or exp.native)
                is_deleted = is_deleted or common.lifecycle_of(meta.get("lifecycle_stage")) == (
                    common.DELETED
                )
                states.append(settled(file_state(Path(exp.meta), st, st.st_size)))
            except UnitError as exc:
                report.problem(exp.meta, str(exc))
        if is_deleted:
            deleted.add(exp.native)
        rows.append(
            (common.experiment_id(KIND, id_source, exp.native), KIND, source, exp.native, name)
        )
    return rows, deleted, states


def import_tree(store: Store, root: Path, report: ImportReport) -> None:
    """Bring one mlruns tree up to date in the store (see the module docstring)."""
    # Imported here: it asks the MLflow readers whose artifacts it reads.
    from mltop.core.importers.mlflow_tensorboard import forget_gone_logs

    forget_gone_logs(store, root)
    source = str(root)
    id_source = store.id_path(root)
    experiments = experiment_dirs(root)
    exp_states = store.run_file_states(source, [None])
    exp_recorded = set(exp_states)
    # An experiment renamed or deleted in place: its runs' rows carry its lifecycle.
    changed_exps = {e.native for e in experiments if rewritten(e.meta, exp_states.get(e.meta))}
    exp_changed = bool(changed_exps or exp_recorded - {e.meta for e in experiments})
    writer = _Writer(store, source, experiments, exp_changed, report)
    listed: set[str] = set()
    digests = store.run_digests(source)
    chunks = list_runs(experiments, lambda n: common.run_id(KIND, id_source, n), listed)
    while True:
        # The listing makes a few objects a file and no cycle: the collector's passes over them
        # (and, in the app, over every row on screen) are held off while a chunk is listed.
        with collector_held():
            chunk = next(chunks, None)
        if chunk is None:
            break
        changed = dict(store.changed_runs(chunk.table(), digests))
        todo = [r for r in chunk.runs if r[0] in changed or r[1].experiment.native in changed_exps]
        if not todo:
            continue
        # A run the store has no file of (every run of a first import) has no state to fetch.
        known = [rid for rid, _, _, _ in todo if changed.get(rid, True)]
        states = store.run_file_states(source, known) if known else {}
        recorded: dict[str, list[str]] = {}
        for state in states.values():
            recorded.setdefault(state.run_id or "", []).append(state.path)
        for rid, run, start, end in todo:
            fill_keys(run, chunk.paths[start:end])
            force = run.experiment.native in changed_exps
            plan = plan_run(
                run, rid, chunk.stats_of(start, end), states, recorded.get(rid, []), force
            )
            if plan is not None:
                writer.add(plan)
    writer.flush()
    # A run with recorded files and no folder now: deleted on disk.
    gone = sorted(set(digests.column("run_id").to_pylist()) - listed)
    pending = writer.experiments()[0] if writer.rows_due else []
    if not (pending or exp_changed or gone):
        return
    with store.transaction():
        store.put_experiments(pending)
        if exp_changed:
            _, _, now_states = writer.experiments()
            stale = exp_recorded - {s.path for s in now_states}
            if stale:
                store.delete_files(stale)
            store.put_files(source, now_states)
        if gone:
            store.delete_runs(gone)
            report.removed_runs += len(gone)


class _Writer:
    """Changed runs gathered into batches, each read and written in one store transaction.

    The experiments' rows go in with the first batch written, when they changed or the batch
    has a new run (its experiment folder may have no meta.yaml to notice it by), so that no run
    is ever in the store without its experiment. They are read once, when first needed.
    """

    def __init__(
        self,
        store: Store,
        source: str,
        dirs: list[ExperimentDir],
        exp_changed: bool,
        report: ImportReport,
    ) -> None:
        self.store, self.source, self.dirs, self.report = store, source, dirs, report
        self.exp_changed = exp_changed
        self.experiments_written = False
        self.fresh_seen = False
        self._experiments: tuple[list[common.ExperimentRow], set[str], list[FileState]] | None = (
            None
        )
        self.batch: list[RunPlan] = []
        self.size = 0

    def experiments(self) -> tuple[list[common.ExperimentRow], set[str], list[FileState]]:
        if self._experiments is None:
            id_source = self.store.id_path(self.source)
            self._experiments = _experiments(self.source, self.dirs, self.report, id_source)
        return self._experiments

    @property
    def rows_due(self) -> bool:
        """The experiments' rows are still to be written: they changed, or a run is new."""
        return not self.experiments_written and (self.exp_changed or self.fresh_seen)

    def add(self, plan: RunPlan) -> None:
        if self.batch and (
            len(self.batch) >= BATCH_RUNS or self.size + plan.new_bytes > BATCH_BYTES
        ):
            self.flush()
        self.batch.append(plan)
        self.size += plan.new_bytes
        self.fresh_seen = self.fresh_seen or plan.fresh

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self.size = self.batch, [], 0
        rows, deleted, _ = self.experiments()
        due = self.rows_due
        if _write_batch(self.store, self.source, batch, deleted, rows if due else [], self.report):
            self.experiments_written = self.experiments_written or due
            if len(batch) >= LARGE_BATCH:
                # A first import would otherwise keep every block it wrote in DuckDB's buffers.
                self.store.release_buffers()


def _write_batch(
    store: Store,
    source: str,
    batch: list[RunPlan],
    deleted_exps: set[str],
    exp_rows: list[common.ExperimentRow],
    report: ImportReport,
) -> bool:
    """Read and write one batch of whole runs in one store transaction; False if none written."""
    ready: list[tuple[RunPlan, RunData]] = []
    for plan in batch:
        exp_deleted = plan.run.experiment.native in deleted_exps
        data = read_run(plan, source, exp_deleted, report, store.id_path(source))
        if data is not None:
            ready.append((plan, data))
    if not ready:
        return False
    metrics = read_metrics([p for p, _ in ready], report)
    points = metrics.points
    fresh = [p.run_id for p, _ in ready if p.fresh]
    with store.transaction(large=len(ready) >= LARGE_BATCH):
        store.mark_new_runs(fresh)
        store.put_experiments(exp_rows)
        store.put_runs(
            source,
            [d.record for _, d in ready],
            params=[(d.record.id, k, v) for _, d in ready for k, v in d.params],
            tags=[(d.record.id, k, v) for _, d in ready for k, v in d.tags.items()],
        )
        if fresh:
            store.delete_points(fresh)
            store.forget_files_of_others(fresh, source)
        for plan, _ in ready:
            if plan.drop_keys and not plan.fresh:
                store.delete_points([plan.run_id], sorted(plan.drop_keys))
        if points.num_rows:
            store.add_points(points)
        if metrics.touched:
            store.update_summaries(metrics.touched & {p.run_id for p, _ in ready}, [points])
        gone_paths = [g for p, _ in ready for g in p.gone_paths] + metrics.forget
        if gone_paths:
            store.delete_files(gone_paths)
        store.put_files(source, [s for _, d in ready for s in d.states] + metrics.states)
    report.add(KIND, runs=len(ready), points=points.num_rows)
    return True


# -- the importer -----------------------------------------------------------------------------


class MlflowFilesImporter:
    """Claims an ``mlruns`` tree (and prunes the walk there); imports it incrementally."""

    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        named = dirpath.name == "mlruns"
        if not named and TRASH not in dirnames and "0" not in dirnames:
            return None
        # Imported here: the TensorBoard reader asks the MLflow readers whose artifacts it reads.
        from mltop.core.importers.mlflow_tensorboard import source_refs

        if looks_like_store(dirpath, dirnames):
            refs = [SourceRef(KIND, dirpath), *source_refs(dirpath, dirnames)]
            return Detection(refs=refs, claimed=set(filenames), prune=True)
        if named:
            # MLflow's artifact root beside an mlflow.db (or of a server): files logged as
            # artifacts, not runs. Their runs come from the database; do not descend, except
            # for the TensorBoard logs autologging keeps there (that run's charts).
            return Detection(refs=source_refs(dirpath, dirnames), prune=True)
        return None

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        for ref in refs:
            try:
                # Batches committed a few together (see Store.bulk), each chunk's comparison
                # and batch's writes on one DuckDB thread: they are small, and a second
                # thread's pool held ~6 MB more through a re-scan of 100,000 runs.
                with store.one_worker_thread(), store.bulk():
                    import_tree(store, Path(ref.location), report)
            except Exception as exc:  # bad input must never stop the other sources
                report.problem(ref.location, f"import failed: {type(exc).__name__}: {exc}")


IMPORTER = MlflowFilesImporter()

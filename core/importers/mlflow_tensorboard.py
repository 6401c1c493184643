"""TensorBoard logs that MLflow's autologging keeps in a run's artifacts: that run's own charts.

MLflow's TensorFlow/Keras autologging copies the run's TensorBoard log folder to the artifact
path ``tensorboard_logs/`` (``train/`` and ``validation/`` inside, as Keras's callback writes
them), in ``mlruns/<experiment>/<run>/artifacts/`` for a file store and for an ``mlflow.db``
beside ``mlruns/`` alike. Those scalars are the MLflow run's metrics, not runs of their own: the
run's chart grid shows them, and the project has as many runs as MLflow lists.

A scalar is named after its folder under ``tensorboard_logs/`` and its tag, as TensorBoard
names run and tag: ``train/epoch_loss``, ``validation/epoch_loss`` (a tag written straight into
``tensorboard_logs/`` is ``tensorboard_logs/epoch_loss``). When the run has an MLflow metric of
that very name, the TensorBoard one is put under ``tensorboard_logs/`` (its artifact path) until
the two differ, so neither ever hides or mixes with the other. Each folder is read as the
TensorBoard reader reads a run (event files in name order, a restart's purge applied).

Incremental as every TensorBoard source: an event file that grew is read from its last
complete record, a new file sorting after the others on its own. A file replaced or deleted, a
restart or a folder gone re-reads the run's whole ``tensorboard_logs/`` and replaces exactly the
points it had put there (the run's metrics MLflow does not hold); the run's ``tensorboard_logs/``
deleted takes its points with it. The MLflow readers forget these files' states whenever they
read a run's histories anew (which drops all of its points), so they are read again then.

The MLflow readers hand the sources over (they prune the walk at ``mlruns/``), one per
``tensorboard_logs/`` folder, and at each scan of their store drop what folders gone since had
put in their runs (:func:`forget_gone_logs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mltop.core.entities import FileState, ImportReport, SourceRef
from mltop.core.importers.base import Change, Detection, classify, file_state
from mltop.core.importers.mlflow_artifacts import (
    ARTIFACTS,
    TENSORBOARD_LOGS,
    ArtifactOwner,
    artifact_owner,
    mlflow_metric_keys,
    tensorboard_roots,
)
from mltop.core.importers.tensorboard import (
    _event_files,
    _new_files_sort_last,
    _points_table,
    _rewrites_history,
    read_event_files,
)
from mltop.core.store import Store

KIND = "mlflow-tensorboard"

FileChange = tuple[Path, Change, os.stat_result | None]


def source_refs(mlruns: Path, experiments: list[str]) -> list[SourceRef]:
    """The sources this reader takes over from an ``mlruns/`` tree: each run's
    ``artifacts/tensorboard_logs`` (one listing per experiment, one stat per run)."""
    return [SourceRef(KIND, root) for root in tensorboard_roots(mlruns, experiments)]


def _is_logs_root(path: Path) -> bool:
    return path.name == TENSORBOARD_LOGS and path.parent.name == ARTIFACTS


def tensorboard_key(folder: str, tag: str, mlflow_keys: set[str]) -> str:
    """The metric name of ``tag`` written in ``folder`` (relative to ``tensorboard_logs/``)."""
    key = f"{folder}/{tag}" if folder else f"{TENSORBOARD_LOGS}/{tag}"
    while key in mlflow_keys:
        key = f"{TENSORBOARD_LOGS}/{key}"
    return key


def _held_keys(store: Store, owner: ArtifactOwner, mlflow_keys: set[str]) -> set[str]:
    """The run's metric names that came from its TensorBoard logs: all but MLflow's own."""
    return set(store.summaries([owner.run_id]).get(owner.run_id, {})) - mlflow_keys


def _namer(folder: str, mlflow_keys: set[str]) -> Callable[[str], str]:
    return lambda tag: tensorboard_key(folder, tag, mlflow_keys)


def _folders(root: Path) -> dict[str, list[Path]]:
    """Event files of each folder under ``root`` (relative posix name, ``""`` for ``root``)."""
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        names = _event_files(Path(dirpath))
        if names:
            rel = os.path.relpath(dirpath, root)
            out["" if rel == "." else rel.replace(os.sep, "/")] = [Path(dirpath) / n for n in names]
    return out


def _renamed(table: pa.Table, name: Callable[[str], str]) -> pa.Table:
    """``table`` with each key renamed by ``name``: once per distinct key, not per point."""
    if not table.num_rows:
        return table
    encoded = pc.dictionary_encode(table.column("key")).combine_chunks()
    names = pa.array([name(k) for k in encoded.dictionary.to_pylist()], pa.string())
    keys = pa.DictionaryArray.from_arrays(encoded.indices, names).cast(pa.string())
    return table.set_column(table.schema.get_field_index("key"), "key", keys)


class MlflowTensorBoardImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        return None  # handed over by the MLflow readers (see source_refs)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        roots = sorted({Path(r.location) for r in refs})
        known = store.file_states(sources=[str(p) for p in roots])
        for root in roots:
            try:
                self._import_root(store, root, known, report)
            except Exception as exc:  # one broken run must not stop the others
                report.problem(root, f"cannot import: {type(exc).__name__}: {exc}")

    def _import_root(
        self, store: Store, root: Path, known: dict[str, FileState], report: ImportReport
    ) -> None:
        owner = artifact_owner(store, root)
        if owner is None:
            report.problem(root, "TensorBoard logs in no MLflow run's artifacts: not read")
            return
        prefix = str(root) + os.sep
        previous = [p for p in known if p.startswith(prefix)]
        folders = _folders(root)
        changes = {
            folder: [(p, *classify(p, known.get(str(p)))) for p in paths]
            for folder, paths in folders.items()
        }
        current = {str(p) for paths in folders.values() for p in paths}
        deleted = [p for p in previous if p not in current]
        flat = [c for cs in changes.values() for c in cs if c[2] is not None]
        if not deleted and all(c is Change.UNCHANGED for _, c, _ in flat):
            return
        mlflow_keys = mlflow_metric_keys(owner)
        if mlflow_keys is None or store.run(owner.run_id) is None:
            return  # the MLflow reader says why it could not read the run; nothing to add to
        incremental = (
            bool(previous)
            and not deleted
            and all(c in (Change.UNCHANGED, Change.APPENDED, Change.NEW) for _, c, _ in flat)
            and all(_new_files_sort_last(cs) for cs in changes.values())
        )
        if incremental:
            tables, states = self._read(
                owner, root, changes, known, mlflow_keys, report, full=False
            )
            if tables is not None:
                self._write(store, owner, root, tables, states, None, [], report)
                return
        whole, states = self._read(owner, root, changes, known, mlflow_keys, report, full=True)
        held = _held_keys(store, owner, mlflow_keys)
        self._write(store, owner, root, whole or [], states, held, deleted, report)

    def _read(
        self,
        owner: ArtifactOwner,
        root: Path,
        changes: dict[str, list[FileChange]],
        known: dict[str, FileState],
        mlflow_keys: set[str],
        report: ImportReport,
        *,
        full: bool,
    ) -> tuple[list[pa.Table] | None, list[FileState]]:
        """Each folder's points under the run's id and their metric names, and the file states
        to record; None for the points when new records rewrite history (read it all again)."""
        tables, states = [], []
        for folder, folder_changes in changes.items():
            reads = read_event_files(folder_changes, known, report, only_changed=not full)
            if not full and any(_rewrites_history(r.columns) for r in reads):
                return None, []
            table = _points_table(owner.run_id, [r.columns for r in reads], purge=full)
            name = _namer(folder, mlflow_keys)
            tables.append(_renamed(table, name))
            ends = {r.path: r.offset + r.columns.end for r in reads}
            states += [
                file_state(path, st, ends[path], owner.run_id, str(root))
                for path, change, st in folder_changes
                if st is not None and path in ends
            ]
        return tables, states

    def _write(
        self,
        store: Store,
        owner: ArtifactOwner,
        root: Path,
        tables: list[pa.Table],
        states: list[FileState],
        replaced: set[str] | None,
        deleted: list[str],
        report: ImportReport,
    ) -> None:
        """Points and file states in one transaction; ``replaced`` are the run's metric names
        to drop first (a whole re-read), None when only new points were read."""
        points = [t for t in tables if t.num_rows]
        with store.transaction():
            if replaced:
                store.delete_points([owner.run_id], sorted(replaced))
            added = store.add_points(pa.concat_tables(points)) if points else 0
            store.update_summaries([owner.run_id], points)
            store.delete_files(deleted)
            store.put_files(str(root), states)
        report.add(KIND, runs=0, points=added)


def forget_gone_logs(store: Store, under: Path) -> None:
    """Drop what the ``tensorboard_logs/`` folders read before under ``under`` and gone since
    put in their runs. The MLflow readers call it at every scan of their store: a folder that is
    gone is no source any more, so this reader is not asked."""
    prefix = str(under).rstrip(os.sep) + os.sep
    gone = [
        Path(loc)
        for _, loc in store.sources(KIND)
        if loc.startswith(prefix) and not os.path.isdir(loc)
    ]
    if not gone:
        return
    known = store.file_states(sources=[str(p) for p in gone])
    for root in gone:
        paths = [p for p in known if p.startswith(str(root) + os.sep)]
        owner = artifact_owner(store, root)
        mlflow_keys = None if owner is None else mlflow_metric_keys(owner)
        if owner is not None and mlflow_keys is None:
            continue  # the store cannot be read now: keep everything until it can
        held = (
            set() if owner is None or mlflow_keys is None else _held_keys(store, owner, mlflow_keys)
        )
        with store.transaction():
            if owner is not None and held:
                store.delete_points([owner.run_id], sorted(held))
                store.update_summaries([owner.run_id], [])
            store.delete_files(paths)


IMPORTER = MlflowTensorBoardImporter()

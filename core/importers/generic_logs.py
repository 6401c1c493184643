"""Plain metric logs: a ``*.jsonl`` or ``*.csv``/``*.tsv`` with a step or epoch column.

Many training scripts write these by hand. Each file is one run, named after the file (without a
``.metrics`` suffix), in an experiment named after its folder. Only files nobody else claimed are
considered, and only when their first line looks like metric rows, so an arbitrary data CSV is
not taken for a run. A ``metrics.csv`` beside a ``metrics.jsonl`` of the same stem is the same
run written twice when the JSONL's first row has every CSV column (the JSONL is read, it also
carries timestamps); otherwise it holds other metrics and is a run too, and the two are named
after their files so they can be told apart. Sibling text logs with a run's stem (``run-a.log``,
``run-a.stdout.txt``) become that run's logs; the other logs of the folder (``train.log``
beside ``metrics.jsonl``) become the logs of every run there.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from mltop.core.common.regular_files import is_regular, open_regular
from mltop.core.entities import ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers.base import Detection
from mltop.core.importers.keras_csv import keras_header
from mltop.core.importers.linefiles import LineFile, read_line_files
from mltop.core.store import Store
from mltop.core.tabular import STEP_COLUMNS

KINDS = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "csv"}
LOG_SUFFIXES = (".log", ".out", ".err", ".stdout.txt", ".stderr.txt")


def _stem(name: str) -> str:
    base = name.rsplit(".", 1)[0]
    return base[: -len(".metrics")] if base.endswith(".metrics") else base


def _head(path: Path, limit: int = 65536) -> str:
    try:
        with open_regular(path) as fh:
            raw = fh.read(limit)
    except OSError:
        return ""
    return raw.decode("utf-8", errors="replace").split("\n", 1)[0].strip()


def _looks_like_jsonl_metrics(path: Path) -> bool:
    line = _head(path)
    if not line.startswith("{"):
        return False
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        # A first line longer than the sniff window (or nested deeper than Python's JSON
        # reader goes) still counts if it names a step key.
        return any(f'"{k}"' in line for k in STEP_COLUMNS)
    return isinstance(obj, dict) and any(k.lower() in STEP_COLUMNS for k in obj)


def _csv_header(path: Path) -> list[str]:
    line = _head(path, 8192)
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        return [h.strip() for h in next(csv.reader(io.StringIO(line), delimiter=delimiter))]
    except (csv.Error, StopIteration):
        return []


def _looks_like_csv_metrics(path: Path) -> bool:
    header = _csv_header(path)
    return len(header) >= 2 and any(h.lower() in STEP_COLUMNS for h in header)


def _jsonl_keys(path: Path) -> set[str]:
    try:
        obj = json.loads(_head(path))
    except ValueError:
        return set()
    return set(obj) if isinstance(obj, dict) else set()


def _copies(picked: list[Path]) -> set[Path]:
    """CSV/TSV files that repeat a same-stem JSONL of the folder (every column is in it)."""
    jsonl = {_stem(p.name): p for p in picked if p.suffix.lower() == ".jsonl"}
    out = set()
    for path in picked:
        twin = jsonl.get(_stem(path.name)) if path.suffix.lower() != ".jsonl" else None
        if twin is not None and set(_csv_header(path)) <= _jsonl_keys(twin):
            out.add(path)
    return out


class GenericLogsImporter:
    """Handles both kinds ("jsonl" and "csv"); registered once, reported per kind."""

    kind = "jsonl"

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        picked: list[Path] = []
        for name in filenames:
            suffix = os.path.splitext(name)[1].lower()
            if suffix not in KINDS:
                continue
            path = dirpath / name
            ok = (
                _looks_like_jsonl_metrics(path)
                if suffix == ".jsonl"
                else _looks_like_csv_metrics(path)
            )
            if ok:
                picked.append(path)
        copies = _copies(picked)
        picked = [p for p in picked if p not in copies]
        if not picked:
            return None
        return Detection([SourceRef("jsonl", p) for p in picked], claimed={p.name for p in picked})

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        jsonl = [r for r in refs if r.location.suffix.lower() == ".jsonl"]
        csvs = [r for r in refs if r.location.suffix.lower() != ".jsonl"]
        self._import(store, jsonl, "jsonl", None, known, report)
        for delimiter, group in (
            (",", [r for r in csvs if r.location.suffix.lower() == ".csv"]),
            ("\t", [r for r in csvs if r.location.suffix.lower() == ".tsv"]),
        ):
            self._import(store, group, "csv", delimiter, known, report)

    def _import(
        self,
        store: Store,
        refs: Sequence[SourceRef],
        fmt: str,
        delimiter: str | None,
        known: dict[str, object],
        report: ImportReport,
    ) -> None:
        if not refs:
            return
        files = [
            LineFile(
                r.location,
                stable_id(fmt, store.id_path(r.location)),
                known.get(str(r.location)),  # type: ignore[arg-type]
                str(r.location),
            )
            for r in refs
        ]
        batch = read_line_files(files, fmt, report, delimiter=delimiter)
        changed = {lf.run_id: lf for lf in files if lf.run_id in batch.changed_runs}
        if not changed:
            return
        records = []
        logs: dict[str, list[str]] = {}
        experiments: dict[str, str] = {}
        deleted = {lf.run_id for lf in batch.deleted}
        for run_id, lf in changed.items():
            if run_id in deleted:
                continue
            folder = lf.path.parent
            exp_id = stable_id("folder-experiment", store.id_path(folder))
            experiments[exp_id] = folder.name
            stem = _stem(lf.path.name)
            names = _listdir(folder)
            logs[run_id] = _logs_of(folder, stem, names)
            siblings = [
                folder / n for n in names if n != lf.path.name and _is_metrics_name(n, stem)
            ]
            twins = [p for p in siblings if not _copies([lf.path, p])]
            mtime = batch.mtimes.get(run_id)
            records.append(
                RunRecord(
                    id=run_id,
                    source_kind=fmt,
                    location=str(lf.path),
                    name=lf.path.name if twins else stem,
                    status=Status.FINISHED,
                    experiment_id=exp_id,
                    updated=mtime,
                    source=str(lf.path),
                )
            )
        new_runs = sum(1 for r in records if r.location not in known)
        with store.transaction():
            store.put_experiments([(e, fmt, "", None, n) for e, n in experiments.items()])
            store.put_runs(None, records)
            added = batch.write_points(store, deleted, changed)
            store.put_files(None, batch.states)
            store.put_logs(logs)
        report.add(fmt, runs=new_runs, points=added)


def _is_metrics_name(name: str, stem: str | None = None) -> bool:
    """A file name this reader takes for a run (by name only), of ``stem`` when given."""
    if os.path.splitext(name)[1].lower() not in KINDS:
        return False
    return stem is None or _stem(name) == stem


def _logs_of(folder: Path, stem: str, names: list[str]) -> list[str]:
    """The run's logs: siblings named after it, and those named after no run of the folder.

    A Keras CSVLogger file named ``*.log`` is a run of its own, not a log.
    """
    stems = {_stem(n) for n in names if _is_metrics_name(n)}
    out = []
    for name in names:
        # Regular files only: a FIFO named like a log would freeze the Logs view opening it.
        if not name.endswith(LOG_SUFFIXES) or not is_regular(folder / name):
            continue
        if name.startswith(stem + ".") or (
            not any(name.startswith(s + ".") for s in stems) and keras_header(folder / name) is None
        ):
            out.append(name)
    return sorted(str(folder / n) for n in out)


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


IMPORTER = GenericLogsImporter()

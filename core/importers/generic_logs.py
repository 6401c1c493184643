"""Plain metric logs: a ``*.jsonl`` or ``*.csv``/``*.tsv`` with a step or epoch column.

Many training scripts write these by hand. Each file is one run, named after the file (without a
``.metrics`` suffix), in an experiment named after its folder. Only files nobody else claimed are
considered, and only when their first line looks like metric rows, so an arbitrary data CSV is
not taken for a run. Sibling text logs with the same stem (``run-a.log``, ``run-a.stdout.txt``)
become the run's logs.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from mltop.core.entities import ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers.base import Detection
from mltop.core.importers.linefiles import LineFile, read_line_files
from mltop.core.regular_files import is_regular, open_regular
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
    except ValueError:
        # A first line longer than the sniff window still counts if it names a step key.
        return any(f'"{k}"' in line for k in STEP_COLUMNS)
    return isinstance(obj, dict) and any(k.lower() in STEP_COLUMNS for k in obj)


def _looks_like_csv_metrics(path: Path) -> bool:
    line = _head(path, 8192)
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        header = next(csv.reader(io.StringIO(line), delimiter=delimiter))
    except (csv.Error, StopIteration):
        return False
    return len(header) >= 2 and any(h.strip().lower() in STEP_COLUMNS for h in header)


class GenericLogsImporter:
    """Handles both kinds ("jsonl" and "csv"); registered once, reported per kind."""

    kind = "jsonl"

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        picked: dict[str, Path] = {}
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
            if not ok:
                continue
            stem = _stem(name)
            # The same run written twice (run-a.metrics.jsonl and .csv): JSONL wins.
            if stem not in picked or suffix == ".jsonl":
                picked[stem] = path
        if not picked:
            return None
        refs = [SourceRef("jsonl", p) for p in picked.values()]
        return Detection(refs, claimed={p.name for p in picked.values()})

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
                stable_id(fmt, str(r.location)),
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
            exp_id = stable_id("folder-experiment", str(folder))
            experiments[exp_id] = folder.name
            stem = _stem(lf.path.name)
            logs[run_id] = sorted(
                str(folder / n)
                for n in _listdir(folder)
                if n.startswith(stem + ".") and n.endswith(LOG_SUFFIXES) and is_regular(folder / n)
            )
            mtime = batch.mtimes.get(run_id)
            records.append(
                RunRecord(
                    id=run_id,
                    source_kind=fmt,
                    location=str(lf.path),
                    name=stem,
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
            if deleted:
                store.delete_runs(deleted)
            replaced = batch.replaced_runs - deleted
            if replaced:
                store.delete_points(replaced)
            added = store.add_points(batch.points)
            store.update_summaries(set(changed) - deleted, [batch.points])
            store.put_files(None, batch.states)
            store.put_logs(logs)
        report.add(fmt, runs=new_runs, points=added)


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


IMPORTER = GenericLogsImporter()

"""Importer for Keras ``CSVLogger`` files: one CSV per run, one row per epoch.

Keras writes ``epoch`` first and then the sorted names of everything in the epoch logs, so a
header of ``epoch`` followed by sorted column names identifies the file (a hand-written metrics
CSV rarely has sorted columns and is left to the generic reader). The run is named after the
file, in an experiment named after its folder; epochs are the steps, 0-based as Keras writes
them.

Keras's own documentation names the file ``training.log`` (``CSVLogger('training.log')``), so a
``*.log`` file is read too when its first line is CSVLogger's header; other logs are left alone
after reading a few bytes.

``CSVLogger(append=True)`` continues the same file without a second header when training
resumes. When it resumes from an earlier epoch than the file reached, the rows it writes again
replace the ones from before the restart, as TensorBoard does with a purged run: a row is kept
only if no later row has the same or an earlier epoch.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from mltop.core.common.regular_files import open_regular
from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers.base import Change, Detection, classify, file_state, read_complete
from mltop.core.store import POINTS_SCHEMA, Store

KIND = "keras"
STEP_COLUMN = "epoch"
HEAD_BYTES = 65536
BATCH_RUNS = 500
MISSING = ("", "NA")  # what CSVLogger writes for a metric absent that epoch


def experiment_id(folder: Path | str) -> str:
    """``folder`` as :meth:`Store.id_path` gives it."""
    return stable_id("keras-experiment", str(folder))


def _split_header(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def _named_like_keras(name: str, dirpath: Path) -> bool:
    """A ``*.csv``, or a ``*.log`` that starts with ``epoch`` (checked with one small read)."""
    lower = name.lower()
    if lower.endswith(".csv"):
        return True
    if not lower.endswith(".log") or not os.path.isfile(dirpath / name):
        return False
    try:
        with open(dirpath / name, "rb") as fh:
            return fh.read(len(STEP_COLUMN)) == STEP_COLUMN.encode()
    except OSError:
        return False


def keras_header(path: Path) -> list[str] | None:
    """The CSV header when it has CSVLogger's shape (``epoch`` + sorted unique names)."""
    try:
        with open_regular(path) as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    header = _split_header(text)
    if not header or len(header) < 2 or header[0] != STEP_COLUMN:
        return None
    names = header[1:]
    if any(not n for n in names) or len(set(header)) != len(header) or names != sorted(names):
        return None
    return header


@dataclass
class _Rows:
    """Points parsed from CSV rows, plus what could not be read."""

    epochs: list[int] = field(default_factory=list)
    row_of_point: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    malformed: int = 0
    first_malformed: int = 0
    not_utf8: bool = False


def _parse_rows(data: bytes, header: list[str], first_line: int) -> _Rows:
    """Parse CSV rows (no header) into points; ``first_line`` numbers them for messages."""
    out = _Rows()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        out.not_utf8 = True
    names = header[1:]
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        rows = [line.split(",") for line in text.splitlines()]
    for offset, row in enumerate(rows):
        if not row:
            continue
        epoch = _epoch(row[0]) if len(row) == len(header) else None
        if epoch is None:
            out.malformed += 1
            out.first_malformed = out.first_malformed or first_line + offset
            continue
        row_index = len(out.epochs)
        out.epochs.append(epoch)
        for name, cell in zip(names, row[1:], strict=True):
            value = _number(cell)
            if value is not None:
                out.keys.append(name)
                out.values.append(value)
                out.row_of_point.append(row_index)
    return out


def _epoch(cell: str) -> int | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    if not value.is_integer() or abs(value) >= 2**62:
        return None
    return int(value)


def _number(cell: str) -> float | None:
    text = cell.strip()
    if text in MISSING:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _points(run_id: str, rows: _Rows, *, restarts: bool) -> pa.Table:
    epochs = np.array(rows.epochs, dtype=np.int64)
    row_of_point = np.array(rows.row_of_point, dtype=np.int64)
    keep_point = np.ones(len(row_of_point), dtype=bool)
    if restarts and len(epochs) > 1:
        # keep row i only if every later row has a larger epoch (a resume rewrote the others)
        later_min = np.minimum.accumulate(epochs[::-1])[::-1]
        keep_row = np.append(epochs[:-1] < later_min[1:], True)
        keep_point = keep_row[row_of_point]
    n = int(keep_point.sum())
    if n == 0:
        return POINTS_SCHEMA.empty_table()
    keys = np.array(rows.keys, dtype=object)[keep_point]
    return pa.table(
        {
            "run_id": pa.array([run_id] * n, pa.string()),
            "key": pa.array(keys.tolist(), pa.string()),
            "step": pa.array(epochs[row_of_point[keep_point]], pa.int64()),
            "ts": pa.nulls(n, pa.float64()),
            "value": pa.array(np.array(rows.values, dtype=np.float64)[keep_point], pa.float64()),
        }
    )


def _report(path: Path, rows: _Rows, report: ImportReport) -> None:
    parts = []
    if rows.not_utf8:
        parts.append("not UTF-8 text (undecodable bytes replaced)")
    if rows.malformed:
        parts.append(
            f"{rows.malformed} malformed row(s) skipped (first at line {rows.first_malformed})"
        )
    if parts:
        report.problem(path, "; ".join(parts))


class KerasCsvImporter:
    kind = KIND

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        picked = [
            name
            for name in filenames
            if _named_like_keras(name, dirpath) and keras_header(dirpath / name) is not None
        ]
        if not picked:
            return None
        return Detection([SourceRef(KIND, dirpath / n) for n in picked], claimed=set(picked))

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        unique = list({ref.key: ref for ref in refs}.values())
        for start in range(0, len(unique), BATCH_RUNS):
            updates = []
            for ref in unique[start : start + BATCH_RUNS]:
                try:
                    update = self._read(store, ref.location, known, report)
                except Exception as exc:  # one broken file must not stop the others
                    report.problem(ref.location, f"cannot import: {type(exc).__name__}: {exc}")
                    continue
                if update is not None:
                    updates.append(update)
            if updates:
                self._write(store, updates, known, report)

    def _read(
        self, store: Store, path: Path, known: dict[str, FileState], report: ImportReport
    ) -> _Update | None:
        run_id = stable_id(KIND, store.id_path(path))
        old = known.get(str(path))
        change, st = classify(path, old)
        if change is Change.UNCHANGED:
            return None
        if change is Change.DELETED or st is None:
            return _Update(run_id, path, None, None, deleted=True)
        header = keras_header(path)
        if header is None:
            report.problem(path, "no longer has a Keras CSVLogger header")
            return None
        if change is Change.APPENDED and old is not None:
            data, end = read_complete(path, old.offset)
            rows = _parse_rows(data, header, first_line=_line_number(path, old.offset))
            last = _last_stored_epoch(store, run_id)
            if not rows.epochs or last is None or min(rows.epochs) > last:
                _report(path, rows, report)
                points = _points(run_id, rows, restarts=True)
                return _Update(
                    run_id, path, st, file_state(path, st, end, run_id, str(path)), points
                )
        data, end = read_complete(path, 0)
        header_end = data.find(b"\n") + 1
        rows = _parse_rows(data[header_end:], header, first_line=2)
        _report(path, rows, report)
        points = _points(run_id, rows, restarts=True)
        state = file_state(path, st, end, run_id, str(path))
        return _Update(run_id, path, st, state, points, replace=True)

    def _write(
        self,
        store: Store,
        updates: list[_Update],
        known: dict[str, FileState],
        report: ImportReport,
    ) -> None:
        live = [u for u in updates if not u.deleted]
        gone = [u.run_id for u in updates if u.deleted]
        records = [
            RunRecord(
                id=u.run_id,
                source_kind=KIND,
                location=str(u.path),
                name=u.path.stem,
                status=Status.FINISHED,
                experiment_id=experiment_id(store.id_path(u.path.parent)),
                updated=u.stat.st_mtime if u.stat is not None else None,
                source=str(u.path),
            )
            for u in live
        ]
        experiments = {
            experiment_id(store.id_path(u.path.parent)): u.path.parent.name for u in live
        }
        tables = [u.points for u in live if u.points is not None and u.points.num_rows]
        with store.transaction():
            store.put_experiments([(e, KIND, "", None, n) for e, n in experiments.items()])
            store.put_runs(None, records)
            if gone:
                store.delete_runs(gone)
            replaced = [u.run_id for u in live if u.replace]
            if replaced:
                store.delete_points(replaced)
            added = store.add_points(pa.concat_tables(tables)) if tables else 0
            store.update_summaries([u.run_id for u in live], tables)
            store.delete_files([str(u.path) for u in updates if u.deleted])
            store.put_files(None, [u.state for u in live if u.state is not None])
        report.add(KIND, runs=sum(1 for u in live if str(u.path) not in known), points=added)


@dataclass
class _Update:
    run_id: str
    path: Path
    stat: os.stat_result | None
    state: FileState | None
    points: pa.Table | None = None
    replace: bool = False
    deleted: bool = False


def _last_stored_epoch(store: Store, run_id: str) -> int | None:
    summaries = store.summaries([run_id]).get(run_id, {})
    steps = [s.last_step for s in summaries.values() if s.last_step is not None]
    return max(steps) if steps else None


def _line_number(path: Path, offset: int) -> int:
    """The 1-based line number at byte ``offset`` (for messages about appended rows)."""
    count = 0
    with open_regular(path) as fh:
        remaining = offset
        while remaining > 0:
            chunk = fh.read(min(remaining, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count + 1


IMPORTER = KerasCsvImporter()

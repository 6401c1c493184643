"""Incremental, batched reading of append-only line files (JSONL and CSV metric logs).

Training jobs append to these while mltop watches, so each scan reads only the bytes after the
recorded offset, up to the last complete line (a line still being written waits for the next
scan). Every file that changed is parsed in one DuckDB scan; only when that scan fails is each
file parsed alone, and a broken file falls back to a line-by-line read that keeps every good line
and reports the bad ones in one line.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mltop.core import tabular
from mltop.core.common.regular_files import open_regular, read_whole
from mltop.core.entities import FileState, ImportReport
from mltop.core.importers.base import (
    HEAD_BYTES,
    Change,
    Seen,
    classify,
    file_state,
    fingerprint,
    read_complete,
)
from mltop.core.store import Store

#: JSONL files with at most this many new bytes are read here and parsed together (see
#: :func:`_parse_together`); bigger ones are parsed where they lie.
TOGETHER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LineFile:
    """One metric log file of one run, with what the store remembers of it."""

    path: Path | str
    run_id: str
    old: FileState | None
    source: str | None = None
    #: What a stat of it said already, when the caller made one (it is not stat'ed again).
    seen: Seen | None = None


@dataclass
class LineBatch:
    """What a batch read produced: points, new file states, and which runs need what."""

    points: pa.Table = field(default_factory=tabular.empty_points)
    states: list[FileState] = field(default_factory=list)
    replaced_runs: set[str] = field(default_factory=set)
    deleted: list[LineFile] = field(default_factory=list)
    changed_runs: set[str] = field(default_factory=set)
    mtimes: dict[str, float] = field(default_factory=dict)

    def write_points(self, store: Store, deleted: set[str], changed: Iterable[str]) -> int:
        """Write the batch's points inside the caller's transaction; the points added.

        The order matters and is the same for every importer of line files: runs whose file
        is gone are deleted, a replaced file's run loses its old points before the new ones
        go in, and only then are the changed runs' summaries brought up to date.
        """
        if deleted:
            store.delete_runs(deleted)
        replaced = self.replaced_runs - deleted
        if replaced:
            store.delete_points(replaced)
        added = store.add_points(self.points)
        store.update_summaries(set(changed) - deleted, [self.points])
        return added


def _ends_with_newline(path: Path, size: int) -> bool:
    if size == 0:
        return True
    with open_regular(path) as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _first_line(path: Path) -> bytes:
    with open_regular(path) as fh:
        return fh.readline()


def _python_jsonl(path: str, origin: Path, report: ImportReport) -> str | None:
    """Keep the parseable JSON-object lines of a broken file; report the rest in one line.

    A field named "" cannot be a column (DuckDB then reads no line of the file as an object):
    its value is left out of the line, and the problem line says so.
    """
    good: list[str] = []
    bad = 0
    first_bad = 0
    unnamed = 0
    first_unnamed = 0
    with open_regular(path) as fh:
        for number, raw in enumerate(fh, 1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                bad += 1
                first_bad = first_bad or number
                continue
            if "" in obj:
                del obj[""]
                unnamed += 1
                first_unnamed = first_unnamed or number
            good.append(json.dumps(_flat_numbers(obj), allow_nan=True))
    notes = []
    if bad:
        notes.append(f"{_lines(bad, 'malformed ')} skipped (first at line {first_bad})")
    if unnamed:
        notes.append(
            f'the field named "" left out of {_lines(unnamed)} (first at line {first_unnamed})'
        )
    if not good:
        what = f"{_lines(bad)} unreadable" if bad else "no lines"
        report.problem(origin, f"no JSON object lines with metric values ({what})")
        return None
    if notes:
        report.problem(origin, "; ".join(notes))
    return tabular.bytes_to_tempfile(("\n".join(good) + "\n").encode(), ".jsonl")


def _lines(n: int, what: str = "") -> str:
    return f"{n} {what}line{'s' if n != 1 else ''}"


def keep_readable_csv_rows(path: str, delimiter: str | None) -> tuple[str | None, str | None]:
    """Keep the header and the rows with as many fields as it: (cleaned file, one-line note).

    DuckDB gives up on a whole file for one broken row (or mixed line endings, or a byte that
    is not UTF-8); this keeps every readable row of a damaged metrics CSV, and the note counts
    the rows left out and the rows whose bytes were not UTF-8 (their damaged values are lost).
    """
    sep = delimiter or ","
    with open_regular(path) as fh:
        text = fh.read().decode("utf-8", errors="replace")
    lines = text.splitlines()
    header = _csv_fields(lines[0], sep) if lines else None
    if not header or len(header) < 2:
        return None, None
    good: list[list[str]] = [header]
    bad = 0
    first_bad = 0
    garbled = 0
    first_garbled = 0
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        if "\ufffd" in line:
            garbled += 1
            first_garbled = first_garbled or number
        fields = _csv_fields(line, sep)
        if fields is None or len(fields) != len(header):
            bad += 1
            first_bad = first_bad or number
            continue
        good.append(fields)
    notes = []
    if bad:
        rows = f"{bad} malformed row{'s' if bad != 1 else ''}"
        notes.append(f"{rows} skipped (first at line {first_bad})")
    if garbled:
        notes.append(
            f"{garbled} row{'s' if garbled != 1 else ''} with bytes that are not UTF-8 "
            f"(first at line {first_garbled})"
        )
    note = "; ".join(notes) or None
    if len(good) < 2:
        return None, note
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\n").writerows(good)
    return tabular.bytes_to_tempfile(out.getvalue().encode(), ".csv"), note


def _csv_fields(line: str, sep: str) -> list[str] | None:
    try:
        return next(csv.reader([line.replace("\x00", "")], delimiter=sep))
    except (csv.Error, StopIteration):
        return None


def _flat_numbers(obj: dict[str, object]) -> dict[str, object]:
    """Keep scalar fields only: nested values cannot be a metric and confuse type inference."""
    out: dict[str, object] = {}
    for key, value in obj.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str):
            out[key] = value
    return out


def read_line_files(
    files: Sequence[LineFile],
    fmt: str,
    report: ImportReport,
    *,
    delimiter: str | None = None,
    step_col: str | None = None,
    time_col: str | None = None,
    exclude: Sequence[str] = (),
    row_step: bool = False,
    plain_csv: bool = False,
) -> LineBatch:
    """Read what changed in these files since their recorded state.

    ``fmt`` is "jsonl" or "csv". Files that were truncated or replaced are read from the start
    and their runs listed in ``replaced_runs`` (the caller deletes those runs' old points first).
    ``plain_csv``: the CSV files are a writer's rows of numbers (a line is a row, no quoting,
    ``delimiter`` given), so small ones are parsed together as small JSONL files are (see
    :func:`_parse_csv_together`).
    """
    batch = LineBatch()
    sources: dict[str, str] = {}  # path DuckDB reads -> run id
    origin: dict[str, LineFile] = {}
    temps: list[str] = []
    # Files DuckDB reads in place, with the stat their recorded offset comes from: a writer may
    # append while DuckDB reads, and then the points would run past the offset (and be read
    # again by the next scan).
    in_place: dict[str, tuple[os.stat_result | Seen, int]] = {}
    # Small JSONL reads, parsed together (see _parse_together).
    # With the stat and state index of a file read whole (it can be parsed in place).
    together: list[tuple[LineFile, bytes, tuple[os.stat_result | Seen, int] | None]] = []
    try:
        for lf in files:
            change, st = classify(lf.path, lf.old, lf.seen)
            if change is Change.UNCHANGED:
                continue
            if change is Change.DELETED or st is None:
                batch.deleted.append(lf)
                batch.changed_runs.add(lf.run_id)
                continue
            batch.changed_runs.add(lf.run_id)
            batch.mtimes[lf.run_id] = max(batch.mtimes.get(lf.run_id, 0.0), st.st_mtime)
            offset = 0 if change in (Change.NEW, Change.REPLACED) else lf.old.offset  # type: ignore[union-attr]
            if offset == 0:
                batch.replaced_runs.add(lf.run_id)
            try:
                small = st.st_size - offset <= TOGETHER_BYTES
                if small and (fmt == "jsonl" or (plain_csv and delimiter)):
                    head, data, new_offset = _read_small(lf.path, offset, st.st_size)
                    state = file_state(lf.path, st, new_offset, lf.run_id, lf.source, head=head)
                    if data and fmt == "csv" and offset > 0:
                        data = _first_line(lf.path) + data
                    if data:
                        whole = offset == 0 and new_offset == st.st_size
                        together.append((lf, data, (st, len(batch.states)) if whole else None))
                    batch.states.append(state)
                    continue
                if offset == 0 and st.st_size and _ends_with_newline(lf.path, st.st_size):
                    read_path, new_offset = str(lf.path), st.st_size
                    in_place[read_path] = (st, len(batch.states))
                else:
                    data, new_offset = read_complete(lf.path, offset)
                    if not data:
                        batch.states.append(file_state(lf.path, st, offset, lf.run_id, lf.source))
                        continue
                    if fmt == "csv" and offset > 0:
                        data = _first_line(lf.path) + data
                    read_path = tabular.bytes_to_tempfile(data, "." + fmt)
                    temps.append(read_path)
            except OSError as exc:
                report.problem(lf.path, f"cannot read ({exc.strerror or exc})")
                _leave_as_it_was(batch, lf)
                continue
            sources[read_path] = lf.run_id
            origin[read_path] = lf
            batch.states.append(file_state(lf.path, st, new_offset, lf.run_id, lf.source))
        options = dict(
            delimiter=delimiter, step_col=step_col, time_col=time_col,
            exclude=exclude, row_step=row_step,
        )  # fmt: skip
        parse_together = _parse_csv_together if fmt == "csv" else _parse_together
        parsed = parse_together(together, report, **options)
        if parsed is None:  # each parsed alone instead, as a bigger file is
            for lf, data, whole in together:
                if whole is not None:
                    read_path = str(lf.path)
                    in_place[read_path] = whole
                else:
                    read_path = tabular.bytes_to_tempfile(data, "." + fmt)
                    temps.append(read_path)
                sources[read_path] = lf.run_id
                origin[read_path] = lf
        else:
            batch.points = parsed
        if sources:
            failed: set[Path] = set()
            points = _parse(sources, origin, fmt, report, temps, failed, **options)
            if _grew_while_read(sources, origin, in_place, batch, temps):
                failed.clear()
                points = _parse(sources, origin, fmt, report, temps, failed, **options)
            for lf in origin.values():
                if lf.path in failed:
                    _leave_as_it_was(batch, lf)
            batch.points = pa.concat_tables([batch.points, points])
    finally:
        for temp in temps:
            tabular.remove_quietly(temp)
    return batch


def _read_small(path: Path | str, offset: int, size: int) -> tuple[str, bytes, int]:
    """A small file's head fingerprint, and its complete lines from ``offset`` with the offset
    after them, in one read (the fingerprint would otherwise open the file again)."""
    if offset:
        with open_regular(path) as fh:
            head = fh.read(min(size, HEAD_BYTES))
            fh.seek(offset)
            data = fh.read()
    else:
        data = read_whole(path)
        head = data[: min(size, HEAD_BYTES)]
    end = data.rfind(b"\n")
    complete = data[: end + 1] if end >= 0 else b""
    return fingerprint(head), complete, offset + len(complete)


def _tagged(key: str, data: bytes) -> bytes | None:
    """``data``'s lines, each object given the field FILE_COLUMN = ``key``; None unless every
    line starts an object with a field of its own (``{}`` cannot take the tag, a line that is
    not an object would lose it) and none names FILE_COLUMN already."""
    if not data.startswith(b"{") or data.count(b"\n{") + 1 != data.count(b"\n"):
        return None
    if data.startswith(b"{}") or b"\n{}" in data or tabular.FILE_COLUMN.encode() in data:
        return None
    tag = b'{"' + tabular.FILE_COLUMN.encode() + b'":"' + key.encode() + b'",'
    return tag + data[1:-1].replace(b"\n{", b"\n" + tag) + b"\n"


def _parse_together(
    together: Sequence[tuple[LineFile, bytes, object]],
    report: ImportReport,
    **options: object,
) -> pa.Table | None:
    """The new lines of many small JSONL files in one DuckDB parse of one file.

        DuckDB's cost per file read (opening it, inferring its columns, twice) was most of a first
        import of 100,000 small run folders. Each line is tagged with the file it came from, and the
        files are parsed together; None (the caller parses each file alone, as before) when a file's
        lines cannot be tagged or the parse fails, so a damaged file is handled and reported
        exactly as it would be on its own. So is a batch when its lines cannot be written to a file
    DuckDB reads (see :func:`~mltop.core.tabular.readable_bytes`).
    """
    if not together:
        return tabular.empty_points()
    parts = []
    run_of: dict[str, str] = {}
    for index, (lf, data, _) in enumerate(together):
        key = f"f{index}"  # never read as a number or a date
        tagged = _tagged(key, data)
        if tagged is None:
            return None
        parts.append(tagged)
        run_of[key] = lf.run_id
    no_step: dict[str, int] = {}
    options.pop("delimiter", None)
    try:
        with tabular.readable_bytes(b"".join(parts), ".jsonl") as path:
            points = tabular.jsonl_points({path: ""}, tagged=run_of, no_step=no_step, **options)
    except (OSError, tabular.ParseError):
        return None
    _note_no_step(report, together, no_step)
    return points


def _parse_csv_together(
    together: Sequence[tuple[LineFile, bytes, object]],
    report: ImportReport,
    *,
    delimiter: str | None = None,
    **options: object,
) -> pa.Table | None:
    """The new rows of many small plain CSV files (each ``data`` starts with its file's header)
    in one DuckDB parse per header, as :func:`_parse_together` does for JSONL.

    Each row is prefixed with its file's key; files of the same header (a batch of one writer's
    runs has one or two) go into one file read with declared columns, nothing sniffed. None
    (the caller parses each file alone, where a damaged file is handled and reported as it
    always was) when a header cannot be read or a parse fails.
    """
    if not together:
        return tabular.empty_points()
    if not delimiter:
        return None
    sep = delimiter.encode()
    groups: dict[bytes, list[bytes]] = {}
    run_of: dict[str, str] = {}
    for index, (lf, data, _) in enumerate(together):
        data = data.replace(b"\r\n", b"\n")
        end = data.find(b"\n")
        header, rows = data[:end], data[end + 1 :]
        if not rows:
            continue  # the header alone: no sample yet
        key = f"f{index}"
        tag = key.encode() + sep
        groups.setdefault(header, []).append(tag + rows[:-1].replace(b"\n", b"\n" + tag) + b"\n")
        run_of[key] = lf.run_id
    tables = []
    no_step: dict[str, int] = {}
    for header, parts in groups.items():
        names = _csv_fields(header.decode("utf-8", errors="replace"), delimiter)
        if not names:
            return None
        try:
            with tabular.readable_bytes(b"".join(parts), ".csv") as path:
                points = tabular.tagged_csv_points(
                    path, names, run_of, delimiter, no_step=no_step, **options
                )
            tables.append(points)
        except (OSError, tabular.ParseError):
            return None
    _note_no_step(report, together, no_step)
    return pa.concat_tables(tables) if tables else tabular.empty_points()


def _note_no_step(
    report: ImportReport,
    together: Sequence[tuple[LineFile, bytes, object]],
    no_step: dict[str, int],
) -> None:
    """One note per file parsed together whose values had no usable step (they were skipped)."""
    path_of = {lf.run_id: lf.path for lf, _, _ in together}
    for run_id, count in sorted(no_step.items()):
        values = f"{count} value{'s' if count != 1 else ''}"
        add_note(report, path_of[run_id], f"{values} without a usable step skipped")


def _leave_as_it_was(batch: LineBatch, lf: LineFile) -> None:
    """A file none of whose new lines could be read changes nothing in the store.

    Its run is not marked changed (no empty run is written, no points deleted) and its state is
    not recorded, so the next scan reads it again and says again what is wrong.
    """
    batch.states = [s for s in batch.states if s.path != str(lf.path)]
    batch.changed_runs.discard(lf.run_id)
    batch.replaced_runs.discard(lf.run_id)
    batch.mtimes.pop(lf.run_id, None)


def _grew_while_read(
    sources: dict[str, str],
    origin: dict[str, LineFile],
    in_place: dict[str, tuple[os.stat_result | Seen, int]],
    batch: LineBatch,
    temps: list[str],
) -> bool:
    """Swap files that grew during the in-place read for snapshots of their complete lines.

    Rare (a write landing during the parse), so the caller simply parses again.
    """
    swapped = False
    for path, (st, state_index) in in_place.items():
        try:
            now = os.stat(path)
        except OSError:
            continue  # deleted meanwhile: the next scan notices
        if now.st_size == st.st_size and now.st_mtime == st.st_mtime:
            continue
        lf = origin.pop(path)
        run_id = sources.pop(path)
        data, new_offset = read_complete(lf.path, 0)
        snapshot = tabular.bytes_to_tempfile(data, Path(path).suffix or ".txt")
        temps.append(snapshot)
        sources[snapshot] = run_id
        origin[snapshot] = lf
        batch.states[state_index] = file_state(lf.path, now, new_offset, lf.run_id, lf.source)
        swapped = True
    return swapped


def _parse(
    sources: dict[str, str],
    origin: dict[str, LineFile],
    fmt: str,
    report: ImportReport,
    temps: list[str],
    failed: set[Path],
    **kwargs: object,
) -> pa.Table:
    """Points of every file; a file that yields nothing readable is added to ``failed``.

    Values on lines without a usable step are left out, and each file that had some says how
    many (a silent gap in a chart would look like a run that did not log).
    """
    delimiter = kwargs.pop("delimiter")
    parse = (
        tabular.jsonl_points
        if fmt == "jsonl"
        else lambda m, **kw: tabular.csv_points(m, delimiter=delimiter, **kw)  # type: ignore[arg-type]
    )
    no_step: dict[str, int] = {}

    def reader(files: dict[str, str], **kw: object) -> pa.Table:
        counted: dict[str, int] = {}
        table = parse(files, no_step=counted, **kw)  # counted only when the parse succeeds
        for run, count in counted.items():
            no_step[run] = no_step.get(run, 0) + count
        return table

    try:
        points = reader(sources, **kwargs)
    except tabular.ParseError:
        points = _parse_one_by_one(
            sources, origin, fmt, report, temps, failed, reader, delimiter, **kwargs
        )
    path_of = {run_id: origin[path].path for path, run_id in sources.items()}
    for run_id, count in sorted(no_step.items()):
        where = path_of.get(run_id)
        if where is not None:
            values = f"{count} value{'s' if count != 1 else ''}"
            add_note(report, where, f"{values} without a usable step skipped")
    return points


def add_note(report: ImportReport, path: Path | str, note: str) -> None:
    """Say ``note`` about ``path``, on the line already about it if there is one: one line per
    file, however many things are wrong with it."""
    for i in range(len(report.problems) - 1, -1, -1):
        if report.problems[i].path == str(path):
            earlier = report.problems.pop(i)
            report.problem(path, f"{earlier.message}; {note}")
            return
    report.problem(path, note)


def _parse_one_by_one(
    sources: dict[str, str],
    origin: dict[str, LineFile],
    fmt: str,
    report: ImportReport,
    temps: list[str],
    failed: set[Path],
    reader: Callable[..., pa.Table],
    delimiter: object,
    **kwargs: object,
) -> pa.Table:
    """The files of a batch DuckDB could not parse together, each alone, then line by line."""
    tables = []

    def read_copy(cleaned: str, run_id: str, lf: LineFile, what: str) -> bool:
        """Read the cleaned temporary copy of ``lf``; False (said, and marked failed) if even
        that cannot be parsed."""
        temps.append(cleaned)
        try:
            tables.append(reader({cleaned: run_id}, **kwargs))
        except tabular.ParseError as exc:
            report.problem(lf.path, f"{what} ({exc})")
            failed.add(lf.path)
            return False
        return True

    for path, run_id in sources.items():
        lf = origin[path]
        try:
            tables.append(reader({path: run_id}, **kwargs))
            continue
        except tabular.ParseError as exc:
            if fmt != "jsonl":
                cleaned, note = keep_readable_csv_rows(path, delimiter)  # type: ignore[arg-type]
                if cleaned is None:
                    report.problem(lf.path, f"not a readable CSV ({exc})")
                    failed.add(lf.path)
                elif read_copy(cleaned, run_id, lf, "not a readable CSV") and note:
                    report.problem(lf.path, note)
                continue
        cleaned = _python_jsonl(path, lf.path, report)
        if cleaned is None:
            failed.add(lf.path)
        else:
            read_copy(cleaned, run_id, lf, "not readable as JSON lines")
    return pa.concat_tables(tables) if tables else tabular.empty_points()


def newest_mtime(paths: Sequence[Path]) -> float | None:
    best: float | None = None
    for p in paths:
        try:
            m = os.stat(p).st_mtime
        except OSError:
            continue
        best = m if best is None else max(best, m)
    return best

"""DVCLive folders, and the file formats DVC and DVCLive share.

A DVCLive folder (``Live("dvclive")``) holds ``metrics.json`` (the last value of every metric,
nested by the ``/`` in its name, plus ``"step"``), ``params.yaml`` (``log_params``) and one TSV
per metric under ``plots/metrics/`` (``train/loss`` -> ``plots/metrics/train/loss.tsv`` with
columns ``step`` [``timestamp``] ``loss``). Metric names keep DVCLive's ``/``: the history in
``train/loss.tsv`` and the final value in ``metrics.json`` are one metric, ``train/loss``.

Inside a DVC project the folder belongs to the project's runs (workspace and experiments, see
:mod:`mltop.core.importers.dvc`); on its own (DVCLive without DVC) it is one run, read here.
TSVs grow while training runs: each scan reads only their new complete lines. DVCLive records
no start: the run starts at the earliest trusted ``timestamp`` of its TSVs (a stamp from a
clock not set, or far before the rest, is not: :mod:`mltop.core.importers.run_start`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import yaml

from mltop.core import tabular
from mltop.core.common.regular_files import open_regular, read_limited
from mltop.core.common.safe_yaml import YamlRefused, load_yaml
from mltop.core.entities import FileState, ImportReport, RunRecord, SourceRef, Status, stable_id
from mltop.core.importers.base import Change, Detection, classify, file_state, read_complete
from mltop.core.importers.linefiles import add_note, keep_readable_csv_rows
from mltop.core.importers.params import flatten_params
from mltop.core.importers.run_start import kept_start, start_of_history
from mltop.core.store import Store

KIND = "dvclive"
PLOTS_METRICS = "plots/metrics"
MAX_DOC_BYTES = 16 * 1024 * 1024
_STEP_TIME = {"step", "timestamp"}


class FormatError(ValueError):
    """A params or metrics file that cannot be read; the message is one line."""


# -- documents -----------------------------------------------------------------------------------


def parse_document(data: bytes, name: str) -> object:
    """A YAML, JSON or TOML document (by file name), or FormatError with a one-line reason."""
    if len(data) > MAX_DOC_BYTES:
        raise FormatError(f"too large ({len(data)} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})") from exc
    lower = name.lower()
    try:
        if lower.endswith(".json"):
            return json.loads(text) if text.strip() else None
        if lower.endswith(".toml"):
            return tomllib.loads(text)
        return load_yaml(text)
    except YamlRefused as exc:
        raise FormatError(f"refused: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"malformed JSON at line {exc.lineno} column {exc.colno}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"malformed TOML ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise FormatError(f"malformed YAML{where}") from exc
    except RecursionError as exc:
        raise FormatError("nested too deeply to read") from exc
    except ValueError as exc:
        raise FormatError(f"unreadable ({' '.join(str(exc).split()) or 'bad value'})") from exc


def flatten_metrics(value: object, prefix: str = "", out: dict[str, float] | None = None) -> dict:
    """Numeric leaves of a metrics document, nested names joined with ``/`` (DVCLive's names)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten_metrics(inner, f"{prefix}/{key}" if prefix else str(key), out)
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int | float):
        out[prefix] = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            out[prefix] = float(value)  # "NaN", "inf" and numbers written as text
    return out


def metric_points(
    doc: object, run_id: str, exclude: set[str], when: float | None
) -> tuple[pa.Table, list[str]]:
    """One point per final metric value not already carried by a TSV history.

    The point sits at DVCLive's ``step`` (the last step logged) so it lines up with the
    histories; a plain metrics file has no step and gets step 0. ``step`` itself is a metric
    too, as ``dvc metrics show`` and ``dvc exp show`` list it (how far a run got).
    """
    values = flatten_metrics(doc)
    step = values.get("step")
    at = int(step) if step is not None and math.isfinite(step) else 0
    keys = [k for k in values if k not in exclude]
    table = pa.table(
        {
            "run_id": pa.array([run_id] * len(keys), pa.string()),
            "key": pa.array(keys, pa.string()),
            "step": pa.array([at] * len(keys), pa.int64()),
            "ts": pa.array([when] * len(keys), pa.float64()),
            "value": pa.array([values[k] for k in keys], pa.float64()),
        }
    )
    return table, keys


# -- TSV histories -------------------------------------------------------------------------------


def tsv_prefix(relpath: str) -> str:
    """The metric-name prefix of a TSV under plots/metrics: ``train/loss.tsv`` -> ``train/``."""
    head = posixpath.dirname(relpath)
    return f"{head}/" if head else ""


def header_keys(header: bytes, prefix: str) -> list[str]:
    """Metric names a TSV's header line declares (every column but step/timestamp)."""
    text = header.decode("utf-8", errors="replace").rstrip("\r\n")
    return [prefix + c for c in text.split("\t") if c and c not in _STEP_TIME]


@dataclass(frozen=True)
class TsvSource:
    """One TSV to parse: where its bytes are, whose run it is, and its metric-name prefix."""

    path: str
    run_id: str
    prefix: str
    origin: str  # the file to name in problems (a workspace path, or "rev:path" from git)


def parse_tsvs(
    sources: Sequence[TsvSource], report: ImportReport, failed: set[str] | None = None
) -> pa.Table:
    """Points of these TSVs, all parsed in one DuckDB scan (file by file if that fails).

    Keys get their folder prefix back (the column of ``train/loss.tsv`` is ``loss``), and
    DVCLive's millisecond timestamps become seconds. A file DuckDB cannot parse keeps its
    readable rows; one with none is named in the report and its origin added to ``failed``.
    """
    if not sources:
        return tabular.empty_points()
    tokens = {s.path: str(i) for i, s in enumerate(sources)}
    no_step: dict[str, int] = {}  # token -> values on rows without a usable step
    try:
        raw = tabular.csv_points(tokens, delimiter="\t", no_step=no_step)
    except tabular.ParseError:
        tables = []
        for s in sources:
            try:
                tables.append(
                    tabular.csv_points({s.path: tokens[s.path]}, delimiter="\t", no_step=no_step)
                )
                continue
            except tabular.ParseError as exc:
                error = str(exc).replace(s.path, Path(s.origin).name)
            cleaned, note = keep_readable_csv_rows(s.path, "\t")
            try:
                if cleaned is None:
                    raise tabular.ParseError(error)
                tables.append(
                    tabular.csv_points({cleaned: tokens[s.path]}, delimiter="\t", no_step=no_step)
                )
                if note:
                    report.problem(s.origin, note)
            except tabular.ParseError as again:
                report.problem(s.origin, f"not a readable TSV ({again})")
                if failed is not None:
                    failed.add(s.origin)
            finally:
                if cleaned is not None:
                    tabular.remove_quietly(cleaned)
        raw = pa.concat_tables(tables) if tables else tabular.empty_points()
    origin_of = {tokens[s.path]: s.origin for s in sources}
    for token, count in sorted(no_step.items()):
        values = f"{count} value{'s' if count != 1 else ''}"
        add_note(report, origin_of[token], f"{values} without a usable step skipped")
    if raw.num_rows == 0:
        return tabular.empty_points()
    mapping = pa.table(
        {
            "token": [tokens[s.path] for s in sources],
            "run": [s.run_id for s in sources],
            "prefix": [s.prefix for s in sources],
        }
    )
    con = tabular.connection()
    con.register("_tsv_raw", raw)
    con.register("_tsv_map", mapping)
    try:
        table = con.sql(
            "SELECT m.run AS run_id, m.prefix || r.key AS key, r.step, "
            "CASE WHEN r.ts > 1e11 THEN r.ts / 1000.0 ELSE r.ts END AS ts, r.value "
            "FROM _tsv_raw r JOIN _tsv_map m ON m.token = r.run_id"
        ).to_arrow_table()
    except duckdb.Error as exc:  # pragma: no cover - the SQL is fixed
        raise tabular.ParseError(" ".join(str(exc).split())) from exc
    finally:
        con.unregister("_tsv_raw")
        con.unregister("_tsv_map")
    return table.cast(raw.schema)


@dataclass
class TsvFile:
    """A TSV on disk that belongs to a run, with what the store remembers of it."""

    path: Path
    run_id: str
    prefix: str
    old: FileState | None
    source: str


@dataclass
class TsvBatch:
    points: pa.Table = field(default_factory=tabular.empty_points)
    states: list[FileState] = field(default_factory=list)
    keys: dict[str, set[str]] = field(default_factory=dict)  # run -> every TSV metric name
    new_keys: dict[str, set[str]] = field(default_factory=dict)  # run -> names read in full


def first_line(path: Path) -> bytes:
    with open_regular(path) as fh:
        return fh.readline(65536)


def read_tsv_files(files: Sequence[TsvFile], full_runs: set[str], report: ImportReport) -> TsvBatch:
    """New complete lines of these TSVs (all lines for ``full_runs`` and new files)."""
    batch = TsvBatch()
    sources: list[TsvSource] = []
    temps: list[str] = []
    try:
        for tf in files:
            change, st = classify(tf.path, tf.old)
            if st is None:
                continue
            try:
                header = first_line(tf.path)
            except OSError as exc:
                report.problem(tf.path, f"cannot read ({exc.strerror or exc})")
                continue
            keys = header_keys(header, tf.prefix)
            batch.keys.setdefault(tf.run_id, set()).update(keys)
            full = tf.run_id in full_runs or change in (Change.NEW, Change.REPLACED)
            if not full and change is Change.UNCHANGED:
                continue
            if full:
                batch.new_keys.setdefault(tf.run_id, set()).update(keys)
            offset = 0 if full else tf.old.offset  # type: ignore[union-attr]
            try:
                data, end = read_complete(tf.path, offset)
            except OSError as exc:
                report.problem(tf.path, f"cannot read ({exc.strerror or exc})")
                continue
            batch.states.append(file_state(tf.path, st, end, tf.run_id, tf.source))
            if offset > 0:
                if not data:
                    continue
                data = header + data
            elif end == 0:
                continue
            temp = tabular.bytes_to_tempfile(data, ".tsv")
            temps.append(temp)
            sources.append(TsvSource(temp, tf.run_id, tf.prefix, str(tf.path)))
        failed: set[str] = set()
        batch.points = parse_tsvs(sources, report, failed)
        # A TSV none of whose rows could be read is not recorded: the next scan says it again.
        batch.states = [s for s in batch.states if s.path not in failed]
    finally:
        for temp in temps:
            tabular.remove_quietly(temp)
    return batch


def write_tsv_run(
    store: Store, experiment: tuple[str, str, str, str | None, str], record: RunRecord,
    params: Mapping[str, object], tags: list[tuple[str, str, object]], *, full: bool,
    batch: TsvBatch, json_points: pa.Table, json_keys: Iterable[str], gone: list[str],
    states: list[FileState],
) -> int:  # fmt: skip
    """Write a run read from dvclive TSV histories and a metrics JSON, in one transaction.

    A full read replaces all of the run's points; otherwise only the keys read again (the JSON's
    and the TSV columns new since the last import) are, so a growing TSV only appends. The
    ``dvclive`` and ``dvc`` importers both write this way. Returns the points added.
    """
    run_id, source = record.id, record.source
    with store.transaction():
        store.put_experiments([experiment])
        store.put_runs(source, [record], [(run_id, k, v) for k, v in params.items()], tags)
        if full:
            store.delete_points([run_id])
        else:
            store.delete_points([run_id], set(json_keys) | batch.new_keys.get(run_id, set()))
        added = store.add_points(batch.points) + store.add_points(json_points)
        store.update_summaries([run_id], [batch.points, json_points])
        store.delete_files(gone)
        store.put_files(source, states)
    return added


def tsv_paths(plots_dir: Path) -> list[tuple[Path, str]]:
    """Every TSV under a plots/metrics folder with its metric-name prefix."""
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(plots_dir):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".tsv"):
                path = Path(dirpath) / name
                rel = path.relative_to(plots_dir).as_posix()
                out.append((path, tsv_prefix(rel)))
    return out


# -- the standalone DVCLive importer -------------------------------------------------------------


def is_dvclive_dir(dirpath: Path, dirnames: Iterable[str], filenames: Iterable[str]) -> bool:
    names = set(filenames)
    dirs = set(dirnames)
    if "metrics.json" not in names and "params.yaml" not in names:
        return False
    if "plots" in dirs and (dirpath / "plots" / "metrics").is_dir():
        return True
    return "metrics.json" in names and bool({"report.html", "report.md", "dvc.yaml"} & names)


def is_pipeline_folder(dirpath: Path, dirnames: Iterable[str], filenames: Iterable[str]) -> bool:
    """A DVC project's folder (``.dvc/``, or a ``dvc.yaml`` declaring ``stages:``), which DVCLive's
    output folder never is: DVCLive's own ``dvc.yaml`` holds metrics and plots only."""
    if ".dvc" in set(dirnames):
        return True
    if "dvc.yaml" not in set(filenames):
        return False
    try:
        doc = load_yaml(read_limited(dirpath / "dvc.yaml", MAX_DOC_BYTES, "dvc.yaml").decode())
    except (OSError, UnicodeDecodeError, YamlRefused, yaml.YAMLError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("stages"), dict)


def dvc_root_of(folder: Path) -> Path | None:
    """The DVC project (a folder with ``.dvc/``) that contains ``folder``, if any."""
    for parent in [folder, *folder.parents]:
        if (parent / ".dvc").is_dir():
            return parent
    return None


def read_doc(path: Path) -> object:
    """A params or metrics file read whole (a regular file within MAX_DOC_BYTES), parsed."""
    return parse_document(read_limited(path, MAX_DOC_BYTES, "a params or metrics file"), path.name)


def read_doc_file(path: Path, report: ImportReport) -> object:
    try:
        return read_doc(path)
    except FormatError as exc:
        report.problem(path, str(exc))
    except OSError as exc:
        report.problem(path, f"cannot read ({exc.strerror or exc})")
    return None


class DvcliveImporter:
    kind = KIND

    def __init__(self) -> None:
        self._in_project: dict[Path, bool] = {}

    def detect(self, dirpath: Path, dirnames: list[str], filenames: list[str]) -> Detection | None:
        if not is_dvclive_dir(dirpath, dirnames, filenames):
            return None
        parent = dirpath.parent
        if parent not in self._in_project:
            self._in_project[parent] = dvc_root_of(parent) is not None
        refs = [] if self._in_project[parent] else [SourceRef(KIND, dirpath)]
        # Inside a DVC project the project's importer reads this folder (workspace and
        # experiments); either way nobody else should read its TSVs as generic CSV logs. A
        # pipeline's own folder (its evaluate stage wrote metrics.json beside dvc.yaml) is
        # walked on: its runs, models and data are in its subfolders.
        prune = not is_pipeline_folder(dirpath, dirnames, filenames)
        return Detection(refs, claimed=set(filenames), prune=prune)

    def import_sources(self, store: Store, refs: Sequence[SourceRef], report: ImportReport) -> None:
        known = store.file_states()
        for ref in refs:
            try:
                self._import_dir(store, ref, known, report)
            except OSError as exc:
                report.problem(ref.location, f"cannot read DVCLive folder ({exc.strerror or exc})")
            except Exception as exc:  # one odd folder must not stop the others
                report.problem(
                    ref.location, f"DVCLive folder not imported ({type(exc).__name__}: {exc})"
                )

    def _import_dir(
        self, store: Store, ref: SourceRef, known: dict[str, FileState], report: ImportReport
    ) -> None:
        folder = ref.location
        source = str(folder)
        run_id = stable_id(KIND, store.id_path(folder))
        docs = [folder / "metrics.json", folder / "params.yaml"]
        tsvs = tsv_paths(folder / PLOTS_METRICS)
        files = [p for p in docs if p.exists()] + [p for p, _ in tsvs]
        changes = {str(p): classify(p, known.get(str(p))) for p in files}
        gone = [
            path for path, state in known.items() if state.run_id == run_id and path not in changes
        ]
        if not gone and all(c is Change.UNCHANGED for c, _ in changes.values()):
            return
        existed = store.run(run_id)
        # metrics.json and params.yaml are rewritten at every step and always read whole; only a
        # replaced or vanished TSV (a new Live() run in the same folder) forces a full re-read.
        full = (
            bool(gone)
            or any(changes[str(p)][0] is Change.REPLACED for p, _ in tsvs)
            or existed is None
            or existed.start_time is None  # no trusted start yet: only a whole read finds it
        )
        tsv_files = [TsvFile(p, run_id, prefix, known.get(str(p)), source) for p, prefix in tsvs]
        batch = read_tsv_files(tsv_files, {run_id} if full else set(), report)
        history_keys = batch.keys.get(run_id, set())

        params_doc = read_doc_file(folder / "params.yaml", report) if docs[1].exists() else None
        params = flatten_params(params_doc) if isinstance(params_doc, dict) else {}
        metrics_doc = read_doc_file(docs[0], report) if docs[0].exists() else None
        mtimes = [st.st_mtime for _, st in changes.values() if st is not None]
        updated = max(mtimes) if mtimes else None
        metrics_when = changes[str(docs[0])][1].st_mtime if str(docs[0]) in changes else None
        json_points, json_keys = metric_points(metrics_doc, run_id, history_keys, metrics_when)
        stamps = batch.points.column("ts") if full else None
        start = start_of_history(stamps, kept_start(store, existed), mtimes)
        name = folder.name
        if ref.root is not None:
            with contextlib.suppress(ValueError):
                name = folder.relative_to(ref.root).as_posix() or folder.name
        exp_id = stable_id(KIND, "experiment", store.id_path(folder.parent))
        exp_name = folder.parent.name or str(folder.parent)
        record = RunRecord(
            id=run_id,
            source_kind=KIND,
            location=source,
            name=name,
            status=Status.FINISHED,
            experiment_id=exp_id,
            native_id=None,
            start_time=start.start,
            end_time=updated,
            updated=updated,
            source=source,
        )
        states = list(batch.states)
        for path in docs:
            _, st = changes.get(str(path), (Change.DELETED, None))
            if st is not None:
                states.append(file_state(path, st, st.st_size, run_id, source))
        experiment = (exp_id, KIND, "", exp_name, exp_name)
        added = write_tsv_run(
            store, experiment, record, params, start.tags(run_id), full=full, batch=batch,
            json_points=json_points, json_keys=json_keys, gone=gone, states=states,
        )  # fmt: skip
        report.add(KIND, runs=0 if existed else 1, points=added)


IMPORTER = DvcliveImporter()

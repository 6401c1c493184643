"""Reading an Evidently 0.7 local workspace: projects, report snapshots and their data drift.

Evidently's local ``Workspace(path)`` keeps one folder per project, named by its id, holding
``metadata.json`` (id, name, description) and ``snapshots/<snapshot id>.json``: each snapshot a
whole serialised report. mltop reads those files as they are, with no Evidently installed, and
takes from each report what a drift history needs:

* per column, the ``ValueDrift`` metric result: the test chosen (its display name, and the
  registry id Evidently knows it by), the score (a p-value or a distance, as the test defines),
  the threshold, and the verdict of the test Evidently ran on it (status ``FAIL`` is drift);
* per snapshot, the ``DriftedColumnsCount`` result: how many columns drifted, their share, the
  share that makes the dataset drift and that test's verdict;
* from the report's drift table (a rendering, when the report has one) each column's type and
  the reference and current distributions Evidently drew, for the terminal's histograms.

Reports of other kinds may share a workspace: their metrics are left out and named in one line
per project. A damaged snapshot (cut short, another Evidently version's layout) is one line naming
its file and the other snapshots are still read. Files are opened as regular files only, with a
size bound, through :mod:`mltop.core.common.regular_files`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltop.core.common.regular_files import is_regular, read_limited

SNAPSHOT_LIMIT = 64 * 1024 * 1024  # a 7-column drift report is ~330 KB; wide ones grow with columns
METADATA_LIMIT = 1024 * 1024

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# Evidently 0.7.23's stat tests, display name -> registry name (evidently.legacy.calculations.
# stattests): a report stores only the display name, configuration and the CLI use the other.
STATTEST_IDS = {
    "Anderson-Darling": "anderson",
    "chi-square p_value": "chisquare",
    "Cramer-von Mises": "cramer_von_mises",
    "Energy-distance": "ed",
    "Epps-Singleton": "es",
    "Fisher's Exact test": "fisher_exact",
    "g_test": "g_test",
    "Hellinger distance": "hellinger",
    "Jensen-Shannon distance": "jensenshannon",
    "Kullback-Leibler divergence": "kl_div",
    "K-S p_value": "ks",
    "Mann-Whitney U-rank test": "mannw",
    "empirical_mmd": "empirical_mmd",
    "PSI": "psi",
    "t_test": "t_test",
    "Percentile text content drift": "perc_text_content_drift",
    "Absolute text content drift": "abs_text_content_drift",
    "Total-Variation-Distance": "TVD",
    "Wasserstein distance (normed)": "wasserstein",
    "Z-test p_value": "z",
}

_IDS = frozenset(STATTEST_IDS.values())

# The drift table names column types in short; the data definition in long.
_COLUMN_TYPES = {"num": "numerical", "cat": "categorical", "text": "text"}

_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


@dataclass(frozen=True)
class Distribution:
    """What Evidently drew for one side: bin edges and densities, or categories and counts."""

    x: tuple[float | str, ...]
    y: tuple[float, ...]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    # The test as the report names it: Evidently's display name when it chose the test, the
    # registry name when one was asked for (DataDriftPreset(method="psi") stores "psi").
    stattest: str
    stattest_id: str | None  # its registry name; None for a test this table does not know
    score: float  # a p-value or a distance, per the test
    threshold: float
    drift_detected: bool | None  # None when the report ran no test on it (include_tests=False)
    test_status: str | None
    column_type: str | None = None  # "numerical" / "categorical", from the drift table
    reference: Distribution | None = None
    current: Distribution | None = None


@dataclass(frozen=True)
class DatasetDrift:
    drifted_columns_count: float
    drifted_columns_share: float
    drift_share_threshold: float
    dataset_drift: bool | None  # the share test's verdict; None when the report ran no tests


@dataclass(frozen=True)
class DriftSnapshot:
    snapshot_id: str
    name: str
    timestamp: datetime
    metadata: dict[str, str]
    tags: tuple[str, ...]
    file: str  # relative to the workspace folder
    columns: dict[str, ColumnDrift]
    dataset: DatasetDrift | None

    @property
    def drifted_share(self) -> float | None:
        """The dataset's drifted share as Evidently counted it, else from the column verdicts."""
        if self.dataset is not None:
            return self.dataset.drifted_columns_share
        verdicts = [c.drift_detected for c in self.columns.values()]
        if not verdicts or None in verdicts:
            return None
        return sum(bool(v) for v in verdicts) / len(verdicts)


@dataclass(frozen=True)
class EvidentlyProject:
    project_id: str
    name: str
    description: str
    folder: str  # relative to the workspace folder
    snapshots: tuple[DriftSnapshot, ...]


@dataclass
class EvidentlyWorkspace:
    root: Path
    projects: list[EvidentlyProject] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


class _Bad(ValueError):
    """A snapshot that cannot be read; the message is the one line shown for its file."""


def _project_folders(root: Path) -> list[Path]:
    """Sub-folders named like Evidently project ids that hold a ``metadata.json``."""
    try:
        with os.scandir(root) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return [
        root / name
        for name in sorted(names)
        if _UUID.match(name) and is_regular(root / name / "metadata.json")
    ]


def is_project_id(name: str) -> bool:
    """Whether a folder name is an Evidently project id (a UUID): cheap, before any stat."""
    return bool(_UUID.match(name))


def is_evidently_workspace(folder: Path) -> bool:
    """Whether ``folder`` is the root of an Evidently local workspace (a project folder in it)."""
    return bool(_project_folders(folder))


def _load_json(path: Path, limit: int, what: str) -> Any:
    data = read_limited(path, limit, what)
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise _Bad(f"not UTF-8 text (byte {exc.start}): not an Evidently {what}") from None
    except json.JSONDecodeError as exc:
        cut = " (the file ends early: cut short?)" if exc.pos >= len(data.rstrip()) else ""
        raise _Bad(
            f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{cut}"
        ) from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"{what} is {type(value).__name__}, not a number")
    return float(value)


def _test_status(result: dict[str, Any]) -> str | None:
    tests = result.get("tests")
    if isinstance(tests, list) and tests and isinstance(tests[0], dict):
        status = tests[0].get("status")
        return status if isinstance(status, str) else None
    return None


def _params(result: dict[str, Any]) -> dict[str, Any]:
    try:
        params = result["metric_value_location"]["metric"]["params"]
    except (KeyError, TypeError):
        return {}
    return params if isinstance(params, dict) else {}


def _distribution(value: Any) -> Distribution | None:
    if not isinstance(value, dict):
        return None
    xs, ys = value.get("x"), value.get("y")
    if not isinstance(xs, list) or not isinstance(ys, list) or not ys:
        return None
    if not all(isinstance(y, int | float) and not isinstance(y, bool) for y in ys):
        return None
    x_ok = all(isinstance(x, int | float | str) and not isinstance(x, bool) for x in xs)
    return Distribution(tuple(xs), tuple(float(y) for y in ys)) if x_ok else None


def _drift_table(widgets: Any) -> dict[str, dict[str, Any]]:
    """Rows of the report's drift table by column name (type and distributions), if it has one."""
    rows: dict[str, dict[str, Any]] = {}
    for widget in widgets if isinstance(widgets, list) else ():
        data = widget.get("params", {}).get("data") if isinstance(widget, dict) else None
        if not isinstance(data, list) or not isinstance(widget.get("params"), dict):
            continue
        for row in data:
            if (
                isinstance(row, dict)
                and isinstance(row.get("column_name"), str)
                and "column_type" in row
            ):
                rows.setdefault(row["column_name"], row)
    return rows


def _column(
    result: dict[str, Any], params: dict[str, Any], table: dict[str, dict[str, Any]]
) -> ColumnDrift:
    column = params.get("column")
    method = params.get("method")
    if not isinstance(column, str) or not isinstance(method, str):
        raise _Bad("a ValueDrift result without its column or method")
    status = _test_status(result)
    row = table.get(column, {})
    kind = row.get("column_type")
    return ColumnDrift(
        column=column,
        stattest=method,
        stattest_id=STATTEST_IDS.get(method) or (method if method in _IDS else None),
        score=_number(result.get("value"), f"the drift score of {column!r}"),
        threshold=_number(params.get("threshold"), f"the threshold of {column!r}"),
        drift_detected=None if status is None else status == "FAIL",
        test_status=status,
        column_type=_COLUMN_TYPES.get(kind, kind) if isinstance(kind, str) else None,
        reference=_distribution(row.get("reference_distribution")),
        current=_distribution(row.get("current_distribution")),
    )


def _dataset(result: dict[str, Any], params: dict[str, Any]) -> DatasetDrift:
    def value(key: str) -> float:
        part = result.get(key)
        return _number(
            part.get("value") if isinstance(part, dict) else None, f"the drifted columns {key}"
        )

    status = _test_status(result)
    return DatasetDrift(
        drifted_columns_count=value("count"),
        drifted_columns_share=value("share"),
        drift_share_threshold=_number(params.get("drift_share"), "the drift share threshold"),
        dataset_drift=None if status is None else status == "FAIL",
    )


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Bad("no timestamp")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"timestamp {value[:40]!r} is not an ISO date and time") from None


def read_snapshot(path: Path, relative: str) -> tuple[DriftSnapshot, set[str]]:
    """One snapshot file's drift, and the metric types in it that are not drift (left out).

    Raises ``_Bad`` (one line) or ``OSError`` for a file that cannot be read as a snapshot.
    """
    doc = _load_json(path, SNAPSHOT_LIMIT, "report snapshot")
    if not isinstance(doc, dict):
        raise _Bad(f"a JSON {type(doc).__name__}, not an Evidently report snapshot")
    results = doc.get("metric_results")
    if not isinstance(results, dict):
        keys = ", ".join(sorted(map(str, doc))[:4]) or "none"
        raise _Bad(f"no metric_results (keys: {keys}): not a report snapshot of Evidently 0.7")
    table = _drift_table(doc.get("widgets"))
    columns: dict[str, ColumnDrift] = {}
    dataset: DatasetDrift | None = None
    others: set[str] = set()
    for result in results.values():
        params = _params(result) if isinstance(result, dict) else {}
        kind = params.get("type")
        if kind == _VALUE_DRIFT:
            drift = _column(result, params, table)
            columns[drift.column] = drift
        elif kind == _DRIFTED_COUNT and dataset is None:
            dataset = _dataset(result, params)
        else:
            others.add(str(kind).rpartition(":")[2] if kind else "a result without a metric type")
    metadata = doc.get("metadata")
    tags = doc.get("tags")
    snapshot = DriftSnapshot(
        snapshot_id=path.stem,
        name=doc["name"] if isinstance(doc.get("name"), str) else "",
        timestamp=_timestamp(doc.get("timestamp")),
        metadata={str(k): str(v) for k, v in metadata.items()}
        if isinstance(metadata, dict)
        else {},
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        file=relative,
        columns=columns,
        dataset=dataset,
    )
    return snapshot, others


def _sort_key(snapshot: DriftSnapshot) -> tuple[datetime, str]:
    # Evidently stamps a report with a naive local time unless told otherwise: order those as UTC
    # so a workspace mixing both still sorts instead of raising.
    ts = snapshot.timestamp
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC), snapshot.snapshot_id)


def _snapshot_files(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".json"))
    except OSError:
        return []
    return [folder / name for name in names]


def _read_project(
    root: Path, folder: Path, problems: list[tuple[Path, str]]
) -> EvidentlyProject | None:
    try:
        meta = _load_json(folder / "metadata.json", METADATA_LIMIT, "project metadata")
    except (OSError, _Bad) as exc:
        problems.append((folder / "metadata.json", f"{exc}; project not read"))
        return None
    if not isinstance(meta, dict):
        problems.append((folder / "metadata.json", "not a JSON object; project not read"))
        return None
    name = meta.get("name") if isinstance(meta.get("name"), str) else folder.name
    snapshots: list[DriftSnapshot] = []
    left_out: dict[str, int] = {}
    without_drift = 0
    for path in _snapshot_files(folder / "snapshots"):
        relative = str(path.relative_to(root))
        try:
            snapshot, others = read_snapshot(path, relative)
        except (OSError, _Bad) as exc:
            problems.append((path, str(exc)))
            continue
        for kind in others:
            left_out[kind] = left_out.get(kind, 0) + 1
        if snapshot.columns or snapshot.dataset is not None:
            snapshots.append(snapshot)
        else:
            without_drift += 1
    if left_out or without_drift:
        kinds = _listing(sorted(left_out))
        skipped = (
            f"; {without_drift} snapshot(s) hold no data drift at all" if without_drift else ""
        )
        problems.append(
            (
                folder,
                f"project {name!r}: metrics other than data drift not shown ({kinds}){skipped}",
            )
        )
    elif not snapshots and not problems_for(problems, folder):
        problems.append((folder, f"project {name!r} has no snapshots"))
    description = meta.get("description")
    return EvidentlyProject(
        project_id=str(meta.get("id") or folder.name),
        name=name,
        description=description if isinstance(description, str) else "",
        folder=folder.name,
        snapshots=tuple(sorted(snapshots, key=_sort_key)),
    )


def problems_for(problems: Iterable[tuple[Path, str]], folder: Path) -> bool:
    """Whether any problem names a file inside ``folder``."""
    return any(folder in path.parents for path, _ in problems)


def _listing(names: list[str], shown: int = 4) -> str:
    if not names:
        return "none"
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def read_workspace(root: Path) -> EvidentlyWorkspace:
    """Every project of the workspace at ``root`` with its drift snapshots, oldest first.

    Never raises on bad input: each unreadable project or snapshot is one problem naming its file.
    """
    workspace = EvidentlyWorkspace(root)
    for folder in _project_folders(root):
        project = _read_project(root, folder, workspace.problems)
        if project is not None:
            workspace.projects.append(project)
    workspace.projects.sort(key=lambda p: (p.name, p.project_id))
    return workspace

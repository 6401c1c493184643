"""What each monitor under a folder found, in a few figures: the pipelines view's evidence.

The pipelines view reads MLOps practice from files; a monitor is the record that the model in
production is watched. For each monitor found (:mod:`mltop.core.monitor.sources`) this computes
(or reads) its report and keeps the figures that view shows: the share of features that
drifted over the whole log and in the latest window (an Evidently workspace: its latest
snapshot), and the data quality flags (missing values, categories the reference never had,
values outside the reference's range on more than :data:`OUT_OF_RANGE_FLAG` of rows, schema
changes). A monitor that cannot be computed is a finding with its one-line error, never a
crash of the view.

A report of a big log takes seconds, so a view must not wait for it: each finding is kept for
the life of the process, keyed on the state (size and modification time) of the config, the
log's files and the reference's, and :func:`read_findings` with ``compute=False`` answers at
once: the kept finding while those files are unchanged, else a *pending* one ("computing…")
that the caller fills by calling it again with ``compute=True`` off its UI thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from mltop.core.common.formatting import fmt_value
from mltop.core.monitor.config import MonitorConfig, load_config
from mltop.core.monitor.evidently_workspace import read_workspace
from mltop.core.monitor.report import build_report
from mltop.core.monitor.results import MonitorReport
from mltop.core.monitor.source import MonitorError, find_files
from mltop.core.monitor.sources import MonitorSource, find_monitor_sources, relative

OUT_OF_RANGE_FLAG = 0.01
"""Values outside the reference's range are flagged above this share of rows: a reference of a
thousand rows rarely holds the extremes, so a few stray values are expected, not a defect."""


@dataclass(frozen=True)
class MonitorFinding:
    name: str  # the folder, relative to the folder searched
    kind: str  # "monitor" (.mltop/monitor.yaml) | "evidently" (a workspace project)
    what: str  # the file or project the figures come from
    drifted: int = 0
    tested: int = 0
    drift_share: float | None = None  # whole log (a monitor) or latest snapshot (Evidently)
    latest_share: float | None = None  # the latest window (a monitor)
    latest: str = ""  # that window's start, or the snapshot's date
    period: str = ""
    quality: tuple[str, ...] = ()
    quality_checked: bool = False  # Evidently drift reports hold no data quality
    error: str | None = None
    pending: bool = False  # its files changed (or it was never computed): computing

    def drift_text(self) -> str:
        if self.pending:
            return "computing…"
        if self.error is not None:
            return f"not computed: {self.error}"
        if self.drift_share is None:
            return "no feature could be tested"
        where = (
            "over the whole log" if self.kind == "monitor" else f"in the snapshot of {self.latest}"
        )
        text = (
            f"{self.drifted} of {self.tested} features drifted ({_pct(self.drift_share)}) {where}"
        )
        if self.kind == "monitor" and self.latest_share is not None:
            text += f", {_pct(self.latest_share)} on {self.latest}"
        return text

    def quality_text(self) -> str:
        if self.pending:
            return "computing…"
        if not self.quality_checked:
            return "not in these reports"
        return (
            "; ".join(self.quality)
            if self.quality
            else "no missing values, new categories or schema changes"
        )


def _pct(share: float) -> str:
    return fmt_value(share * 100, 3) + "%"


def _from_report(source: MonitorSource, report: MonitorReport, what: str) -> MonitorFinding:
    overall = report.overall
    dataset = overall.dataset_drift
    latest = next((w for w in reversed(report.windows) if w.n_rows), None)
    flags: list[str] = []
    for column, q in overall.quality.items():
        if q.missing_share and column in report.roles.features:
            flags.append(f"{column} {_pct(q.missing_share)} missing")
        if q.new_categories:
            names = ", ".join(sorted(q.new_categories, key=lambda k: -q.new_categories[k])[:3])
            flags.append(f"{column}: new categories {names} ({_pct(q.new_category_share or 0)})")
        if (q.out_of_range_share or 0) > OUT_OF_RANGE_FLAG:
            flags.append(
                f"{column} {_pct(q.out_of_range_share or 0)} outside the reference's range"
            )
    for change in report.schema_changes:
        flags.append(f"{change.column} {change.change} in {change.where}")
    return MonitorFinding(
        name=source.name,
        kind="monitor",
        what=what,
        drifted=dataset.drifted_count,
        tested=dataset.tested_count,
        drift_share=dataset.share,
        latest_share=latest.dataset_drift.share if latest else None,
        latest=latest.start[:10] if latest else "",
        period=f"{overall.start[:10]} … {overall.end[:10]}",
        quality=tuple(flags),
        quality_checked=True,
    )


State = tuple[tuple[str, int, int], ...]
_KEPT: dict[Path, tuple[State, MonitorFinding]] = {}
_KEPT_LOCK = threading.Lock()


def _state(config_path: Path, config: MonitorConfig | None) -> State:
    """Path, size and modification time of the config and of every file its report reads."""
    paths = [str(config_path)]
    if config is not None:
        for spec in (config.log, config.reference):
            if spec is None:
                continue
            try:
                paths.extend(find_files(spec).files)
            except MonitorError:
                paths.append(spec)  # missing: its absence is the state (the report says why)
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, -1, -1))
            continue
        out.append((path, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _monitor_finding(source: MonitorSource, compute: bool) -> MonitorFinding:
    """The finding of a configured monitor: kept while its files are unchanged, else computed
    (``compute``) or pending."""
    config_path = source.config
    assert config_path is not None
    what = relative(config_path, source.root)
    try:
        config: MonitorConfig | None = load_config(config_path)
    except MonitorError as exc:
        config, error = None, str(exc)
    else:
        error = None
    state = _state(config_path, config)
    with _KEPT_LOCK:
        kept = _KEPT.get(config_path)
    if kept is not None and kept[0] == state:
        return kept[1]
    if config is None:
        finding = MonitorFinding(source.name, "monitor", str(config_path), error=error)
    elif not compute:
        return MonitorFinding(source.name, "monitor", what, pending=True)
    else:
        try:
            finding = _from_report(source, build_report(config), what)
        except MonitorError as exc:
            finding = MonitorFinding(source.name, "monitor", str(config_path), error=str(exc))
    with _KEPT_LOCK:
        _KEPT[config_path] = (state, finding)
    return finding


def read_findings(root: Path, *, compute: bool = True) -> list[MonitorFinding]:
    """A finding per monitor under ``root``: each configured monitor, each workspace project.

    ``compute=False`` never runs a report: a monitor whose files changed since its finding was
    kept (or that has none yet) is returned pending."""
    findings: list[MonitorFinding] = []
    for source in find_monitor_sources(root):
        if source.kind == "monitor":
            findings.append(_monitor_finding(source, compute))
            continue
        workspace = read_workspace(source.path)
        for project in workspace.projects:
            if not project.snapshots:
                continue
            last = project.snapshots[-1]
            share = last.drifted_share
            drifted = sum(1 for c in last.columns.values() if c.drift_detected)
            findings.append(
                MonitorFinding(
                    name=source.name,
                    kind="evidently",
                    what=f"Evidently project {project.name!r}",
                    drifted=drifted,
                    tested=len(last.columns),
                    drift_share=share,
                    latest=last.timestamp.date().isoformat(),
                    period=(
                        f"{project.snapshots[0].timestamp.date().isoformat()} … "
                        f"{last.timestamp.date().isoformat()}"
                    ),
                )
            )
    return findings

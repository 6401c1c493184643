"""What each monitor under a folder found, in a few figures: the pipelines view's evidence.

The pipelines view reads MLOps practice from files; a monitor is the record that the model in
production is watched. For each monitor found (:mod:`mltop.core.monitor.sources`) this computes
(or reads) its report and keeps the figures that view shows: the share of features that
drifted over the whole log and in the latest window (an Evidently workspace: its latest
snapshot), and the data quality flags (missing values, categories the reference never had,
values outside the reference's range on more than :data:`OUT_OF_RANGE_FLAG` of rows, schema
changes). A monitor that cannot be computed is a finding with its one-line error, never a
crash of the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mltop.core.common.formatting import fmt_value
from mltop.core.monitor.config import load_config
from mltop.core.monitor.evidently_workspace import read_workspace
from mltop.core.monitor.report import build_report
from mltop.core.monitor.results import MonitorReport
from mltop.core.monitor.source import MonitorError
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

    def drift_text(self) -> str:
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


def read_findings(root: Path) -> list[MonitorFinding]:
    """A finding per monitor under ``root``: each configured monitor, each workspace project."""
    findings: list[MonitorFinding] = []
    for source in find_monitor_sources(root):
        if source.kind == "monitor":
            assert source.config is not None
            what = relative(source.config, source.root)
            try:
                report = build_report(load_config(source.config))
            except MonitorError as exc:
                findings.append(
                    MonitorFinding(source.name, "monitor", str(source.config), error=str(exc))
                )
                continue
            findings.append(_from_report(source, report, what))
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

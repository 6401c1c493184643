"""What the Monitor screen draws, made from a monitor report or an Evidently project.

Both kinds of source become one :class:`MonitorView`: one :class:`FeatureRow` per feature (its
test, statistic, threshold and verdict in the section shown, the statistic in every window for
the sparkline, missing and unseen shares) and the band of per-window series (prediction
quality, labelled share, fairness per group, drift share). A monitor report's sections are the
whole log (``-1``) and its windows; an Evidently project's are its snapshots (``-1``: the
latest). Nothing here touches Textual, so it is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text

from mltop.core.common.formatting import fit_text, fit_value
from mltop.core.common.sanitize import inert
from mltop.core.monitor import MonitorReport, Performance, Section
from mltop.core.monitor.evidently_workspace import ColumnDrift, EvidentlyProject

BLOCKS = "▁▂▃▄▅▆▇█"
DRIFT_STYLE = "bold red"
OK_STYLE = "green"
WARN_STYLE = "yellow"
DEGRADED = 0.05
"""A quality metric this far below the reference's is marked degraded (▼)."""
UNFAIR = 0.1
"""A parity or equalized-odds difference above this is marked (▲), Fairlearn's usual bar."""

ADVERB = {"hour": "hourly", "day": "daily", "week": "weekly"}
SHORT_TESTS = {
    "wasserstein": "Wasserstein",
    "jensenshannon": "Jensen-Shannon",
    "ks": "K-S p-value",
    "chisquare": "chi² p-value",
    "z": "Z-test p-value",
    "psi": "PSI",
    "kl_div": "K-L divergence",
    "hellinger": "Hellinger",
}


@dataclass(frozen=True)
class FeatureRow:
    name: str
    kind: str
    test: str  # the test's registry id
    test_display: str  # Evidently's name for it
    value: float | None
    threshold: float | None
    drifted: bool | None
    history: tuple[float | None, ...]
    missing: float | None = None
    unseen: float | None = None
    unseen_what: str = ""


@dataclass(frozen=True)
class BandLine:
    label: str
    values: tuple[float | None, ...]
    last: float | None
    flag: bool = False  # degraded or unfair: drawn with the mark and in colour
    mark: str = ""


@dataclass
class MonitorView:
    kind: str  # "monitor" | "evidently"
    title: str
    facts: str  # rows, reference, window, period
    labels: tuple[str, ...]  # one per window or snapshot
    section: int  # -1: whole log (monitor) or latest snapshot (evidently)
    rows: list[FeatureRow]
    summary: Text
    band: list[BandLine] = field(default_factory=list)
    versions: tuple[str, ...] = ()
    version: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def section_label(self) -> str:
        if self.section >= 0:
            return self.labels[self.section]
        if self.kind == "monitor":
            return "whole log"
        return f"latest ({self.labels[-1]})" if self.labels else "no snapshots"


def sparkline(values: Sequence[float | None], width: int, mark: int | None = None) -> Text:
    """``values`` as block characters scaled to their own range; the last ``width`` shown.

    A missing value is a space; ``mark`` (an index into ``values``) is underlined, so the window
    the table shows can be found in the line.
    """
    shown = list(values)[-width:] if width > 0 else []
    offset = len(values) - len(shown)
    finite = [v for v in shown if v is not None and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
    out = Text(no_wrap=True)
    for i, v in enumerate(shown):
        if v is None or not math.isfinite(v):
            char = " "
        elif hi == lo:
            char = BLOCKS[3]
        else:
            char = BLOCKS[min(7, int((v - lo) / (hi - lo) * 8))]
        out.append(char, style="reverse" if mark is not None and i + offset == mark else "")
    return out


def verdict(drifted: bool | None) -> Text:
    """The verdict in words, a symbol and a colour: the symbol carries it without colour."""
    if drifted is None:
        return Text("– n/a", style="dim")
    if drifted:
        return Text("✗ drift", style=DRIFT_STYLE)
    return Text("✓ ok", style=OK_STYLE)


def share_text(share: float | None, width: int = 6) -> Text:
    """A share as a percentage; above zero it is flagged (⚠, coloured)."""
    if share is None:
        return Text("—", style="dim")
    if share == 0:
        return Text("0%")
    return Text("⚠ " + fit_value(share * 100, width - 3) + "%", style=WARN_STYLE)


def test_name(test_id: str | None, display: str, width: int) -> str:
    """Evidently's display name when it fits, else mltop's short one, else cut visibly."""
    if len(display) <= width:
        return display
    return fit_text(SHORT_TESTS.get(test_id or "", display), width)


# -- a monitor report ------------------------------------------------------------------------


def _perf_value(p: Performance | None) -> float | None:
    if p is None:
        return None
    return p.f1 if p.task == "classification" else p.rmse


def _perf_name(report: MonitorReport) -> str:
    p = report.overall.performance or report.reference_performance
    return "rmse" if p is not None and p.task == "regression" else "f1"


def _section(report: MonitorReport, index: int) -> Section:
    return report.overall if index < 0 else report.windows[index]


def _performance(section: Section, version: str | None) -> Performance | None:
    if version is None:
        return section.performance
    return section.performance_by_version.get(version)


def from_report(
    report: MonitorReport, title: str, section: int = -1, version: str | None = None
) -> MonitorView:
    """The view of a monitor report at one section (``-1``: the whole log), for one version."""
    shown = _section(report, section)
    rows = []
    for feature in report.roles.features:
        drift = shown.drift.get(feature)
        quality = shown.quality.get(feature)
        unseen, what = None, ""
        if quality is not None:
            if quality.new_category_share is not None:
                unseen = quality.new_category_share
                what = ", ".join(
                    inert(k) for k, _ in sorted(quality.new_categories.items(), key=lambda i: -i[1])
                )
            else:
                unseen = quality.out_of_range_share
                what = "out of range" if unseen else ""
        history = tuple(
            (w.drift[feature].statistic if feature in w.drift else None) for w in report.windows
        )
        rows.append(
            FeatureRow(
                name=feature,
                kind=report.roles.kind(feature),
                test=drift.test if drift else "",
                test_display=drift.test_name if drift else "",
                value=drift.statistic if drift else None,
                threshold=drift.threshold if drift else None,
                drifted=drift.drifted if drift else None,
                history=history,
                missing=quality.missing_share if quality else None,
                unseen=unseen,
                unseen_what=what,
            )
        )
    versions = tuple(report.overall.performance_by_version)
    view = MonitorView(
        kind="monitor",
        title=title,
        facts=(
            f"{_file(report.log)} {report.overall.n_rows:,} rows · ref: {_file(report.reference)}"
            f" {report.reference_rows:,} · {ADVERB.get(report.window, report.window)} · "
            f"{_day(report.overall.start)} – "
            f"{_day(report.overall.end)}"
        ),
        labels=tuple(_day(w.start) if report.window != "hour" else w.start for w in report.windows),
        section=section,
        rows=rows,
        summary=_summary(report, shown, version),
        band=_band(report, version),
        versions=versions,
        version=version,
        notes=tuple(report.problems) + tuple(shown.notes),
    )
    return view


def _file(path: str) -> str:
    return inert(path.rstrip("/").rsplit("/", 1)[-1])


def _day(iso: str) -> str:
    return iso[:10]


def _summary(report: MonitorReport, shown: Section, version: str | None) -> Text:
    out = Text(no_wrap=True)
    dataset = shown.dataset_drift
    share = dataset.share
    style = DRIFT_STYLE if dataset.dataset_drift else ""
    mark = " ✗" if dataset.dataset_drift else ""
    out.append(
        f"drift: {dataset.drifted_count} of {dataset.tested_count} features "
        f"({'—' if share is None else fit_value(share * 100, 5) + '%'}){mark}",
        style=style,
    )
    perf = _performance(shown, version)
    ref = report.reference_performance
    name = _perf_name(report)
    value = _perf_value(perf)
    if value is not None:
        out.append(f"   {name}{'' if version is None else ' ' + inert(version)} ")
        out.append(fit_value(value, 6))
        ref_value = _perf_value(ref)
        if ref_value is not None:
            delta = value - ref_value
            worse = delta < -DEGRADED if name == "f1" else delta > DEGRADED * abs(ref_value)
            sign = "+" if delta >= 0 else "−"
            out.append(f" ({sign}{fit_value(abs(delta), 6)} vs ref)")
            if worse:
                out.append(" ▼", style=DRIFT_STYLE)
    if perf is not None and perf.labeled_share is not None:
        out.append(f"   labelled {fit_value(perf.labeled_share * 100, 4)}%")
    for attribute, fair in shown.fairness.items():
        for label, value in (
            ("parity diff", fair.demographic_parity_difference),
            ("eq. odds", fair.equalized_odds_difference),
        ):
            if value is None:
                continue
            out.append(f"   {label} ({inert(attribute)}) {fit_value(value, 6)}")
            if value > UNFAIR:
                out.append(" ▲", style=DRIFT_STYLE)
    return out


def _band(report: MonitorReport, version: str | None) -> list[BandLine]:
    windows = report.windows
    ref = _perf_value(report.reference_performance)
    name = _perf_name(report)
    lines: list[BandLine] = []

    def add(label: str, values: list[float | None], flag: bool = False, mark: str = "") -> None:
        last = next((v for v in reversed(values) if v is not None), None)
        lines.append(BandLine(label, tuple(values), last, flag, mark))

    perf = [_perf_value(_performance(w, version)) for w in windows]
    last = next((v for v in reversed(perf) if v is not None), None)
    degraded = (
        ref is not None
        and last is not None
        and (last < ref - DEGRADED if name == "f1" else last > ref * (1 + DEGRADED))
    )
    suffix = "" if version is None else f" {inert(version)}"
    add(f"{name}{suffix}", perf, degraded, "▼" if degraded else "")
    add(
        "labelled",
        [(p.labeled_share if (p := _performance(w, version)) else None) for w in windows],
    )
    attributes = list(report.overall.fairness)
    for attribute in attributes:
        groups = list(report.overall.fairness[attribute].groups)
        for group in groups:
            values = []
            for w in windows:
                fair = w.fairness.get(attribute)
                metrics = fair.groups.get(group) if fair else None
                values.append(metrics.accuracy if metrics else None)
            add(f"acc {inert(attribute)}={inert(group)}", values)
        dpd = [
            (f.demographic_parity_difference if (f := w.fairness.get(attribute)) else None)
            for w in windows
        ]
        eod = [
            (f.equalized_odds_difference if (f := w.fairness.get(attribute)) else None)
            for w in windows
        ]
        named = inert(attribute)
        for label, values in ((f"parity {named}", dpd), (f"eq.odds {named}", eod)):
            final = next((v for v in reversed(values) if v is not None), None)
            unfair = final is not None and final > UNFAIR
            add(label, values, unfair, "▲" if unfair else "")
    shares = [w.dataset_drift.share for w in windows]
    final_share = next((v for v in reversed(shares) if v is not None), None)
    drifted = final_share is not None and final_share >= 0.5
    add("drift share", shares, drifted, "✗" if drifted else "")
    return lines


# -- an Evidently project --------------------------------------------------------------------


def from_evidently(project: EvidentlyProject, workspace: str, section: int = -1) -> MonitorView:
    """The view of an Evidently project's snapshots at one of them (``-1``: the latest)."""
    snapshots = project.snapshots
    labels = tuple(s.timestamp.date().isoformat() for s in snapshots)
    shown = snapshots[section] if snapshots else None
    names: list[str] = []
    for snapshot in snapshots:
        names.extend(c for c in snapshot.columns if c not in names)
    rows = []
    for name in names:
        drift: ColumnDrift | None = shown.columns.get(name) if shown else None
        history = tuple((s.columns[name].score if name in s.columns else None) for s in snapshots)
        rows.append(
            FeatureRow(
                name=name,
                kind=(drift.column_type or "") if drift else "",
                test=(drift.stattest_id or "") if drift else "",
                test_display=drift.stattest if drift else "",
                value=drift.score if drift else None,
                threshold=drift.threshold if drift else None,
                drifted=drift.drift_detected if drift else None,
                history=history,
            )
        )
    summary = Text(no_wrap=True)
    if shown is not None and shown.dataset is not None:
        d = shown.dataset
        summary.append(
            f"drift: {d.drifted_columns_count:g} of {len(shown.columns)} columns "
            f"({fit_value(d.drifted_columns_share * 100, 5)}%)"
            + (" ✗ dataset drift" if d.dataset_drift else ""),
            style=DRIFT_STYLE if d.dataset_drift else "",
        )
        summary.append(f"   snapshot {inert(shown.name)}")
    shares = [s.drifted_share for s in snapshots]
    final = next((v for v in reversed(shares) if v is not None), None)
    flagged = final is not None and final >= 0.5
    band = [BandLine("drift share", tuple(shares), final, flagged, "✗" if flagged else "")]
    first, last = (labels[0], labels[-1]) if labels else ("—", "—")
    return MonitorView(
        kind="evidently",
        title=f"{inert(project.name)} (Evidently)",
        facts=f"{inert(workspace)} · {len(snapshots)} snapshots · {first} – {last}",
        labels=labels,
        section=section,
        rows=rows,
        summary=summary,
        band=band,
    )

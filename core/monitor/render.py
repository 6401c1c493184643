"""A monitor report as JSON, as Markdown, and as Rich tables for a terminal.

JSON holds everything (``report_json``): the whole log and every window, keyed by the columns'
own names, NaN and infinities spelled as strings so strict parsers accept it. The table and
Markdown forms hold the same tables: drift and quality per feature for the whole log,
prediction quality against the reference (and per model version), fairness per group, and one
line per window. Every name from the files is shown inert; every number goes through
:func:`mltop.core.common.formatting.fmt_value` (four significant digits, or the exact integer).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mltop.core.common.formatting import fit_text, fmt_value
from mltop.core.common.sanitize import inert
from mltop.core.monitor.results import MonitorReport, Performance, Section

DRIFT_MARK = "✗ drift"
OK_MARK = "ok"


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def report_json(report: MonitorReport) -> dict[str, Any]:
    """The whole report as plain JSON values (see the module docstring)."""
    doc = dataclasses.asdict(report)
    doc["windows"] = list(doc["windows"])
    return dict(_json_value(doc))


def _num(value: float | int | None) -> str:
    return fmt_value(None if value is None else float(value))


def _share(value: float | None) -> str:
    return "—" if value is None else fmt_value(value)


def _verdict(drifted: bool | None) -> str:
    return "—" if drifted is None else DRIFT_MARK if drifted else OK_MARK


def _window_label(report: MonitorReport, section: Section) -> str:
    text = section.start.replace("T", " ").removesuffix("Z")
    return text[:10] if report.window != "hour" else text[:16]


def tables(report: MonitorReport) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table the text forms show, cells already as text."""
    o = report.overall
    rows = []
    for feature in report.roles.features:
        d = o.drift.get(feature)
        q = o.quality.get(feature)
        extra = "—"
        if q is not None and q.out_of_range_share is not None:
            extra = _share(q.out_of_range_share)
        elif q is not None and q.new_category_share is not None:
            extra = _share(q.new_category_share)
        rows.append(
            [
                feature,
                d.test_name if d else "not tested",
                fmt_value(d.statistic, 6) if d and d.statistic is not None else "—",
                _num(d.threshold) if d else "—",
                _verdict(d.drifted if d else None),
                _share(q.missing_share) if q else "—",
                extra,
            ]
        )
    ds = o.dataset_drift
    title = (
        f"Drift, whole log against the reference: {ds.drifted_count} of {ds.tested_count} "
        f"features drifted (share {_share(ds.share)}; dataset drift at ≥ {_num(ds.threshold)}: "
        f"{'yes' if ds.dataset_drift else 'no'}); unseen: share of rows outside the "
        "reference's range, or with categories it never had"
    )
    header = ["feature", "test", "statistic", "threshold", "verdict", "missing", "unseen"]
    # (window table: "drift" is the share of drifted features, "missing" the largest share)
    yield title, header, rows

    if o.performance is not None:
        metrics = _metric_names(o.performance)
        versions = list(o.performance_by_version)
        header = ["metric", "reference", "whole log", "change", *versions]
        rows = []
        ref = report.reference_performance
        for m in ("labeled_share", *metrics):
            cur = getattr(o.performance, m)
            base = getattr(ref, m) if ref is not None and m != "labeled_share" else None
            change = "—" if cur is None or base is None else fmt_value(cur - base)
            if change not in ("—", "0") and not change.startswith("-"):
                change = "+" + change
            per_version = [_num(getattr(o.performance_by_version[v], m)) for v in versions]
            rows.append([m.replace("_", " "), _num(base), _num(cur), change, *per_version])
        yield (
            "Prediction quality on labelled rows (change: whole log minus reference)",
            header,
            rows,
        )

    if o.performance is not None and o.performance.per_class:
        header = ["class", "labelled", "predicted", "precision", "recall", "f1", "ROC AUC"]
        rows = [
            [
                c.label,
                _num(c.support),
                _num(c.predicted),
                _num(c.precision),
                _num(c.recall),
                _num(c.f1),
                _num(c.roc_auc),
            ]
            for c in o.performance.per_class.values()
        ]
        yield (
            "Per class, whole log (one class against the rest; the macro average above)",
            header,
            rows,
        )

    for attribute, fair in o.fairness.items():
        header = ["group", "rows", "labelled", "accuracy", "selection", "TPR", "FPR", "ROC AUC"]
        rows = [
            [
                g.group,
                _num(g.rows),
                _num(g.count),
                _num(g.accuracy),
                _num(g.selection_rate),
                _num(g.tpr),
                _num(g.fpr),
                g.roc_auc_note or _num(g.roc_auc),
            ]
            for g in fair.groups.values()
        ]
        title = (
            f"Fairness by {attribute}: demographic parity difference "
            f"{_num(fair.demographic_parity_difference)} (all rows "
            f"{_num(fair.demographic_parity_difference_all_rows)}), equalized odds difference "
            f"{_num(fair.equalized_odds_difference)}"
        )
        yield title, header, rows

    quality_key = "f1"
    if o.performance is not None and o.performance.task == "regression":
        quality_key = "rmse"
    header = ["window", "rows", "drift", "missing", quality_key]
    header += [f"dpd {a}" for a in report.roles.sensitive]
    header.append("drifted")
    rows = []
    for w in report.windows:
        worst = [
            q.missing_share
            for c, q in w.quality.items()
            if c in report.roles.features and q.missing_share is not None
        ]
        perf = getattr(w.performance, quality_key) if w.performance else None
        drifted = sorted(c for c, d in w.drift.items() if d.drifted)
        row = [
            _window_label(report, w),
            _num(w.n_rows),
            _share(w.dataset_drift.share),
            _share(max(worst) if worst else None),
            _num(perf),
        ]
        for a in report.roles.sensitive:
            fair = w.fairness.get(a)
            row.append(_num(fair.demographic_parity_difference if fair else None))
        row.append(", ".join(drifted) if drifted else "—")
        rows.append(row)
    yield f"By {report.window}", header, rows


def _metric_names(perf: Performance) -> tuple[str, ...]:
    if perf.task == "regression":
        return ("mae", "rmse", "r2")
    return ("accuracy", "precision", "recall", "f1", "roc_auc")


def summary(report: MonitorReport) -> str:
    n_windows = sum(1 for w in report.windows if w.n_rows)
    return (
        f"log {report.log}: {report.overall.n_rows:,} rows in {n_windows} {report.window} windows; "
        f"reference {report.reference}: {report.reference_rows:,} rows"
    )


_TEXT_COLUMNS = ("feature", "test", "drifted", "group", "metric")
_MIN_TEXT = 8


def column_widths(header: list[str], rows: list[list[str]], width: int | None) -> list[int]:
    """Each column's width: numbers whole, text columns shortened (longest first) to fit.

    A table of n columns takes its widths plus 3n + 1 cells of borders and padding. Text
    cells that do not fit end in ``…``; numbers and verdicts keep their full width, so when
    even the shortest text does not make the table fit, it is wider than the console.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    if width is None:
        return widths
    room = width - (3 * len(header) + 1)
    text = [i for i, h in enumerate(header) if h in _TEXT_COLUMNS]
    while sum(widths) > room:
        candidates = [i for i in text if widths[i] > max(_MIN_TEXT, len(header[i]) if i else 0)]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def render_table(report: MonitorReport, width: int | None = None) -> RenderableType:
    """Rich tables fitting ``width`` cells: long names end in ``…``, numbers are never cut."""
    parts: list[RenderableType] = [Text(inert(summary(report)))]
    for title, header, rows in tables(report):
        widths = column_widths(header, rows, width)
        table = Table(title=Text(inert(title)), title_justify="left", expand=False)
        for name, size in zip(header, widths, strict=True):
            table.add_column(
                fit_text(name, size),
                justify="left" if name in (*_TEXT_COLUMNS, "window", "verdict") else "right",
                no_wrap=True,
                width=size,
            )
        for row in rows:
            table.add_row(*(_cell(fit_text(c, n)) for c, n in zip(row, widths, strict=True)))
        parts.append(table)
    for change in report.schema_changes:
        parts.append(Text(inert(_schema_line(change)), style="yellow"))
    return Group(*parts)


def _cell(text: str) -> Text:
    cell = Text(inert(text))
    if text.startswith("✗"):
        cell.stylize("bold red")
    return cell


def _schema_line(change: Any) -> str:
    if change.change == "added":
        return f"schema: {change.column!r} is new in {change.where} ({change.current_type})"
    if change.change == "removed":
        return f"schema: {change.column!r} is missing from {change.where}"
    return (
        f"schema: {change.column!r} changed type in {change.where} "
        f"({change.reference_type} -> {change.current_type})"
    )


def render_markdown(report: MonitorReport) -> str:
    """The same tables as GitHub Markdown (for a CI summary or a pull-request comment)."""
    lines = [f"## Monitor: {_md(report.log)}", "", _md(summary(report)), ""]
    for title, header, rows in tables(report):
        lines += [f"### {_md(title)}", ""]
        lines.append("| " + " | ".join(_md(h) for h in header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += [f"- {_md(_schema_line(c))}" for c in report.schema_changes]
    lines += [f"- {_md(p)}" for p in report.problems]
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    return inert(text).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")

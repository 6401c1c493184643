"""A :class:`~mltop.core.compare.diff.Comparison` as a terminal table, JSON, or Markdown.

Run names, param values and metric keys come from outside and are shown as data: the table is
built from ``rich.text.Text`` (never markup) with control characters made visible
(:func:`mltop.core.common.sanitize.inert`), and Markdown escapes everything that could start a link,
emphasis, HTML or a new table cell, so a run called ``a|b`` or ``<img ...>`` cannot change a
pull-request comment's layout.

JSON has no NaN or infinity; they are written as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (as MLflow's REST API does), and the output is strict JSON.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from mltop.core.common.formatting import fmt_value, non_finite
from mltop.core.common.sanitize import inert, inert_json
from mltop.core.compare.diff import Cell, Comparison, GateFailure, Row, Verdict
from mltop.core.compare.directions import Direction

#: Row names longer than this end in "…" in the terminal table.
KEY_MAX = 40

VERDICT_STYLE = {
    Verdict.BETTER: "green",
    Verdict.WORSE: "red",
    Verdict.CHANGED: "yellow",
    Verdict.MISSING: "dim",
    Verdict.ADDED: "cyan",
    Verdict.SAME: "dim",
    Verdict.BASELINE: "",
}


def fmt_delta(delta: float | None) -> str:
    """A signed change: ``+0.031``, ``-1.2e-05``, ``nan``, ``+inf``; empty when undefined."""
    if delta is None:
        return ""
    if math.isnan(delta):
        return "nan"
    text = fmt_value(delta)
    return text if text.startswith("-") else "+" + text


def fmt_pct(pct: float | None) -> str:
    """A signed percent change: ``+24%``, ``-1.1%``, ``+0.04%``; empty when undefined."""
    if pct is None:
        return ""
    if (spelled := non_finite(pct)) is not None:
        return f"{'+' if spelled == 'inf' else ''}{spelled}%"
    magnitude = abs(pct)
    if magnitude >= 1e4:
        body = f"{pct:+.2e}"
    elif magnitude >= 10 or magnitude == 0:
        body = f"{pct:+.0f}"
    elif magnitude >= 0.1:
        body = f"{pct:+.1f}"
    else:
        body = f"{pct:+.2g}"
    return body + "%"


def change_text(cell: Cell) -> str:
    """``-0.011 -1.1%`` for a changed number, a word when there is no number to show, and
    nothing for the baseline or an unchanged value (shared with the TUI's compare screen)."""
    if cell.verdict in (Verdict.BASELINE, Verdict.SAME):
        return ""
    if cell.verdict is Verdict.MISSING:
        return "missing"
    if cell.verdict is Verdict.ADDED:
        return "new"
    if cell.delta is not None and math.isnan(cell.delta):
        return "nan"
    parts = [p for p in (fmt_delta(cell.delta), fmt_pct(cell.pct)) if p]
    return " ".join(parts)


def value_text(row: Row, cell: Cell) -> str:
    """A cell's value, inert; ``@step`` is added when the runs' last steps differ."""
    if cell.value is None:
        return "—"
    if isinstance(cell.value, str):
        return inert(cell.value)
    text = fmt_value(cell.value)
    if row.steps_differ and cell.step is not None:
        text += f"@{cell.step}"
    return text


def best_text(row: Row, cell: Cell) -> str:
    """``0.129@29`` (best value at its step), or ``min..max`` for a metric with no direction."""
    if not cell.present:
        return "—"
    if row.direction is Direction.NEUTRAL:
        return f"{fmt_value(cell.min)}..{fmt_value(cell.max)}"
    if cell.best is None:
        return "—"
    return f"{fmt_value(cell.best)}@{cell.best_step}"


def _key_label(row: Row) -> str:
    arrow = row.direction.arrow
    return f"{inert(row.key)} {arrow}" if arrow else inert(row.key)


# -- terminal table ------------------------------------------------------------------------------


def _header(comparison: Comparison, index: int) -> Text:
    column = comparison.runs[index]
    text = Text(inert(column.label), style="bold")
    role = "baseline · " if index == comparison.baseline else ""
    text.append(f"\n{role}{inert(column.run.source_kind)}", style="dim")
    return text


def _tables(
    comparison: Comparison, rows: Sequence[Row], kind: str, width: int | None
) -> list[Table]:
    """One table of ``rows`` per group of run columns that fits ``width`` whole."""
    runs = list(range(len(comparison.runs)))
    if width is None:
        return [_table(comparison, rows, kind, runs)]
    groups: list[list[int]] = []
    current: list[int] = []
    for run in runs:
        wider = _table(comparison, rows, kind, [*current, run])
        if current and _measure(wider) > width:
            groups.append(current)
            current = [run]
        else:
            current.append(run)
    groups.append(current)
    return [_table(comparison, rows, kind, group) for group in groups]


def _measure(table: Table) -> int:
    """The width ``table`` takes when nothing in it is shortened."""
    console = Console(file=io.StringIO(), width=1_000_000)
    return Measurement.get(console, console.options, table).maximum


def _table(comparison: Comparison, rows: Sequence[Row], kind: str, runs: Sequence[int]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column(kind, no_wrap=True, max_width=KEY_MAX, overflow="ellipsis")
    for i in runs:
        table.add_column(_header(comparison, i), no_wrap=True)
    with_best = kind == "metric"
    if with_best:
        table.add_column("best-of-history", no_wrap=True)
    for row in rows:
        cells: list[Text] = [Text(_key_label(row), style="" if row.differs else "dim")]
        for cell in (row.cells[i] for i in runs):
            text = Text(value_text(row, cell))
            if row.kind == "param" and cell.verdict is Verdict.CHANGED:
                text.stylize("yellow")
            change = change_text(cell) if row.kind == "metric" else ""
            if change:
                text.append("  ")
                text.append(change, style=VERDICT_STYLE[cell.verdict])
            elif cell.verdict in (Verdict.MISSING, Verdict.ADDED) and cell.value is None:
                text.stylize("dim")
            cells.append(text)
        if with_best:
            best = " │ ".join(best_text(row, row.cells[i]) for i in runs)
            prefix = {Direction.MIN: "min ", Direction.MAX: "max "}.get(row.direction, "range ")
            cells.append(Text(prefix + best, style="dim"))
        table.add_row(*cells)
    return table


def render_table(
    comparison: Comparison, failures: Sequence[GateFailure] = (), width: int | None = None
) -> RenderableType:
    """The comparison for a terminal: a headline, the metrics table, then the params table.

    With a terminal ``width``, run columns that do not fit beside each other go on to a further
    table below (the row names repeated) rather than being squeezed until every value reads
    ``0…``; without one, each table holds every run.
    """
    parts: list[RenderableType] = [Text(comparison.headline(), style="bold")]
    base = comparison.baseline_column
    info = Text("baseline: ", style="dim")
    info.append(inert(base.label))
    if comparison.only_changed:
        info.append(
            f" · only differences ({len(comparison.rows)} of {comparison.total_rows} rows)",
            style="dim",
        )
    parts.append(info)
    metrics, params = comparison.metrics, comparison.params
    for rows, kind in ((metrics, "metric"), (params, "param")):
        if rows:
            for table in _tables(comparison, rows, kind, width):
                parts += [Text(""), table]
    if failures:
        parts.append(Text(""))
        parts += [Text(f"regression: {inert(str(f))}", style="red") for f in failures]
    return Group(*parts)


# -- JSON -----------------------------------------------------------------------------------------


def json_number(value: float | None) -> float | str | None:
    """A float for strict JSON: NaN and infinities become strings."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _cell_json(row: Row, cell: Cell, run_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"run": run_id}
    if row.kind == "param":
        out |= {"value": cell.value, "number": json_number(cell.number)}
    else:
        out["value"] = json_number(cell.number)
    out |= {
        "delta": json_number(cell.delta),
        "pct": json_number(cell.pct),
        "verdict": cell.verdict.value,
    }
    if row.kind == "metric" and cell.present:
        out |= {
            "step": cell.step,
            "count": cell.count,
            "min": json_number(cell.min),
            "min_step": cell.min_step,
            "max": json_number(cell.max),
            "max_step": cell.max_step,
            "best": json_number(cell.best),
            "best_step": cell.best_step,
        }
    return out


def _row_json(comparison: Comparison, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"key": row.key, "differs": row.differs}
    if row.kind == "metric":
        out |= {
            "direction": row.direction.value,
            "direction_source": row.direction_source,
            "steps_differ": row.steps_differ,
        }
    out["cells"] = [
        _cell_json(row, cell, col.id) for cell, col in zip(row.cells, comparison.runs, strict=True)
    ]
    return out


def comparison_json(
    comparison: Comparison, failures: Sequence[GateFailure] | None = None
) -> dict[str, Any]:
    """The comparison as plain data (cells in the order of ``runs``)."""
    out: dict[str, Any] = {
        "summary": comparison.headline(),
        "identical": comparison.identical,
        "baseline": comparison.baseline_column.id,
        "only_changed": comparison.only_changed,
        "metrics_regex": comparison.metrics_regex,
        "total_rows": comparison.total_rows,
        "changed_rows": comparison.changed_rows,
        "runs": [
            {
                "id": col.id,
                "name": col.run.name,
                "label": col.label,
                "source": col.run.source_kind,
                "location": col.run.location,
                "status": col.run.status,
                "experiment": col.run.experiment,
                "start_time": json_number(col.run.start_time),
                "baseline": i == comparison.baseline,
            }
            for i, col in enumerate(comparison.runs)
        ],
        "params": [_row_json(comparison, r) for r in comparison.params],
        "metrics": [_row_json(comparison, r) for r in comparison.metrics],
    }
    if failures is not None:
        out["gate"] = {
            "passed": not failures,
            "failures": [
                {"gate": f.gate.text, "key": f.key, "run": f.run, "message": f.message}
                for f in failures
            ],
        }
    return out


def render_json(comparison: Comparison, failures: Sequence[GateFailure] | None = None) -> str:
    return inert_json(comparison_json(comparison, failures), indent=2, allow_nan=False) + "\n"


# -- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#!])")


def md_escape(text: str) -> str:
    """Text that renders as itself in a GitHub Markdown table cell."""
    text = inert(text).replace("&", "&amp;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_change(cell: Cell) -> str:
    if cell.verdict is Verdict.SAME:
        return "same"
    text = change_text(cell)
    pct = fmt_pct(cell.pct)
    if pct and text.endswith(" " + pct):
        text = f"{text[: -len(pct) - 1]} ({pct})"
    if cell.verdict in (Verdict.BETTER, Verdict.WORSE):
        text += f" {cell.verdict.value}"
    return text


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(comparison: Comparison, failures: Sequence[GateFailure] | None = None) -> str:
    """A pull-request comment: a headline, a metrics table with changes, a params table."""
    base = comparison.baseline
    labels = [md_escape(c.label) for c in comparison.runs]
    others = [i for i in range(len(comparison.runs)) if i != base]
    lines = [f"**{md_escape(comparison.headline())}**", ""]
    lines.append(f"Baseline: {labels[base]}")
    if comparison.only_changed and comparison.hidden_rows:
        lines.append(
            f"Only differences shown ({len(comparison.rows)} of {comparison.total_rows} rows)."
        )
    if failures:
        lines += ["", f"**Regressions ({len(failures)})**", ""]
        lines += [f"- {md_escape(str(f))}" for f in failures]
    elif failures is not None:
        lines += ["", "No regressions beyond the thresholds."]

    metrics = comparison.metrics
    if metrics:
        header = ["Metric", f"{labels[base]} (baseline)"]
        align = ["---", "---:"]
        for i in others:
            header += [labels[i], "Change"]
            align += ["---:", "---"]
        lines += ["", _md_row(header), _md_row(align)]
        for row in metrics:
            cells = [
                md_escape(row.key) + (f" {row.direction.arrow}" if row.direction.arrow else "")
            ]
            cells.append(value_text(row, row.cells[base]))
            for i in others:
                cells += [value_text(row, row.cells[i]), _md_change(row.cells[i])]
            lines.append(_md_row(cells))

    params = comparison.params
    if params:
        header = ["Param", f"{labels[base]} (baseline)", *(labels[i] for i in others)]
        lines += ["", _md_row(header), _md_row(["---"] * len(header))]
        for row in params:
            cells = [md_escape(row.key)]
            for i in [base, *others]:
                cell = row.cells[i]
                text = md_escape(cell.value) if isinstance(cell.value, str) else "—"
                if cell.verdict is Verdict.CHANGED or cell.verdict is Verdict.ADDED:
                    text = f"**{text}**"
                cells.append(text)
            lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"


__all__ = [
    "best_text",
    "change_text",
    "comparison_json",
    "fmt_delta",
    "fmt_pct",
    "json_number",
    "md_escape",
    "render_json",
    "render_markdown",
    "render_table",
    "value_text",
]

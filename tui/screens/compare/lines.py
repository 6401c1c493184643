"""What the compare screen says in words: its header, headline, empty note, cell line, chart title.

These are pure functions of a :class:`~mltop.core.compare.diff.Comparison` and the screen's
settings, apart from the screen that owns the widgets, workers and keys: the wording (what a
cell's verdict reads, which of the runs are on screen) changes without touching that wiring.
Every run label and key in them is data, so each goes through ``inert``.
"""

from __future__ import annotations

from rich.text import Text

from mltop.core.common.formatting import fmt_value
from mltop.core.common.sanitize import inert
from mltop.core.compare.diff import Comparison, Row, Verdict
from mltop.core.compare.diff_format import best_text, change_text, value_text
from mltop.core.compare.directions import Direction
from mltop.tui.widgets.compare_table import key_label
from mltop.tui.widgets.overlay_chart import run_colour

AXIS_NAMES = {"step": "step", "time": "time", "relative": "time since start"}


def header_text(
    title_word: str, run_count: int, comparison: Comparison | None, x_kind: str,
    smoothing: float, width: int,
) -> Text:  # fmt: skip
    """The top line: what is compared and against which run, then the chart's x and smoothing
    at the right edge when they fit."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(f" {title_word} ", style="bold reverse")
    header.append(f"  {run_count} runs")
    if comparison is not None:
        header.append("   baseline: ", style="dim")
        header.append(inert(comparison.baseline_column.label), style="bold")
        header.append("   only differences: ", style="dim")
        shown = len(comparison.rows)
        if comparison.only_changed:
            header.append(f"on ({shown} of {comparison.total_rows} rows)")
        else:
            header.append(f"off ({comparison.total_rows} rows)")
    right = Text(no_wrap=True)
    right.append("x: ", style="dim")
    right.append(x_kind)
    right.append("  smoothing ", style="dim")
    right.append(f"{smoothing:g}" if smoothing else "off")
    right.append(" ")
    room = width - header.cell_len - right.cell_len
    if room >= 2:
        header.append(" " * room)
        header.append_text(right)
    return header


def headline_text(comparison: Comparison, first: int, last: int, total: int) -> Text:
    """The line above the table: which runs are on screen (of ``total``), then the verdict."""
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    if total and (first > 1 or last < total):
        # Said first, so a narrow terminal never cuts it: the other runs are a scroll away.
        shown = f"run {first}" if first == last else f"runs {first}–{last}"
        arrows = ("←" if first > 1 else "") + ("→" if last < total else "")
        line.append(f"{shown} of {total} on screen, {arrows} for the rest", style="bold")
        line.append("  ·  ")
    if comparison.identical:
        line.append(comparison.headline(), style="bold")
        line.append(" — every param and metric is the same", style="dim")
    else:
        line.append(comparison.headline())
        if comparison.only_changed and comparison.hidden_rows:
            line.append(f"   {comparison.hidden_rows} equal rows hidden (o shows them)",
                        style="dim")  # fmt: skip
    return line


def empty_text(comparison: Comparison) -> Text:
    """What the table says when it shows no row."""
    text = Text(no_wrap=True)
    if comparison.identical:
        text.append(f"no differences between the {len(comparison.runs)} runs", "bold")
        if comparison.total_rows:
            text.append(f"  (o shows all {comparison.total_rows} rows)", style="dim")
    else:
        text.append("these runs have no params or metrics", style="dim")
    return text


def cell_text(comparison: Comparison, row: Row, run: int | None) -> Text:
    """The cursor's row (``run`` None: the key column) or cell, in full."""
    text = Text(" ", no_wrap=True, overflow="ellipsis")
    text.append(("" if row.kind == "metric" else "param ") + key_label(row), style="bold")
    if run is None:
        text.append(row_summary(row, comparison), style="dim")
    else:
        text.append("  ·  ")
        text.append(inert(comparison.runs[run].label), style=f"bold {run_colour(run)}")
        text.append_text(cell_summary(row, run, comparison))
    return text


def row_summary(row: Row, comparison: Comparison) -> str:
    present = row.present_in
    where = "" if present == len(comparison.runs) else f", in {present} of the runs"
    if row.kind == "metric":
        goal = {Direction.MIN: "lower is better", Direction.MAX: "higher is better"}.get(
            row.direction, "no known direction"
        )
        state = "differs" if row.differs else "same in every run"
        return f"  ·  {goal}  ·  {state}{where}"
    return f"  ·  {'differs' if row.differs else 'same in every run'}{where}"


def cell_summary(row: Row, run: int, comparison: Comparison) -> Text:
    cell = row.cells[run]
    out = Text()
    if not cell.present:
        out.append(": — (no value)", style="dim")
        return out
    out.append(": ")
    out.append(value_text(row, cell) if row.kind == "param" else fmt_value(cell.number))
    if row.kind == "metric" and cell.step is not None:
        out.append(f" at step {cell.step}", style="dim")
    if cell.verdict is Verdict.BASELINE:
        out.append("  (baseline)", style="dim")
    else:
        change = change_text(cell)
        if change and row.kind == "metric":
            out.append(f"  {change}")
        verdict = cell.verdict.value
        base = inert(comparison.baseline_column.label)
        out.append(f"  {verdict} vs {base}", style="dim")
    if row.kind == "metric":
        out.append(f"  ·  best {best_text(row, cell)}", style="dim")
        out.append(
            f"  min {fmt_value(cell.min)}@{cell.min_step}  max {fmt_value(cell.max)}"
            f"@{cell.max_step}  ·  {cell.count or 0:,} points",
            style="dim",
        )
    return out


def chart_titles(
    metric: str | None, comparison: Comparison | None, metric_keys: list[str], x_kind: str,
    smoothing: float,
) -> tuple[str | Text, str]:  # fmt: skip
    """The chart's border title and subtitle."""
    if metric is None:
        return " overlay ", ""
    row = comparison.find(metric) if comparison is not None else None
    arrow = f" {row.direction.arrow}" if row is not None and row.direction.arrow else ""
    # A Text, not a str: a str title is read as markup, and metric names are data.
    title = Text(f" {inert(metric)}{arrow} over {AXIS_NAMES[x_kind]} ")
    position = (
        f"metric {metric_keys.index(metric) + 1} of {len(metric_keys)}"
        if metric in metric_keys
        else ""
    )
    shown = f"smoothing {smoothing:g}" if smoothing else "no smoothing"
    return title, f" {shown} · {position} "

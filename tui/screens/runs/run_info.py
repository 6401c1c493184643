"""The run detail's info panel: overview grid, params and tags lists, metric summaries.

Apart from the screen because these are pure renderables built from a :class:`RunDetails` and a
width (the fitting of names and values to the panel), while the screen keeps loading, charts,
focus and keys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from mltop.core.common.formatting import fit_text, fit_value, fmt_clock, fmt_duration, fmt_value
from mltop.core.common.sanitize import inert
from mltop.core.entities import MetricSummary, Run
from mltop.core.runs.runs_view import STATUS_SYMBOLS, metric_goal, stale_after
from mltop.core.runs.system_keys import PREFIX, is_system_key
from mltop.tui.messages import RunDetails


def run_state(run: Run, now: float | None = None) -> str:
    """The status word shown for a run (``stale`` for a silent RUNNING one)."""
    state = (run.status or "FINISHED").lower()
    seen = run.updated if run.updated is not None else run.start_time
    now = time.time() if now is None else now
    if state == "running" and seen is not None and seen < now - stale_after():
        return "stale"
    return state


def relative_location(location: str, root: Path) -> str:
    try:
        return str(Path(location).relative_to(root))
    except ValueError:
        return location


def best_of(summary: MetricSummary) -> tuple[float | None, int | None]:
    if metric_goal(summary.key) == "min":
        return summary.min, summary.min_step
    return summary.max, summary.max_step


def overview(
    details: RunDetails, root: Path, state_style: Callable[[str], Style]
) -> RenderableType:
    """The overview grid: status, times, source, location, ids, family, logs, points."""
    run = details.run
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    # One line per field (ids and hashes are not broken in two); v shows every one whole.
    grid.add_column(no_wrap=True, overflow="ellipsis")
    state = run_state(run)
    status = Text(f"{STATUS_SYMBOLS.get(state, '?')} {state}", style=state_style(state))
    if state == "stale":
        status.append("  (RUNNING, no update for a while)", style="dim")
    grid.add_row("status", status)
    grid.add_row("started", fmt_clock(run.start_time))
    if run.end_time is not None:
        grid.add_row("ended", fmt_clock(run.end_time))
    elif run.updated is not None:
        grid.add_row("updated", fmt_clock(run.updated))
    grid.add_row("duration", fmt_duration(run.duration))
    grid.add_row("source", Text(inert(run.source_kind)))
    grid.add_row("location", Text(inert(relative_location(run.location, root))))
    if run.experiment:
        grid.add_row("experiment", Text(inert(run.experiment)))
    if run.git_commit:
        grid.add_row("commit", Text(inert(run.git_commit)))
    if run.host:
        grid.add_row("host", Text(inert(run.host)))
    grid.add_row("id", Text(inert(run.native_id or run.id)))
    if details.parent is not None:
        grid.add_row("parent", Text(inert(details.parent.name)))
    elif run.parent_id:
        grid.add_row("parent", Text(inert(run.parent_id)))
    if details.children:
        names = ", ".join(inert(c.name) for c in details.children[:8])
        more = len(details.children) - 8
        grid.add_row(
            f"children ({len(details.children)})",
            Text(names + (f", … {more} more" if more > 0 else "")),
        )
    for log in details.logs[:3]:
        grid.add_row("log", Text(inert(relative_location(log.path, root))))
    if run.lifecycle and run.lifecycle != "active":
        grid.add_row("lifecycle", Text(inert(run.lifecycle)))
    if run.error:
        grid.add_row("error", Text(inert(run.error), style="red", no_wrap=False))
    grid.add_row("points", f"{details.points:,}")
    return grid


def metrics_table(
    details: RunDetails, matcher: re.Pattern[str] | None, width: int, system: bool = False
) -> Text:
    """Two lines per metric so the panel stays narrow: name, last and best (with its step),
    then min, max and the number of points. The model's metrics, then (``system``) what
    the trackers recorded about the machine, under a title of their own."""
    family = {k: s for k, s in details.metrics.items() if is_system_key(k) == system}
    rows = [s for k, s in family.items() if matcher is None or matcher.search(k)]
    total = len(family)
    count = f"{len(rows)}" if len(rows) == total else f"{len(rows)} of {total}"
    out = Text(no_wrap=True, overflow="crop")
    if not system:
        out.append(f"\nmetrics ({count})", style="bold")
    elif total:
        out.append(f"\n\nsystem ({count})", style="bold")
    if not rows:
        if not system:
            out.append_text(metrics_table(details, matcher, width, system=True))
        return out
    cells = []
    for summary in rows:
        best, step = best_of(summary)
        arrow = "↓" if metric_goal(summary.key) == "min" else "↑"
        where = f"{arrow}@{step}" if step is not None else ""
        cells.append((summary, summary.last, best, where))
    # Values keep their width unless the line would not fit: then they are rounded
    # (fit_value), never cut, and the name gives way first down to six cells.
    room = max(2, width - 6 - 2)
    last_w = max(4, *(len(fmt_value(c[1])) for c in cells))
    best_w = max(4, *(len(fmt_value(c[2])) + (len(c[3]) + 1 if c[3] else 0) for c in cells))
    if last_w + best_w > room:
        last_w = max(4, min(last_w, room // 2))
        best_w = max(4, room - last_w)
    name_w = max(6, width - last_w - best_w - 2)
    header = " " * name_w + " " + "last".rjust(last_w) + " " + "best".rjust(best_w)
    out.append("\n" + header[:width], style="dim")
    for summary, last, best, where in cells:
        label = summary.key.removeprefix(PREFIX) if system else summary.key
        name = Text(inert(label), style="bold", no_wrap=True, overflow="ellipsis")
        name.truncate(name_w, overflow="ellipsis", pad=True)
        out.append("\n")
        out.append_text(name)
        out.append(" " + fit_value(last, last_w).rjust(last_w) + " ")
        value_w = best_w - (len(where) + 1 if where else 0)
        if value_w < min(4, best_w):  # no room for the step beside the value: value first
            where, value_w = "", best_w
        out.append(fit_value(best, value_w).rjust(value_w))
        if where:
            out.append(" " + where, style="dim")
        for line in spread_lines(summary, width):
            out.append("\n" + line, style="dim")
    if not system:
        out.append_text(metrics_table(details, matcher, width, system=True))
    return out


def run_fields(details: RunDetails) -> dict[str, str]:
    """The overview's fields whole, times with the number the source wrote."""
    run = details.run
    out = {"id": run.id}
    if run.native_id:
        out["native id"] = run.native_id
    out["location"] = run.location
    for name, epoch in (("started", run.start_time), ("ended", run.end_time),
                        ("updated", run.updated)):  # fmt: skip
        if epoch is not None:
            out[name] = f"{fmt_clock(epoch)}  (epoch seconds {epoch!r})"
    if run.git_commit:
        out["commit"] = run.git_commit
    if run.artifact_uri:
        out["artifacts"] = run.artifact_uri
    if run.error:
        out["error"] = run.error
    return out


def spread_lines(summary: MetricSummary, width: int) -> list[str]:
    """``min … max … n …`` in lines of at most ``width``, broken between fields, never inside
    a number; a value too wide even for a line of its own is rounded by :func:`fit_value`."""
    fields = [("min", summary.min), ("max", summary.max)]
    texts = [f"{label} {fit_value(value, width - 2 - len(label) - 1)}" for label, value in fields]
    count = f"{summary.count:,}"
    texts.append(f"n {count}" if len(count) + 4 <= width else f"n {fit_text(count, width - 4)}")
    lines = ["  " + texts[0]]
    for text in texts[1:]:
        if len(lines[-1]) + 2 + len(text) <= width:
            lines[-1] += "  " + text
        else:
            lines.append("  " + text)
    return lines


def pairs(
    title: str, values: dict[str, str], matcher: re.Pattern[str] | None, width: int
) -> RenderableType:
    """A key/value list, one line per value: a long one ends in ``…`` (``v`` shows it whole)
    instead of wrapping into hundreds of lines or breaking a number between two lines."""
    rows = [
        (k, v)
        for k, v in values.items()
        if matcher is None or matcher.search(k) or matcher.search(v)
    ]
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(
        f"\n{title} ({len(rows)}" + (f" of {len(values)})" if len(rows) != len(values) else ")"),
        style="bold",
    )
    if not rows:
        return out
    # Keys keep their width (up to 24) so a long value cannot squeeze them to one letter.
    key_width = min(24, max(len(inert(k)) for k, _ in rows))
    for key, value in rows:
        out.append("\n")
        out.append(fit_text(inert(key), key_width).ljust(key_width), style="dim")
        out.append(" " + fit_text(inert(value), max(1, width - key_width - 1)))
    return out

"""The Logs screen's one-row header: the run, the file, its size, follow state, filter, folder.

Built as plain Rich text from what the screen knows, so what the row says is decided in one
function apart from the screen's keys and workers. The row is fitted to its width here: the
folder comes last and gives way first, cut at its start with ``…`` (its last folders name the
run), and a row too long even without it ends in ``…``; nothing is dropped without a sign.
"""

from __future__ import annotations

from rich.text import Text

from mltop.core.common.formatting import ELLIPSIS, fit_cells, fmt_duration
from mltop.core.common.sanitize import inert
from mltop.core.entities import Run
from mltop.core.live.watch import is_stale
from mltop.core.logs.logmodel import LogModel
from mltop.core.runs.runs_view import STATUS_SYMBOLS

__all__ = ["logs_header", "run_state"]


def _count(n: int, noun: str) -> str:
    """``1 line``, ``2 lines``, ``1,024 lines``: the noun agrees with the number."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def run_state(run: Run | None) -> str:
    """The run's status as the header names it: ``stale`` for a silent running run."""
    if run is None:
        return ""
    return "stale" if is_stale(run) else (run.status or "").lower()


#: Cells the folder needs at the least to be shown cut (``…`` and a few characters of its end).
MIN_FOLDER = 8
FOLDER_SEPARATOR = "  ·  "


def logs_header(
    run: Run | None,
    title: str | None,
    model: LogModel | None,
    following: bool | None,
    width: int,
) -> Text:
    """The header row in ``width`` cells; ``following`` is None when the log cannot grow (no
    follow state shown)."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(" logs ", style="bold reverse")
    if run is not None:
        state = run_state(run)
        header.append(f"  {inert(run.name)} ", style="bold")
        header.append(f"{STATUS_SYMBOLS.get(state, '?')} {state}")
        if run.duration is not None:
            header.append(f" {fmt_duration(run.duration)}", style="dim")
        header.append("  ·")
    elif title:
        header.append(f"  {inert(title)}  ·", style="bold")
    if model is not None:
        file = model.file
        header.append(f"  {inert(model.path.name)}", style="bold")
        header.append(f"  {_count(file.count, 'line')}  {_size(file.size)}", style="dim")
        if model.indexing:
            header.append(f"  indexing {model.progress:.0%}", style="yellow")
        if file.deleted:
            header.append("  deleted", style="bold red")
        elif file.missing:
            header.append("  missing", style="bold red")
        header.append("  ·")
    if following is not None:
        header.append("  ")
        if following:
            header.append("● following", style="bold green")
        else:
            header.append("‖ paused", style="yellow")
            header.append(" (end resumes)", style="dim")
    elif header.plain.endswith("  ·"):
        header.right_crop(3)  # the separator stood before the follow state
    if model is not None:
        matcher = model.filter
        if matcher is not None:
            sign = "!" if matcher.invert else "&"
            header.append(f"  ·  {sign} {inert(matcher.pattern)}", style="bold")
            header.append(f" {_count(model.matched, 'line')}", style="dim")
            if model.filtering:
                header.append(f" {model.progress:.0%}", style="yellow")
        folder = inert(str(model.path.parent))
        room = width - header.cell_len - len(FOLDER_SEPARATOR)
        if room >= min(MIN_FOLDER, len(folder)):
            header.append(FOLDER_SEPARATOR + fit_cells(folder, room, keep="end"), style="dim")
        else:  # no room for the folder: the row says it goes on
            header.append(f"  ·  {ELLIPSIS}", style="dim")
    if header.cell_len > width:
        header.truncate(width - 1)
        header.append(ELLIPSIS, style="dim")
    return header

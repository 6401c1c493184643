"""The runs screen's words around the table: the header line and the no-runs text.

Apart from the screen because they are renderables built from a few values (the folder, the
view's stats, indexing progress, the width), not part of keeping the screen's state.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from mltop.core.common.formatting import short_path
from mltop.core.common.sanitize import inert
from mltop.core.runs.runs_view import STATUS_SYMBOLS, RunsView


def progress_bar(done: int, total: int, width: int = 10) -> str:
    filled = round(width * done / total) if total else 0
    return "▕" + "█" * filled + " " * (width - filled) + "▏"


def empty_text(root: Path) -> Text:
    """What the runs screen shows when no run is found: the formats read and a first run."""
    text = Text()
    text.append(f"No runs found under {short_path(root)}\n\n", style="bold")
    text.append(
        "mltop reads mltop run folders, MLflow (mlflow.db, mlruns/), DVC and dvclive,\n"
        "TensorBoard event files, Lightning/Keras CSV logs, Hugging Face trainer_state.json,\n"
        "W&B offline runs, trackio, and JSONL/CSV metric logs.\n\n",
    )
    text.append("Log a run from Python:\n", style="bold")
    text.append(
        "  from mltop.core.tracking import start_run\n"
        '  with start_run("runs", name="first", params={"lr": 0.1}) as run:\n'
        "      run.log(step=0, loss=0.5)\n\n"
        "then press r to re-scan, or try `mltop demo`.",
        style="dim",
    )
    return text


def runs_header(
    root: Path,
    view: RunsView | None,
    *,
    progress: tuple[str, int, int] | None,
    status: str,
    ingesting: bool,
    width: int,
) -> Text:
    """The top line: folder, sources, run counts; indexing progress or status on the right."""
    header = Text(no_wrap=True, overflow="ellipsis")
    header.append(" mltop ", style="bold reverse")
    header.append(f"  {inert(short_path(root))}", style="bold")
    stats = view.stats if view is not None else {}
    by_kind: dict[str, int] = stats.get("by_kind", {})
    if by_kind:
        kinds = ", ".join(inert(k) for k in by_kind)
        noun = "source" if len(by_kind) == 1 else "sources"
        header.append(f"  ·  {len(by_kind)} {noun}: {kinds}")
    if view is not None:
        header.append(f"  ·  {stats.get('total', view.total):,} runs")
        running = stats.get("running", 0)
        stale = stats.get("stale", 0)
        if running:
            header.append("  ·  ")
            header.append(f"{STATUS_SYMBOLS['running']} {running} running", style="bold")
        if stale:
            header.append(f"  ◌ {stale} stale", style="dim")
    right = Text(no_wrap=True)
    if progress is not None:
        _what, done, total = progress
        pct = int(100 * done / total) if total else 0
        right.append(f"indexing {pct}% {progress_bar(done, total)}")
    elif status:
        right.append(status, style="dim")
    elif ingesting:
        right.append("indexing…", style="dim")
    room = width - header.cell_len - right.cell_len - 1
    if room >= 2:
        header.append(" " * room)
        header.append_text(right)
    else:
        header.append("  ")
        header.append_text(right)
    return header

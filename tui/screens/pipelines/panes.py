"""What the Pipelines screen's panes say: a stage in full, a whole side, the coverage summary.

Rich renderables built from a :class:`~mltop.tui.screens.pipelines.data.PipelinesData` answer
and nothing else, so they are apart from the screen that lays them out, and can be read and
checked without mounting it.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mltop.core.common.formatting import local_moment
from mltop.core.common.sanitize import inert
from mltop.core.pipelines.compare import Comparison
from mltop.core.pipelines.dag_layout import state_style
from mltop.core.pipelines.links import RunLink
from mltop.core.pipelines.model import (
    Phase,
    Pipeline,
    Stage,
    format_duration,
    one_line,
)
from mltop.core.pipelines.overview import Overview
from mltop.core.pipelines.phases import OVERRIDES_FILE
from mltop.core.pipelines.repository import followed
from mltop.core.runs.runs_view import STATUS_SYMBOLS
from mltop.tui.screens.pipelines.data import PipelinesData
from mltop.tui.screens.pipelines.picker import relative
from mltop.tui.widgets.phase_grid import (
    SIDE_LABELS,
    SIDES,
    STYLES,
    stage_label,
    style_of,
)

#: Linked runs listed under a stage before ``… N more``.
SHOWN_RUNS = 5


def _pairs() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True, min_width=7)
    table.add_column(ratio=1)
    return table


def _joined(items: tuple[str, ...] | list[str], limit: int = 8) -> Text:
    shown = [one_line(i, 120) for i in items[:limit]]
    text = Text(", ".join(shown))
    if len(items) > limit:
        text.append(f" and {len(items) - limit} more", style="dim")
    return text


def _link_rows(table: Table, link: RunLink | None, label: str = "runs") -> None:
    if link is None:
        return
    noun = "run" if link.total == 1 else "runs"
    head = Text(f"→ {link.total} {noun}", style=STYLES["link"])
    head.append(f"  {one_line(link.how, 120)}", style="dim")
    head.append("  (o lists them)", style="dim")
    table.add_row(label, head)
    for run in link.runs[:SHOWN_RUNS]:
        state = (run.status or "").lower()
        line = Text(STATUS_SYMBOLS.get(state, "·") + " ")
        line.append(inert(run.name))
        if run.experiment:
            line.append(f"  {inert(run.experiment)}", style="dim")
        started = local_moment(run.start_time)
        if started is not None:
            line.append("  " + started.strftime("%Y-%m-%d %H:%M"))
        table.add_row("", line)
    if link.total > SHOWN_RUNS:
        table.add_row("", Text(f"… {link.total - SHOWN_RUNS} more", style="dim"))


def stage_detail(data: PipelinesData, side: str, stage: Stage, pipeline: Pipeline | None) -> Table:
    """Everything known about one stage, each file-borne value as inert text."""
    table = _pairs()
    status = data.statuses(side).get(stage.id)
    title = Text(one_line(stage.name, 120), style="bold")
    # on a joined side the id carries its file, which the "in" part names already
    own_id = stage.id.removeprefix(f"{stage.origin}:") if stage.origin else stage.id
    if own_id != stage.name:
        title.append(f"  id {one_line(own_id, 80)}", style="dim")
    title.append(f"  {one_line(stage.kind, 30)}", style="dim")
    if stage.origin:
        title.append(f"  in {one_line(stage.origin, 80)}", "dim")
    elif pipeline is not None:
        title.append(f"  in {one_line(relative(pipeline.path, data.overview.root), 80)}", "dim")
    table.add_row("stage", title)
    phase = Text(stage.phase.label if stage.phase else "unmapped", style="bold")
    table.add_row("phase", phase)
    table.add_row("why", Text(one_line(stage.phase_reason, 300), style="italic"))
    table.add_row("needs", _joined(stage.needs) if stage.needs else Text("nothing", "dim"))
    if stage.phase is Phase.MONITOR:
        # what the monitors under the repository found (the Monitor screen, m, shows them whole)
        for found in data.overview.monitors:
            table.add_row("monitor", Text(one_line(f"{found.name}: {found.drift_text()}", 300)))
            table.add_row("quality", Text(one_line(found.quality_text(), 300), style="dim"))
    if status is not None:
        line = Text(f"{status.state.symbol} {one_line(status.summary or status.state.words, 200)}")
        line.stylize(style_of(state_style(status.state)))
        if status.source and status.source not in status.summary:
            line.append(f"  from {one_line(status.source, 40)}", style="dim")
        table.add_row("status", line)
        if status.duration is not None:
            table.add_row("took", Text(format_duration(status.duration)))
        for detail in status.details[:6]:
            table.add_row("", Text(one_line(detail, 300), style="dim"))
    else:
        table.add_row("status", Text("no record of a run", style="dim"))
    _link_rows(table, data.link_for(side, stage.id), "runs" if side == "mlops" else "CI runs")
    if stage.matrix is not None:
        table.add_row("matrix", Text(one_line(stage.matrix.summary(), 200)))
    if stage.environment:
        table.add_row("env", Text(one_line(stage.environment, 80)))
    for command in stage.commands[:6]:
        table.add_row("run", Text(one_line(command, 300)))
    if len(stage.commands) > 6:
        table.add_row("", Text(f"… {len(stage.commands) - 6} more commands", style="dim"))
    for action in stage.actions[:6]:
        table.add_row("uses", Text(one_line(action, 200)))
    for image in stage.images[:3]:
        table.add_row("image", Text(one_line(image, 200)))
    if stage.inputs:
        table.add_row("in", _joined(stage.inputs))
    if stage.outputs:
        table.add_row("out", _joined(stage.outputs))
    if stage.params:
        table.add_row("params", _joined(stage.params))
    if stage.metrics:
        table.add_row("metrics", _joined(stage.metrics))
    return table


def pipeline_detail(data: PipelinesData, side: str) -> RenderableType:
    """The side's pipeline as a whole (the header is selected)."""
    pipeline = data.pipeline(side)
    overview = data.overview
    if pipeline is None:
        text = Text(f"No {SIDE_LABELS[side]} pipeline in this repository", style="bold")
        others = len(overview.repositories) - 1
        if others > 0:
            text.append(f"\n{others} other repositories found; P picks one", style="dim")
        return text
    table = _pairs()
    for member in pipeline.members or (pipeline,):
        name = one_line(relative(member.path, overview.root), 200)
        table.add_row("file", Text(f"{name}  ({member.format}, {len(member.stages)} stages)"))
    table.add_row(
        "graph", Text(f"{len(pipeline.stages)} stages, {len(pipeline.edges)} dependencies")
    )
    ci = overview.ci_run_of(pipeline)
    if ci is not None:
        line = Text(one_line(ci.describe(), 120), style=style_of(state_style(ci.state)))
        if ci.url:
            line.append(f"  {one_line(ci.url, 120)}", style="dim")
        table.add_row("CI run", line)
        _link_rows(table, data.links.ci, "runs")
    read = followed(pipeline)
    for ref in [r for r in pipeline.references if r not in read][:6]:
        where = f" from {one_line(ref.stage, 40)}" if ref.stage else ""
        table.add_row("refers", Text(f"{ref.kind}{where}: {one_line(ref.target, 120)}", "dim"))
    for problem in pipeline.problems[:6]:
        table.add_row("problem", Text(one_line(problem, 300), style="yellow"))
    table.add_row("", Text("enter or P: another repository  ·  g: the graph of this side", "dim"))
    return table


def _coverage_line(comparison: Comparison, side: str) -> Text:
    pipeline = comparison.devops if side == "devops" else comparison.mlops
    label = SIDE_LABELS[side]
    if pipeline is None:
        return Text(f"{label}: no pipeline", style="dim")
    covered = [r.phase for r in comparison.rows if getattr(r, side)]
    lacking = [r.phase for r in comparison.rows if not getattr(r, side)]
    text = Text(f"{label} covers {len(covered)} of {len(Phase)}: ", style="bold")
    text.append(", ".join(p.value for p in covered) or "nothing", style=STYLES["ok"])
    if lacking:
        text.append("  lacks ", style="bold")
        text.append(", ".join(p.value for p in lacking), style=STYLES["warn"])
    return text


def metrics_band(overview: Overview, wrap: bool = True) -> Table:
    """The article's DevOps and MLOps performance metrics, side by side, each with its
    evidence and period, or what it would need. Unwrapped (the strip under the table), a line
    that does not fit ends in "…"; the whole of it is in ``mltop pipelines``."""
    band = Table(box=None, padding=(0, 2, 0, 0), expand=True, title_justify="left")
    for title in ("DevOps metrics", "MLOps metrics"):
        band.add_column(
            title,
            ratio=1,
            header_style="bold underline",
            no_wrap=not wrap,
            overflow="fold" if wrap else "ellipsis",
        )
    cells: dict[str, list[Text]] = {"devops": [], "mlops": []}
    for metric in overview.metrics:
        line = Text(f"{one_line(metric.name, 60)}: ", style="bold")
        if metric.value is None:
            line.append(f"needs {one_line(metric.needs, 200)}", style="dim")
        else:
            line.append(one_line(metric.value, 200), style=STYLES["ok"])
            extra = "; ".join(x for x in (metric.period, metric.evidence) if x)
            if extra:
                line.append(f"  {one_line(extra, 200)}", style="dim")
        cells[metric.side].append(line)
    for index in range(max(len(cells["devops"]), len(cells["mlops"]))):
        row = [cells[side][index] if index < len(cells[side]) else Text("") for side in SIDES]
        band.add_row(*row)
    return band


def summary(data: PipelinesData, band: bool = True) -> RenderableType:
    """What each side covers and lacks per phase, the maturity reading and its evidence."""
    overview = data.overview
    comparison = overview.comparison
    parts: list[RenderableType] = []
    if overview.pairing:
        parts.append(Text(one_line(overview.pairing, 300), style="dim"))
    parts += [
        _coverage_line(comparison, "devops"),
        _coverage_line(comparison, "mlops"),
    ]
    both = [r.phase.value for r in comparison.rows if r.coverage == "both"]
    neither = [r.phase.value for r in comparison.rows if r.coverage == "none"]
    both_text = ", ".join(both) or "none"
    neither_text = ", ".join(neither) or "none"
    parts.append(Text(f"both: {both_text}  ·  neither: {neither_text}", "dim"))
    maturity = comparison.maturity
    head = Text(f"\nMLOps maturity: level {maturity.level}", style="bold")
    reading = maturity.headline.removeprefix(f"level {maturity.level}: ")
    head.append(f" — {one_line(reading, 400)}")
    parts.append(head)
    if maturity.evidence:
        parts.append(Text("evidence", style="bold underline"))
        parts.extend(Text(f" ✓ {one_line(e, 300)}", style="green") for e in maturity.evidence)
    if maturity.missing:
        parts.append(Text("missing", style="bold underline"))
        parts.extend(Text(f" ✗ {one_line(m, 300)}", style="yellow") for m in maturity.missing)
    if overview.metrics and band:
        parts += [Text(""), metrics_band(overview)]
    unmapped = [*comparison.unmapped_devops, *comparison.unmapped_mlops]
    if unmapped:
        names = ", ".join(stage_label(s) for s in unmapped[:8])
        parts.append(Text(f"\nunmapped: {names} (map them in {OVERRIDES_FILE})", style="yellow"))
    others = [r for r in overview.repositories if r is not overview.repository]
    if others:
        names = ", ".join(one_line(relative(r.root, overview.root), 60) for r in others[:6])
        more = f" and {len(others) - 6} more" if len(others) > 6 else ""
        parts.append(Text(f"\nother repositories (P to pick): {names}{more}", style="dim"))
    notes = list(overview.notes)
    if data.link_note:
        notes.append(data.link_note)
    for note in notes:
        parts.append(Text(f"note: {one_line(note, 300)}", style="dim"))
    if overview.problems:
        parts.append(Text(f"\n{len(overview.problems)} problems", style="bold yellow"))
        parts.extend(Text(f" {one_line(p, 300)}", style="yellow") for p in overview.problems[:20])
    return Group(*parts)

"""Text, Markdown and JSON renderings of an Overview, and a pipeline graph drawn as boxes.

Everything taken from a pipeline file (names, commands, paths) passes through :func:`inert`
(plain text: control and escape characters shown as ``\\xNN``) and, for Markdown, through
:func:`md_cell`, so a file cannot style, move the cursor or inject table structure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltop.core.common.sanitize import inert_json
from mltop.core.pipelines.compare import Comparison, PhaseRow
from mltop.core.pipelines.dag_layout import pipeline_drawing
from mltop.core.pipelines.model import (
    Matrix,
    Pipeline,
    Stage,
    StageStatus,
    layers,
    one_line,
    path_under,
)
from mltop.core.pipelines.overview import Overview
from mltop.core.pipelines.repository import Repository, followed, side_title


def inert(text: object, limit: int = 300) -> str:
    return one_line(text, limit)


def md_cell(text: object, limit: int = 300) -> str:
    return (
        inert(text, limit)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("`", "\\`")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def stage_label(stage: Stage, status: StageStatus | None) -> str:
    name = stage.name if len(stage.name) <= 40 and "${{" not in stage.name else stage.id
    text = inert(name, 60)
    if status is not None:
        text += f" [{status.state.symbol} {inert(status.brief(), 60)}]"
    return text


def _cell(stages: tuple[Stage, ...], gap: str, statuses: dict[str, StageStatus]) -> str:
    if not stages:
        return f"✗ {inert(gap)}"  # a gap may name what was found instead (registry models)
    return ", ".join(stage_label(s, statuses.get(s.id)) for s in stages)


# --- JSON --------------------------------------------------------------------------------------
def matrix_dict(matrix: Matrix | None) -> dict[str, Any] | None:
    if matrix is None:
        return None
    return {
        "combinations": matrix.combinations,
        "axes": {name: n for name, n in matrix.axes},
        "expanded": matrix.expanded,
        "legs": list(matrix.legs),
        "dynamic": matrix.dynamic,
        "summary": matrix.summary(),
    }


def status_dict(status: StageStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {
        "state": status.state.value,
        "summary": status.summary,
        "duration": status.duration,
        "details": list(status.details),
        "source": status.source,
    }


def pipeline_dict(
    pipeline: Pipeline, statuses: dict[str, StageStatus], root: Path
) -> dict[str, Any]:
    return {
        "path": path_under(pipeline.path, root),
        "files": [path_under(m.path, root) for m in pipeline.members or (pipeline,)],
        "format": pipeline.format,
        "kind": pipeline.kind,
        "name": pipeline.name,
        "stages": [
            {
                "id": s.id,
                "name": s.name,
                "kind": s.kind,
                "group": s.group,
                "file": path_under(pipeline.path / s.origin if s.origin else pipeline.path, root),
                "phase": s.phase.value if s.phase else None,
                "phase_reason": s.phase_reason,
                "needs": list(s.needs),
                "commands": list(s.commands),
                "actions": list(s.actions),
                "images": list(s.images),
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "params": list(s.params),
                "metrics": list(s.metrics),
                "environment": s.environment,
                "matrix": matrix_dict(s.matrix),
                "status": status_dict(statuses.get(s.id)),
            }
            for s in pipeline.stages
        ],
        "edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in pipeline.edges],
        "references": [
            {"kind": r.kind, "target": r.target, "stage": r.stage} for r in pipeline.references
        ],
        "problems": list(pipeline.problems),
    }


def _row_dict(row: PhaseRow) -> dict[str, Any]:
    return {
        "phase": row.phase.value,
        "label": row.phase.label,
        "devops": [s.id for s in row.devops],
        "mlops": [s.id for s in row.mlops],
        "devops_gap": row.devops_gap or None,
        "mlops_gap": row.mlops_gap or None,
        "coverage": row.coverage,
    }


def repository_dict(repo: Repository, root: Path) -> dict[str, Any]:
    return {
        "root": path_under(repo.root, root),
        "marker": repo.marker or None,
        "devops": [path_under(p.path, root) for p in repo.devops],
        "mlops": [path_under(p.path, root) for p in repo.mlops],
        "stages": repo.stages,
        "pairing": repo.pairing(root),
    }


def overview_dict(overview: Overview) -> dict[str, Any]:
    comp = overview.comparison
    root = overview.root
    return {
        "root": str(root),
        "repository": repository_dict(overview.repository, root) if overview.repository else None,
        "repositories": [repository_dict(r, root) for r in overview.repositories],
        "devops": pipeline_dict(comp.devops, overview.status_of(comp.devops), root)
        if comp.devops
        else None,
        "mlops": pipeline_dict(comp.mlops, overview.status_of(comp.mlops), root)
        if comp.mlops
        else None,
        "rows": [_row_dict(r) for r in comp.rows],
        "summary": comp.summary(),
        "unmapped": {
            "devops": [s.id for s in comp.unmapped_devops],
            "mlops": [s.id for s in comp.unmapped_mlops],
        },
        "maturity": {
            "level": comp.maturity.level,
            "headline": comp.maturity.headline,
            "evidence": list(comp.maturity.evidence),
            "missing": list(comp.maturity.missing),
        },
        "monitors": [
            {
                "folder": m.name,
                "kind": m.kind,
                "from": m.what,
                "drifted": m.drifted,
                "tested": m.tested,
                "drift_share": m.drift_share,
                "latest_drift_share": m.latest_share,
                "latest": m.latest or None,
                "data_quality": list(m.quality) if m.quality_checked else None,
                "error": m.error,
            }
            for m in overview.monitors
        ],
        "pipelines": [
            {
                "path": path_under(p.path, root),
                "format": p.format,
                "kind": p.kind,
                "stages": len(p.stages),
                "edges": len(p.edges),
            }
            for p in overview.pipelines
        ],
        "metrics": [
            {
                "side": m.side,
                "name": m.name,
                "value": m.value,
                "evidence": m.evidence or None,
                "period": m.period or None,
                "needs": m.needs or None,
            }
            for m in overview.metrics
        ],
        "notes": list(overview.notes),
        "problems": list(overview.problems),
    }


def render_json(overview: Overview) -> str:
    return inert_json(overview_dict(overview), indent=2)


# --- plain text table --------------------------------------------------------------------------
def _title(label: str, pipeline: Pipeline | None, root: Path) -> str:
    if pipeline is None:
        return f"{label}: none found"
    return f"{label}: {inert(side_title(pipeline, root), 120)}"


def render_table(overview: Overview, cell_width: int = 46) -> str:
    comp = overview.comparison
    root = overview.root
    dev_status = overview.status_of(comp.devops)
    ml_status = overview.status_of(comp.mlops)
    header = ["phase", _title("DevOps", comp.devops, root), _title("MLOps", comp.mlops, root)]
    header.append("coverage")
    rows = [
        [
            r.phase.label,
            _cell(r.devops, r.devops_gap, dev_status),
            _cell(r.mlops, r.mlops_gap, ml_status),
            r.coverage,
        ]
        for r in comp.rows
    ]
    widths = [
        max(len(header[0]), *(len(r[0]) for r in rows)),
        min(cell_width, max(len(header[1]), *(len(r[1]) for r in rows))),
        min(cell_width, max(len(header[2]), *(len(r[2]) for r in rows))),
        max(len(header[3]), *(len(r[3]) for r in rows)),
    ]
    lines = []
    for row in [header, *rows]:
        cells = [_fit(c, w).ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("─" * w for w in widths))
    lines.append("")
    if overview.pairing:
        lines.append("Repository: " + inert(overview.pairing, 400))
    lines.append("Coverage: " + comp.summary())
    lines.extend(_maturity_lines(comp))
    lines.extend(_metric_lines(overview))
    lines.extend(_reason_lines(comp))
    lines.extend(_tail_lines(overview))
    return "\n".join(lines) + "\n"


def _maturity_lines(comp: Comparison) -> list[str]:
    m = comp.maturity
    out = [f"MLOps maturity: {inert(m.headline, 400)}"]
    if m.evidence:
        out.append("  evidence:")
        out.extend(f"    - {inert(e, 200)}" for e in m.evidence)
    if m.missing:
        out.append("  missing:")
        out.extend(f"    - {inert(e, 200)}" for e in m.missing)
    return out


def _metric_lines(overview: Overview) -> list[str]:
    out: list[str] = []
    for side, label in (("devops", "DevOps"), ("mlops", "MLOps")):
        found = [m for m in overview.metrics if m.side == side]
        if found:
            out.append(f"{label} metrics:")
            out.extend(f"  {inert(m.line(), 300)}" for m in found)
    return out


def _reason_lines(comp: Comparison) -> list[str]:
    out: list[str] = []
    for label, pipeline in (("DevOps", comp.devops), ("MLOps", comp.mlops)):
        if pipeline is None or not pipeline.stages:
            continue
        out.append(f"Why each {label} stage sits where it does:")
        for stage in pipeline.stages:
            phase = stage.phase.value if stage.phase else "unmapped"
            out.append(f"  {inert(stage.id, 50)} → {phase}: {inert(stage.phase_reason, 120)}")
    unmapped = [s.id for s in comp.unmapped_devops] + [s.id for s in comp.unmapped_mlops]
    if unmapped:
        out.append("  (map unmapped stages in .mltop/phases.yaml, e.g. `stage-name: verify`)")
    return out


def _tail_lines(overview: Overview) -> list[str]:
    out: list[str] = []
    comp = overview.comparison
    others = [r for r in overview.repositories if r is not overview.repository]
    if others:
        out.append("Other repositories found (mltop pipelines FOLDER shows one):")
        out.extend(f"  {inert(r.summary(overview.root), 200)}" for r in others)
    refs = [
        (p, r)
        for p in (comp.devops, comp.mlops)
        if p is not None
        for r in p.references
        if r not in followed(p)
    ]
    if refs:
        out.append("Not followed (references):")
        for _pipeline, r in refs:
            where = f" from {inert(r.stage, 40)}" if r.stage else ""
            out.append(f"  {r.kind}{where}: {inert(r.target, 120)}")
    if overview.notes:
        out.extend(f"Note: {inert(n, 200)}" for n in overview.notes)
    if overview.problems:
        out.append("Problems:")
        out.extend(f"  {inert(p, 400)}" for p in overview.problems)
    return out


# --- Markdown ----------------------------------------------------------------------------------
def render_markdown(overview: Overview) -> str:
    comp = overview.comparison
    root = overview.root
    dev_status = overview.status_of(comp.devops)
    ml_status = overview.status_of(comp.mlops)
    lines = [
        "| phase | "
        + md_cell(_title("DevOps", comp.devops, root))
        + " | "
        + md_cell(_title("MLOps", comp.mlops, root))
        + " | coverage |",
        "|---|---|---|---|",
    ]
    for r in comp.rows:
        lines.append(
            f"| {r.phase.label} | {md_cell(_cell(r.devops, r.devops_gap, dev_status), 600)} | "
            f"{md_cell(_cell(r.mlops, r.mlops_gap, ml_status), 600)} | {r.coverage} |"
        )
    lines.append("")
    if overview.pairing:
        lines.append(f"**Repository:** {md_cell(overview.pairing, 400)}")
        lines.append("")
    lines += [f"**Coverage:** {md_cell(comp.summary(), 600)}", ""]
    m = comp.maturity
    headline = m.headline.removeprefix(f"level {m.level}: ")
    lines.append(f"**MLOps maturity: level {m.level}** — {md_cell(headline, 400)}")
    if m.evidence:
        lines += ["", "Evidence:", *(f"- {md_cell(e)}" for e in m.evidence)]
    if m.missing:
        lines += ["", "Missing:", *(f"- {md_cell(e)}" for e in m.missing)]
    if overview.metrics:
        lines += ["", "| DevOps metric | value | MLOps metric | value |", "|---|---|---|---|"]
        dev = [x for x in overview.metrics if x.side == "devops"]
        ml = [x for x in overview.metrics if x.side == "mlops"]
        for index in range(max(len(dev), len(ml))):
            cells = []
            for found in (dev, ml):
                if index < len(found):
                    metric = found[index]
                    text = metric.line().removeprefix(f"{metric.name}: ")
                    cells += [md_cell(metric.name), md_cell(text)]
                else:
                    cells += ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
    for label, pipeline in (("DevOps", comp.devops), ("MLOps", comp.mlops)):
        if pipeline is None or not pipeline.stages:
            continue
        lines += ["", f"<details><summary>{label} stages and why</summary>", ""]
        lines += ["| stage | phase | reason |", "|---|---|---|"]
        for s in pipeline.stages:
            phase = s.phase.value if s.phase else "unmapped"
            lines.append(f"| {md_cell(s.id, 80)} | {phase} | {md_cell(s.phase_reason, 160)} |")
        lines += ["", "</details>"]
    if overview.problems:
        lines += ["", "Problems:", *(f"- {md_cell(p, 400)}" for p in overview.problems)]
    return "\n".join(lines) + "\n"


# --- graph -------------------------------------------------------------------------------------
def _box(lines: list[str], width: int) -> list[str]:
    inner = max(len(s) for s in lines)
    inner = min(inner, width - 4)
    top = "┌" + "─" * (inner + 2) + "┐"
    body = [f"│ {_fit(s, inner).ljust(inner)} │" for s in lines]
    bottom = "└" + "─" * (inner + 2) + "┘"
    return [top, *body, bottom]


def render_dag(
    pipeline: Pipeline, statuses: dict[str, StageStatus], root: Path, width: int = 100
) -> str:
    """The stage graph top-down like ``dvc dag``: layers of boxes joined by lines (see
    :mod:`mltop.core.pipelines.dag_layout`), then every edge listed. A graph wider than
    ``width`` is drawn as rows of boxes per dependency level instead, since a terminal would
    wrap the lines into nonsense."""
    out = [
        f"{inert(path_under(pipeline.path, root), 100)}  ({pipeline.format}, "
        f"{len(pipeline.stages)} stages, {len(pipeline.edges)} edges)",
        "",
    ]
    drawing = pipeline_drawing(pipeline, statuses, max_box_width=30)
    if drawing.mode == "lines" and drawing.width <= width:
        out.extend(drawing.lines)
    else:
        out.extend(_dag_rows(pipeline, statuses, width))
    if pipeline.edges:
        out.append("")
        out.append("edges:")
        for edge in pipeline.edges:
            kind = "" if edge.kind == "needs" else f"  ({edge.kind})"
            out.append(f"  {inert(edge.source, 60)} → {inert(edge.target, 60)}{kind}")
    if pipeline.problems:
        out.append("")
        out.append("problems:")
        out.extend(f"  {inert(p, 400)}" for p in pipeline.problems)
    return "\n".join(out) + "\n"


def _dag_rows(pipeline: Pipeline, statuses: dict[str, StageStatus], width: int) -> list[str]:
    """One row of boxes per dependency level, wrapped to ``width``, with a ``▼`` between."""
    by_id = {s.id: s for s in pipeline.stages}
    out: list[str] = []
    box_width = 34
    levels = layers(pipeline)
    for index, level in enumerate(levels):
        boxes = []
        for sid in level:
            stage = by_id[sid]
            content = [inert(stage.id, 60)]
            if stage.name != stage.id:
                content.append(inert(stage.name, 60))
            content.append(stage.phase.label if stage.phase else "unmapped")
            status = statuses.get(sid)
            if status is not None:
                content.append(f"{status.state.symbol} {inert(status.short(), 60)}")
            if stage.matrix is not None:
                content.append(inert(stage.matrix.summary(), 60))
            boxes.append(_box(content, box_width))
        rows: list[list[list[str]]] = []
        used = width + 1
        for box in boxes:
            box_w = len(box[0]) + 2
            if used + box_w > width and used > 0:
                rows.append([])
                used = 0
            rows[-1].append(box)
            used += box_w
        for chunk in rows:
            height = max(len(b) for b in chunk)
            for b in chunk:
                pad = len(b[0])
                b.extend([" " * pad] * (height - len(b)))
            for line_no in range(height):
                out.append("  ".join(b[line_no] for b in chunk).rstrip())
        if index < len(levels) - 1:
            out.append("   │")
            out.append("   ▼")
    return out


def render_dag_markdown(pipeline: Pipeline, statuses: dict[str, StageStatus]) -> str:
    """A Mermaid flowchart; node labels are quoted and escaped."""
    ids = {s.id: f"n{i}" for i, s in enumerate(pipeline.stages)}
    lines = ["```mermaid", "flowchart TD"]
    for stage in pipeline.stages:
        label = inert(stage.id, 60)
        if stage.phase:
            label += f" · {stage.phase.value}"
        status = statuses.get(stage.id)
        if status is not None:
            label += f" · {status.state.value}"
        safe = label.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        lines.append(f'  {ids[stage.id]}["{safe}"]')
    for edge in pipeline.edges:
        lines.append(f"  {ids[edge.source]} --> {ids[edge.target]}")
    lines.append("```")
    return "\n".join(lines) + "\n"


__all__ = [
    "inert",
    "overview_dict",
    "pipeline_dict",
    "render_dag",
    "render_dag_markdown",
    "render_json",
    "render_markdown",
    "render_table",
]

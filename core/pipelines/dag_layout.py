"""A pipeline graph drawn in a terminal: boxes in layers, joined by box-drawing lines.

The drawing follows the usual layered ("Sugiyama") recipe, kept small:

1. Edges that close a dependency cycle are set aside (a depth-first search marks them), so the
   rest is acyclic and every layout step ends. They are reported, not drawn.
2. Each stage goes in the layer of its longest path from a root. An edge that skips layers gets a
   one-cell-wide waypoint in every layer it crosses, so lines never run through a box.
3. Within each layer, stages are ordered by the mean position of their neighbours (a few sweeps
   down and up, keeping the order with fewest crossings), then given x positions near the mean
   of their neighbours' anchors without overlapping.
4. Between two layers, sources with the same set of targets share one horizontal "bus" (so an
   all-to-all stage order is one line, not n×m); each bus gets its own row ("lane"). Lanes are
   ordered so a line never runs on top of another one, and where two lines cross, the vertical
   one is drawn over the horizontal one (``─│─``) so a crossing never reads as a junction.

The result is plain text plus style names per character range (``title``, ``dim``, ``ok``,
``fail``, ``warn``, ``running``, ``edge``, ``border``); the terminal UI maps those names to
colours, the CLI prints the text. Graphs too large for lines (see :data:`MAX_LINE_NODES`) are
drawn as layers of boxes, each listing what it needs, wrapped to a width.

Every text shown comes from a pipeline file and is made inert (one line, control characters as
visible stand-ins) here, whatever the caller passed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from rich.cells import cell_len

from mltop.core.common.formatting import fit_cells
from mltop.core.pipelines.dag_canvas import DOWN, LEFT, RIGHT, UP, Canvas, Style
from mltop.core.pipelines.dag_placement import (
    GAP,
    LayeredGraph,
    Net,
    assign_drops,
    assign_lanes,
    assign_x,
    bus_nets,
    cycle_edges,
    longest_path_layers,
    order_layers,
)
from mltop.core.pipelines.model import (
    Pipeline,
    Stage,
    StageStatus,
    StatusState,
    find_cycle,
    one_line,
)

MAX_LINE_NODES = 400
"""Above this many stages, or :data:`MAX_WAYPOINTS` waypoints, lines would be unreadable (and
slow to route): the graph is drawn as wrapped layers of boxes that list their dependencies."""
MAX_WAYPOINTS = 4_000

Mode = Literal["lines", "list"]

_STATE_STYLE: dict[StatusState, Style] = {
    StatusState.UP_TO_DATE: "ok",
    StatusState.PASSED: "ok",
    StatusState.CHANGED: "warn",
    StatusState.NOT_RUN: "dim",
    StatusState.FAILED: "fail",
    StatusState.RUNNING: "running",
    StatusState.QUEUED: "dim",
    StatusState.SKIPPED: "dim",
    StatusState.CANCELLED: "warn",
    StatusState.UNKNOWN: "dim",
}


def state_style(state: StatusState) -> Style:
    """The style name a status is drawn in (shared with the side-by-side view)."""
    return _STATE_STYLE.get(state, "")


@dataclass(frozen=True)
class DagNode:
    """One box: its id, its content lines as (text, style), and the style of its border."""

    id: str
    lines: tuple[tuple[str, Style], ...]
    border: Style = "border"


@dataclass(frozen=True)
class BoxPlace:
    """Where a box landed: cells (``x``, ``y``, ``width``, ``height``) for scrolling to it, and
    per row of the box (line index, first character, end character) for highlighting it (a line
    holding wide characters has fewer characters than cells)."""

    x: int
    y: int
    width: int
    height: int
    layer: int
    rows: tuple[tuple[int, int, int], ...]


@dataclass
class DagDrawing:
    lines: list[str]
    styles: list[list[tuple[int, int, Style]]]
    boxes: dict[str, BoxPlace]
    layers: list[list[str]]
    back_edges: list[tuple[str, str]] = field(default_factory=list)
    cycle: list[str] | None = None
    mode: Mode = "lines"
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return max((cell_len(line) for line in self.lines), default=0)

    @property
    def height(self) -> int:
        return len(self.lines)

    def text(self) -> str:
        return "\n".join(self.lines)

    def neighbour(self, box_id: str, direction: str) -> str | None:
        """The box to select from ``box_id`` going left/right (same layer) or up/down (the
        nearest box by x in the layer above/below); None at an edge of the drawing."""
        place = self.boxes.get(box_id)
        if place is None:
            return None
        layer = self.layers[place.layer]
        if direction in ("left", "right"):
            index = layer.index(box_id) + (1 if direction == "right" else -1)
            return layer[index] if 0 <= index < len(layer) else None
        step = 1 if direction == "down" else -1
        target = place.layer + step
        centre = place.x + place.width / 2
        while 0 <= target < len(self.layers):
            candidates = self.layers[target]
            if candidates:
                return min(
                    candidates,
                    key=lambda c: abs(self.boxes[c].x + self.boxes[c].width / 2 - centre),
                )
            target += step
        return None


def _box_lines(node: DagNode, max_width: int) -> tuple[list[tuple[str, Style]], int]:
    content = [(fit_cells(one_line(text, 200), max_width), style) for text, style in node.lines]
    content = content or [("", "")]
    inner = max(cell_len(text) for text, _ in content)
    return content, inner + 4


def _draw_box(
    canvas: Canvas, x: int, y: int, width: int, node: DagNode, content: list[tuple[str, Style]]
) -> None:
    border = node.border or "border"
    inner = width - 4
    canvas.text(x, y, "┌" + "─" * (width - 2) + "┐", border)
    for row, (text, style) in enumerate(content, start=1):
        canvas.text(x, y + row, "│ ", border)
        used = canvas.text(x + 2, y + row, text, style)
        canvas.text(x + 2 + used, y + row, " " * (inner - used), "")
        canvas.text(x + width - 2, y + row, " │", border)
    canvas.text(x, y + len(content) + 1, "└" + "─" * (width - 2) + "┘", border)


# -- the two drawings -------------------------------------------------------------------------


def layout_dag(
    nodes: Sequence[DagNode],
    edges: Iterable[tuple[str, str]],
    *,
    max_box_width: int = 32,
    wrap_width: int = 160,
    force_list: bool = False,
) -> DagDrawing:
    """Lay out and draw a graph. Never raises on odd input: unknown ids, self-loops and
    duplicate edges are ignored, cycles are reported in ``cycle``/``back_edges`` and drawn
    without their closing edges. ``wrap_width`` only applies to the list drawing."""
    ids = list(dict.fromkeys(node.id for node in nodes))
    by_id = {node.id: node for node in nodes}
    index = {node_id: i for i, node_id in enumerate(ids)}
    pairs: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for source, target in edges:
        if source in index and target in index and source != target:
            pair = (index[source], index[target])
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    succ: dict[int, list[int]] = defaultdict(list)
    for a, b in pairs:
        succ[a].append(b)
    back = cycle_edges(range(len(ids)), succ)
    forward = [p for p in pairs if p not in back]
    layer_of = longest_path_layers(len(ids), forward)
    cycle = find_cycle(ids, [(ids[a], ids[b]) for a, b in pairs]) if back else None
    back_edges = [(ids[a], ids[b]) for a, b in pairs if (a, b) in back]
    contents = [_box_lines(by_id[i], max_box_width) for i in ids]
    waypoints = sum(max(0, layer_of[b] - layer_of[a] - 1) for a, b in forward)
    if force_list or len(ids) > MAX_LINE_NODES or waypoints > MAX_WAYPOINTS:
        drawing = _list_drawing(ids, by_id, forward, layer_of, max_box_width, wrap_width)
        drawing.mode = "list"
        drawing.notes.append(
            f"{len(ids)} stages: drawn as layers listing what each stage needs, without lines"
            if not force_list
            else "drawn as layers listing what each stage needs"
        )
    else:
        drawing = _line_drawing(ids, by_id, contents, forward, layer_of)
    drawing.back_edges = back_edges
    drawing.cycle = cycle
    if cycle:
        drawing.notes.insert(0, "dependency cycle: " + " → ".join(one_line(c, 60) for c in cycle))
        drawing.notes.insert(
            1,
            "not drawn (they close a cycle): "
            + ", ".join(f"{one_line(a, 40)} → {one_line(b, 40)}" for a, b in back_edges[:10])
            + (f" and {len(back_edges) - 10} more" if len(back_edges) > 10 else ""),
        )
    return drawing


def _line_drawing(
    ids: list[str],
    by_id: dict[str, DagNode],
    contents: list[tuple[list[tuple[str, Style]], int]],
    forward: list[tuple[int, int]],
    layer_of: list[int],
) -> DagDrawing:
    widths = [w for _, w in contents]
    heights = [len(c) + 2 for c, _ in contents]
    real = len(ids)
    layer_of = list(layer_of)
    succ: dict[int, list[int]] = defaultdict(list)
    pred: dict[int, list[int]] = defaultdict(list)
    for a, b in forward:
        chain = [a]
        for level in range(layer_of[a] + 1, layer_of[b]):
            widths.append(1)
            heights.append(1)
            layer_of.append(level)
            chain.append(len(widths) - 1)
        chain.append(b)
        for u, v in pairwise(chain):
            succ[u].append(v)
            pred[v].append(u)
    count = max(layer_of, default=-1) + 1
    layers: list[list[int]] = [[] for _ in range(count)]
    for node in range(len(widths)):  # real nodes in file order, then waypoints
        layers[layer_of[node]].append(node)
    graph = LayeredGraph(widths, heights, real, layer_of, layers, succ, pred)
    order_layers(graph)
    x = assign_x(graph)
    channels: list[tuple[list[Net], int]] = []
    for index in range(count - 1):
        nets = bus_nets(graph, index, x)
        assign_drops(graph, x, nets)
        lanes = assign_lanes(nets)
        channels.append((nets, lanes))
    row_heights = [max((heights[n] for n in layer), default=1) for layer in layers]
    layer_y: list[int] = []
    channel_y: list[int] = []
    y = 0
    for index in range(count):
        layer_y.append(y)
        y += row_heights[index]
        if index < count - 1:
            channel_y.append(y)
            y += channels[index][1] + 1
    width = max((x[n] + widths[n] for n in range(len(widths))), default=0)
    canvas = Canvas(width, y)
    boxes_cells: dict[str, tuple[int, int, int, int, int]] = {}
    for index, layer in enumerate(layers):
        top = layer_y[index]
        bottom = top + row_heights[index] - 1
        for node in layer:
            if graph.is_real(node):
                node_id = ids[node]
                _draw_box(canvas, x[node], top, widths[node], by_id[node_id], contents[node][0])
                boxes_cells[node_id] = (x[node], top, widths[node], heights[node], index)
                if succ.get(node) and index < count - 1:
                    anchor = x[node] + widths[node] // 2
                    box_bottom = top + heights[node] - 1
                    canvas.put(anchor, box_bottom, "┬", by_id[node_id].border or "border")
                    if box_bottom < bottom:
                        canvas.vertical(anchor, box_bottom + 1, bottom, -1 - node)
            else:
                canvas.vertical(x[node], top, bottom, -1 - node)
    for index, (nets, lanes) in enumerate(channels):
        top = channel_y[index]
        arrows = top + lanes
        for net_id, net in enumerate(nets):
            lane_y = top + net.lane
            start, end = net.span()
            for sx in net.source_x:
                if lane_y > top:
                    canvas.vertical(sx, top, lane_y - 1, net_id)
                canvas.line(sx, lane_y, net_id, UP)
            for target, dx in net.drops.items():
                canvas.line(dx, lane_y, net_id, DOWN)
                if lane_y + 1 <= arrows - 1:
                    canvas.vertical(dx, lane_y + 1, arrows - 1, net_id)
                if graph.is_real(target):
                    canvas.put(dx, arrows, "▼", "edge")
                else:
                    canvas.vertical(dx, arrows, arrows, net_id)
            for cx in range(start, end + 1):
                mask = (LEFT if cx > start else 0) | (RIGHT if cx < end else 0)
                if mask:
                    canvas.line(cx, lane_y, net_id, mask)
    canvas.finish("edge")
    lines, styles, offsets = canvas.render()
    boxes: dict[str, BoxPlace] = {}
    for node_id, (bx, by, bw, bh, level) in boxes_cells.items():
        rows = tuple(
            (row, offsets[row][bx], offsets[row][min(bx + bw, len(offsets[row]) - 1)])
            for row in range(by, by + bh)
        )
        boxes[node_id] = BoxPlace(bx, by, bw, bh, level, rows)
    real_layers = [[ids[n] for n in layer if graph.is_real(n)] for layer in layers]
    return DagDrawing(lines, styles, boxes, real_layers)


def _list_drawing(
    ids: list[str],
    by_id: dict[str, DagNode],
    forward: list[tuple[int, int]],
    layer_of: list[int],
    max_box_width: int,
    wrap_width: int,
) -> DagDrawing:
    """Boxes layer by layer, wrapped to ``wrap_width``; each lists the stages it needs."""
    needs: dict[int, list[str]] = defaultdict(list)
    for a, b in forward:
        needs[b].append(ids[a])
    count = max(layer_of, default=-1) + 1
    layers: list[list[int]] = [[] for _ in range(count)]
    for node in range(len(ids)):
        layers[layer_of[node]].append(node)
    placed: list[tuple[int, int, int, DagNode, list[tuple[str, Style]], int, int]] = []
    y = 0
    for index, layer in enumerate(layers):
        x = 0
        row_height = 0
        for node in layer:
            base = by_id[ids[node]]
            extra: tuple[tuple[str, Style], ...] = ()
            if needs[node]:
                listed = ", ".join(one_line(n, 40) for n in needs[node][:6])
                more = f" +{len(needs[node]) - 6}" if len(needs[node]) > 6 else ""
                extra = ((f"← {listed}{more}", "edge"),)
            content, width = _box_lines(DagNode(base.id, base.lines + extra), max_box_width)
            height = len(content) + 2
            if x and x + width > wrap_width:
                y += row_height + 1
                x, row_height = 0, 0
            placed.append((node, x, y, base, content, width, index))
            x += width + GAP
            row_height = max(row_height, height)
        y += row_height + 1
    width = max((p[1] + p[5] for p in placed), default=0)
    canvas = Canvas(width, max(y - 1, 0))
    for _node, bx, by, base, content, bw, _layer in placed:
        _draw_box(canvas, bx, by, bw, base, content)
    lines, styles, offsets = canvas.render()
    boxes = {
        ids[node]: BoxPlace(
            bx,
            by,
            bw,
            len(content) + 2,
            layer,
            tuple(
                (row, offsets[row][bx], offsets[row][min(bx + bw, len(offsets[row]) - 1)])
                for row in range(by, by + len(content) + 2)
            ),
        )
        for node, bx, by, _base, content, bw, layer in placed
    }
    real_layers = [[ids[n] for n in layer] for layer in layers]
    return DagDrawing(lines, styles, boxes, real_layers)


# -- pipelines --------------------------------------------------------------------------------


def stage_node(
    stage: Stage, status: StageStatus | None, extra: Sequence[tuple[str, Style]] = ()
) -> DagNode:
    """A stage's box: id (and name when different), phase, status and matrix size."""
    # on a joined side the id carries its file; the box names the stage, then the file
    title = stage.id.removeprefix(f"{stage.origin}:") if stage.origin else stage.id
    lines: list[tuple[str, Style]] = [(title, "title")]
    if stage.origin:
        lines.append((stage.origin, ""))
    if stage.name != title and "${{" not in stage.name:
        lines.append((stage.name, ""))
    lines.append((stage.phase.label if stage.phase else "unmapped", "dim"))
    border: Style = "border"
    if status is not None:
        lines.append((f"{status.state.symbol} {status.short()}", state_style(status.state)))
        if status.state in (StatusState.FAILED, StatusState.RUNNING):
            border = state_style(status.state)
    if stage.matrix is not None:
        lines.append((stage.matrix.summary(), "dim"))
    lines.extend(extra)
    return DagNode(stage.id, tuple(lines), border)


def pipeline_drawing(
    pipeline: Pipeline,
    statuses: Mapping[str, StageStatus],
    *,
    extra: Mapping[str, Sequence[tuple[str, Style]]] | None = None,
    max_box_width: int = 32,
    wrap_width: int = 160,
    force_list: bool = False,
) -> DagDrawing:
    """The drawing of one pipeline's stage graph with each stage's known status."""
    extra = extra or {}
    nodes = [stage_node(s, statuses.get(s.id), extra.get(s.id, ())) for s in pipeline.stages]
    edges = [(e.source, e.target) for e in pipeline.edges]
    return layout_dag(
        nodes, edges, max_box_width=max_box_width, wrap_width=wrap_width, force_list=force_list
    )


__all__ = [
    "BoxPlace",
    "DagDrawing",
    "DagNode",
    "layout_dag",
    "pipeline_drawing",
    "stage_node",
    "state_style",
]

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

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from rich.cells import cell_len, get_character_cell_size

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
MAX_CROSSING_EDGES = 600
"""Counting crossings is quadratic in the edges between two layers; past this it is skipped."""
GAP = 2
SWEEPS = 4

Style = str
Mode = Literal["lines", "list"]

# Which neighbours a line cell connects to.
_UP, _DOWN, _LEFT, _RIGHT = 1, 2, 4, 8
_GLYPHS = {
    _UP: "│",
    _DOWN: "│",
    _UP | _DOWN: "│",
    _LEFT: "─",
    _RIGHT: "─",
    _LEFT | _RIGHT: "─",
    _DOWN | _RIGHT: "┌",
    _DOWN | _LEFT: "┐",
    _UP | _RIGHT: "└",
    _UP | _LEFT: "┘",
    _UP | _DOWN | _RIGHT: "├",
    _UP | _DOWN | _LEFT: "┤",
    _LEFT | _RIGHT | _DOWN: "┬",
    _LEFT | _RIGHT | _UP: "┴",
    _UP | _DOWN | _LEFT | _RIGHT: "┼",
}
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


# -- text helpers -----------------------------------------------------------------------------


def fit_cells(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` terminal cells, with ``…`` where it was cut."""
    if cell_len(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        size = get_character_cell_size(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"


# -- graph preparation ------------------------------------------------------------------------


def _back_edges(order: Sequence[int], succ: Mapping[int, Sequence[int]]) -> set[tuple[int, int]]:
    """Edges that point back to a node still on the depth-first path (each closes a cycle)."""
    color: dict[int, int] = {}
    back: set[tuple[int, int]] = set()
    for start in order:
        if color.get(start):
            continue
        color[start] = 1
        stack: list[tuple[int, int]] = [(start, 0)]
        while stack:
            node, index = stack[-1]
            children = succ.get(node, ())
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                state = color.get(child, 0)
                if state == 1:
                    back.add((node, child))
                elif state == 0:
                    color[child] = 1
                    stack.append((child, 0))
            else:
                color[node] = 2
                stack.pop()
    return back


def _longest_path_layers(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    succ: dict[int, list[int]] = defaultdict(list)
    indeg = [0] * n
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    layer = [0] * n
    ready = deque(i for i in range(n) if indeg[i] == 0)
    while ready:
        node = ready.popleft()
        for child in succ[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            indeg[child] -= 1
            if indeg[child] == 0:
                ready.append(child)
    return layer


def _crossings(
    upper: Mapping[int, int], lower: Mapping[int, int], edges: list[tuple[int, int]]
) -> int:
    """Pairs of edges between two layers whose ends are in opposite orders."""
    ends = sorted((upper[a], lower[b]) for a, b in edges)
    count = 0
    for i, (a1, b1) in enumerate(ends):
        for a2, b2 in ends[i + 1 :]:
            if a2 > a1 and b2 < b1:
                count += 1
    return count


@dataclass
class _Graph:
    """The layered graph being laid out: real nodes first, then waypoints."""

    widths: list[int]
    heights: list[int]
    real: int
    layer_of: list[int]
    layers: list[list[int]]
    succ: dict[int, list[int]]
    pred: dict[int, list[int]]

    def is_real(self, node: int) -> bool:
        return node < self.real


def _order_layers(graph: _Graph) -> None:
    """Reorder each layer by the barycentre of neighbours, keeping the best order found."""

    def position() -> dict[int, int]:
        return {node: i for layer in graph.layers for i, node in enumerate(layer)}

    def total_crossings() -> int | None:
        pos = position()
        total = 0
        for index in range(len(graph.layers) - 1):
            edges = [(a, b) for a in graph.layers[index] for b in graph.succ.get(a, ())]
            if len(edges) > MAX_CROSSING_EDGES:
                return None
            total += _crossings(pos, pos, edges)
        return total

    best = [list(layer) for layer in graph.layers]
    best_score = total_crossings()
    if best_score == 0:
        return
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(graph.layers)) if downward else range(len(graph.layers) - 2, -1, -1)
        for index in indices:
            pos = position()
            neighbours = graph.pred if downward else graph.succ
            layer = graph.layers[index]

            def key(
                node: int, pos: dict[int, int] = pos, neighbours: dict[int, list[int]] = neighbours
            ) -> tuple[float, int]:
                near = neighbours.get(node, ())
                if not near:
                    return (float(pos[node]), pos[node])
                return (sum(pos[n] for n in near) / len(near), pos[node])

            layer.sort(key=key)
        score = total_crossings()
        if score is None:
            return
        if best_score is None or score < best_score:
            best_score = score
            best = [list(layer) for layer in graph.layers]
            if score == 0:
                break
    graph.layers[:] = best


def _place_layer(order: list[int], widths: list[int], centres: list[float]) -> list[int]:
    """Left edges near the wanted centres, in order, never overlapping: the mean of a packing
    pushed right and one pushed left (both keep the gaps, so their mean does too)."""
    wanted = [round(c - widths[n] / 2) for c, n in zip(centres, order, strict=True)]
    forward = list(wanted)
    for i in range(1, len(order)):
        forward[i] = max(forward[i], forward[i - 1] + widths[order[i - 1]] + GAP)
    backward = list(wanted)
    for i in range(len(order) - 2, -1, -1):
        backward[i] = min(backward[i], backward[i + 1] - widths[order[i]] - GAP)
    return [(f + b) // 2 for f, b in zip(forward, backward, strict=True)]


def _assign_x(graph: _Graph) -> list[int]:
    x = [0] * len(graph.widths)
    for layer in graph.layers:
        left = 0
        for node in layer:
            x[node] = left
            left += graph.widths[node] + GAP

    def anchor(node: int) -> float:
        return x[node] + graph.widths[node] // 2

    def settle(index: int, neighbours: dict[int, list[int]]) -> None:
        layer = graph.layers[index]
        centres = []
        for node in layer:
            near = neighbours.get(node, ())
            centres.append(
                sum(anchor(n) for n in near) / len(near)
                if near
                else x[node] + graph.widths[node] / 2
            )
        for node, left in zip(layer, _place_layer(layer, graph.widths, centres), strict=True):
            x[node] = left

    count = len(graph.layers)
    for _ in range(2):
        for index in range(1, count):
            settle(index, graph.pred)
        for index in range(count - 2, -1, -1):
            settle(index, graph.succ)
    for index in range(1, count):
        settle(index, graph.pred)
    shift = min(x) if x else 0
    return [v - shift for v in x]


# -- routing ----------------------------------------------------------------------------------


@dataclass
class _Net:
    """Sources in one layer that all lead to the same targets in the next: one horizontal bus."""

    sources: list[int]
    targets: list[int]
    source_x: list[int] = field(default_factory=list)
    drops: dict[int, int] = field(default_factory=dict)  # target → anchor x
    lane: int = 0

    def span(self) -> tuple[int, int]:
        points = [*self.source_x, *self.drops.values()]
        return min(points), max(points)


def _nets(graph: _Graph, index: int, x: list[int]) -> list[_Net]:
    by_targets: dict[tuple[int, ...], list[int]] = {}
    for node in graph.layers[index]:
        targets = tuple(sorted(graph.succ.get(node, ())))
        if targets:
            by_targets.setdefault(targets, []).append(node)
    nets = [_Net(sources, list(targets)) for targets, sources in by_targets.items()]
    for net in nets:
        net.source_x = [_anchor(graph, x, s) for s in net.sources]
    return nets


def _anchor(graph: _Graph, x: list[int], node: int) -> int:
    return x[node] + graph.widths[node] // 2 if graph.is_real(node) else x[node]


def _assign_drops(graph: _Graph, x: list[int], nets: list[_Net]) -> None:
    """An entry point on each target per incoming bus, away from other buses' source columns."""
    incoming: dict[int, list[_Net]] = defaultdict(list)
    for net in nets:
        for target in net.targets:
            incoming[target].append(net)
    all_sources = {sx: net_id for net_id, net in enumerate(nets) for sx in net.source_x}
    for target, arriving in incoming.items():
        if not graph.is_real(target):
            for net in arriving:
                net.drops[target] = x[target]
            continue
        left, right = x[target] + 1, x[target] + graph.widths[target] - 2
        candidates = list(range(left, right + 1)) or [x[target]]

        def ideal(net: _Net, left: int = left, right: int = right, target: int = target) -> int:
            centre = x[target] + graph.widths[target] // 2
            nearest = min(net.source_x, key=lambda point: abs(point - centre))
            return min(max(nearest, left), right)

        arriving.sort(key=lambda n: sum(n.source_x) / len(n.source_x))
        taken: set[int] = set()
        for net in arriving:
            own = set(net.source_x)
            forbidden = {sx for sx in all_sources if sx not in own}
            want = ideal(net)
            free = [c for c in candidates if c not in taken and c not in forbidden]
            if not free:
                free = [c for c in candidates if c not in taken] or [want]
            spot = min(free, key=lambda c: (abs(c - want), c))
            taken.add(spot)
            net.drops[target] = spot


def _assign_lanes(nets: list[_Net]) -> int:
    """A row per bus so no two buses overlap in a row, and no line runs along another: a bus
    whose source column is another bus's drop column must sit above it. Returns the lane count."""
    if not nets:
        return 0
    above: dict[int, set[int]] = defaultdict(set)  # net → nets that must be below it
    indeg = [0] * len(nets)
    for i, a in enumerate(nets):
        sources = set(a.source_x)
        for j, b in enumerate(nets):
            if i != j and sources & set(b.drops.values()) and j not in above[i]:
                above[i].add(j)
                indeg[j] += 1
    order: list[int] = []
    ready = sorted((i for i in range(len(nets)) if indeg[i] == 0), key=lambda i: nets[i].span())
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in sorted(above[node]):
            indeg[child] -= 1
            if indeg[child] == 0:
                ready.append(child)
        ready.sort(key=lambda i: nets[i].span())
    seen = set(order)
    order.extend(i for i in range(len(nets)) if i not in seen)  # a constraint cycle: best effort
    occupied: list[list[tuple[int, int]]] = []
    lowest = [0] * len(nets)
    for node in order:
        net = nets[node]
        start, end = net.span()
        lane = lowest[node]
        if start != end:
            while lane < len(occupied) and any(
                not (end + 1 < s or start - 1 > e) for s, e in occupied[lane]
            ):
                lane += 1
        while len(occupied) <= lane:
            occupied.append([])
        if start != end:
            occupied[lane].append((start, end))
        net.lane = lane
        for child in above[node]:
            lowest[child] = max(lowest[child], lane + 1)
    return max(net.lane for net in nets) + 1


# -- canvas -----------------------------------------------------------------------------------


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.chars = [[" "] * width for _ in range(height)]
        self.styles: list[list[Style]] = [[""] * width for _ in range(height)]
        self.masks: dict[tuple[int, int], dict[int, int]] = {}

    def put(self, x: int, y: int, char: str, style: Style) -> None:
        if 0 <= y < len(self.chars) and 0 <= x < self.width:
            self.chars[y][x] = char
            self.styles[y][x] = style

    def text(self, x: int, y: int, text: str, style: Style) -> int:
        """Write ``text`` from ``x``; a wide character takes two cells. Returns cells used."""
        used = 0
        for char in text:
            size = get_character_cell_size(char)
            if size <= 0:
                continue
            self.put(x + used, y, char, style)
            if size == 2:
                self.put(x + used + 1, y, "", style)
            used += size
        return used

    def line(self, x: int, y: int, net: int, mask: int) -> None:
        cell = self.masks.setdefault((x, y), {})
        cell[net] = cell.get(net, 0) | mask

    def vertical(self, x: int, top: int, bottom: int, net: int) -> None:
        """A line from row ``top`` to row ``bottom`` that continues past both ends."""
        for y in range(top, bottom + 1):
            self.line(x, y, net, _UP | _DOWN)

    def finish(self, edge_style: Style) -> None:
        for (x, y), nets in self.masks.items():
            if self.chars[y][x] != " ":
                continue  # a box border or an arrow already there wins
            masks = list(nets.values())
            if len(masks) > 1:
                vertical = [m for m in masks if m == _UP | _DOWN]
                horizontal = [m for m in masks if m == _LEFT | _RIGHT]
                if vertical and len(vertical) + len(horizontal) == len(masks):
                    self.put(x, y, "│", edge_style)  # a crossing: the vertical passes over
                    continue
            combined = 0
            for mask in masks:
                combined |= mask
            self.put(x, y, _GLYPHS.get(combined, "┼"), edge_style)

    def render(self) -> tuple[list[str], list[list[tuple[int, int, Style]]], list[list[int]]]:
        """Lines, style runs per line (character offsets) and each cell's character offset."""
        lines: list[str] = []
        styles: list[list[tuple[int, int, Style]]] = []
        offsets: list[list[int]] = []
        for row, row_styles in zip(self.chars, self.styles, strict=True):
            text: list[str] = []
            spans: list[tuple[int, int, Style]] = []
            cell_offsets: list[int] = []
            pos = 0
            for char, style in zip(row, row_styles, strict=True):
                cell_offsets.append(pos)
                if not char:
                    continue
                text.append(char)
                if style:
                    if spans and spans[-1][2] == style and spans[-1][1] == pos:
                        spans[-1] = (spans[-1][0], pos + 1, style)
                    else:
                        spans.append((pos, pos + 1, style))
                pos += 1
            cell_offsets.append(pos)
            line = "".join(text).rstrip()
            lines.append(line)
            styles.append([(s, min(e, len(line)), st) for s, e, st in spans if s < len(line)])
            offsets.append(cell_offsets)
        return lines, styles, offsets


def _box_lines(node: DagNode, max_width: int) -> tuple[list[tuple[str, Style]], int]:
    content = [(fit_cells(one_line(text, 200), max_width), style) for text, style in node.lines]
    content = content or [("", "")]
    inner = max(cell_len(text) for text, _ in content)
    return content, inner + 4


def _draw_box(
    canvas: _Canvas, x: int, y: int, width: int, node: DagNode, content: list[tuple[str, Style]]
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
    back = _back_edges(range(len(ids)), succ)
    forward = [p for p in pairs if p not in back]
    layer_of = _longest_path_layers(len(ids), forward)
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
    graph = _Graph(widths, heights, real, layer_of, layers, succ, pred)
    _order_layers(graph)
    x = _assign_x(graph)
    channels: list[tuple[list[_Net], int]] = []
    for index in range(count - 1):
        nets = _nets(graph, index, x)
        _assign_drops(graph, x, nets)
        lanes = _assign_lanes(nets)
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
    canvas = _Canvas(width, y)
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
                canvas.line(sx, lane_y, net_id, _UP)
            for target, dx in net.drops.items():
                canvas.line(dx, lane_y, net_id, _DOWN)
                if lane_y + 1 <= arrows - 1:
                    canvas.vertical(dx, lane_y + 1, arrows - 1, net_id)
                if graph.is_real(target):
                    canvas.put(dx, arrows, "▼", "edge")
                else:
                    canvas.vertical(dx, arrows, arrows, net_id)
            for cx in range(start, end + 1):
                mask = (_LEFT if cx > start else 0) | (_RIGHT if cx < end else 0)
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
    canvas = _Canvas(width, max(y - 1, 0))
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
    "fit_cells",
    "layout_dag",
    "pipeline_drawing",
    "stage_node",
    "state_style",
]

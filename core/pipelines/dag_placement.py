"""Where each box of a layered drawing goes: layers, order within a layer, x, and the buses.

Steps 1 to 4 of the recipe in :mod:`~mltop.core.pipelines.dag_layout`, on integer node ids
with no text at all: cycle-closing edges found by a depth-first search, longest-path layers,
barycentre ordering, x positions, then one horizontal bus per set of sources sharing targets,
each given a lane. Apart from the drawing so the geometry can be read (and reasoned about)
without the characters it ends up as.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_CROSSING_EDGES = 600
"""Counting crossings is quadratic in the edges between two layers; past this it is skipped."""
GAP = 2
SWEEPS = 4


def cycle_edges(order: Sequence[int], succ: Mapping[int, Sequence[int]]) -> set[tuple[int, int]]:
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


def longest_path_layers(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
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


def crossings(
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
class LayeredGraph:
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


def order_layers(graph: LayeredGraph) -> None:
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
            total += crossings(pos, pos, edges)
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


def place_layer(order: list[int], widths: list[int], centres: list[float]) -> list[int]:
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


def assign_x(graph: LayeredGraph) -> list[int]:
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
        for node, left in zip(layer, place_layer(layer, graph.widths, centres), strict=True):
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
class Net:
    """Sources in one layer that all lead to the same targets in the next: one horizontal bus."""

    sources: list[int]
    targets: list[int]
    source_x: list[int] = field(default_factory=list)
    drops: dict[int, int] = field(default_factory=dict)  # target → anchor x
    lane: int = 0

    def span(self) -> tuple[int, int]:
        points = [*self.source_x, *self.drops.values()]
        return min(points), max(points)


def bus_nets(graph: LayeredGraph, index: int, x: list[int]) -> list[Net]:
    by_targets: dict[tuple[int, ...], list[int]] = {}
    for node in graph.layers[index]:
        targets = tuple(sorted(graph.succ.get(node, ())))
        if targets:
            by_targets.setdefault(targets, []).append(node)
    nets = [Net(sources, list(targets)) for targets, sources in by_targets.items()]
    for net in nets:
        net.source_x = [anchor_x(graph, x, s) for s in net.sources]
    return nets


def anchor_x(graph: LayeredGraph, x: list[int], node: int) -> int:
    return x[node] + graph.widths[node] // 2 if graph.is_real(node) else x[node]


def assign_drops(graph: LayeredGraph, x: list[int], nets: list[Net]) -> None:
    """An entry point on each target per incoming bus, away from other buses' source columns."""
    incoming: dict[int, list[Net]] = defaultdict(list)
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

        def ideal(net: Net, left: int = left, right: int = right, target: int = target) -> int:
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


def assign_lanes(nets: list[Net]) -> int:
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

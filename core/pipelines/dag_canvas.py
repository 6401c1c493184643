"""A grid of terminal cells that boxes and lines are drawn into.

Lines are recorded as masks of the neighbours each cell connects to and turned into box-drawing
glyphs only at the end, so joins, tees and crossings come out right whatever order the lines
were drawn in. Apart from the layout because it knows characters and cells, not graphs.
"""

from __future__ import annotations

from rich.cells import get_character_cell_size

Style = str

# Which neighbours a line cell connects to.
UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
GLYPHS = {
    UP: "│",
    DOWN: "│",
    UP | DOWN: "│",
    LEFT: "─",
    RIGHT: "─",
    LEFT | RIGHT: "─",
    DOWN | RIGHT: "┌",
    DOWN | LEFT: "┐",
    UP | RIGHT: "└",
    UP | LEFT: "┘",
    UP | DOWN | RIGHT: "├",
    UP | DOWN | LEFT: "┤",
    LEFT | RIGHT | DOWN: "┬",
    LEFT | RIGHT | UP: "┴",
    UP | DOWN | LEFT | RIGHT: "┼",
}


class Canvas:
    """Characters and style names per cell, plus the line masks drawn so far per cell and net."""

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
            self.line(x, y, net, UP | DOWN)

    def finish(self, edge_style: Style) -> None:
        for (x, y), nets in self.masks.items():
            if self.chars[y][x] != " ":
                continue  # a box border or an arrow already there wins
            masks = list(nets.values())
            if len(masks) > 1:
                vertical = [m for m in masks if m == UP | DOWN]
                horizontal = [m for m in masks if m == LEFT | RIGHT]
                if vertical and len(vertical) + len(horizontal) == len(masks):
                    self.put(x, y, "│", edge_style)  # a crossing: the vertical passes over
                    continue
            combined = 0
            for mask in masks:
                combined |= mask
            self.put(x, y, GLYPHS.get(combined, "┼"), edge_style)

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
